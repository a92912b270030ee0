"""The reaper removes only what runs leaked, never a resumed run's (promotion is tested in
tests/release/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline import heartbeat, reap
from pipeline.aws import AwsClients, is_aws_endpoint
from pipeline.localaws import LocalAws
from pipeline.tags import HEARTBEAT_TAG, RUN_TAG
from pipeline.validate import Runtime, run_validate
from pipeline.validate import run as run_module
from tests._dates import shifted_now
from tests.validate.conftest import make_ami, settings

STALE = timedelta(minutes=10)  # `invoke reap --stale-minutes 10`


@pytest.mark.parametrize(
    ("url", "real"),
    [
        (None, True),
        ("https://ec2.us-east-1.amazonaws.com", True),
        ("https://ec2.cn-north-1.amazonaws.com.cn", True),
        ("http://127.0.0.1:5000", False),
    ],
)
def test_is_aws_endpoint(url: str | None, real: bool) -> None:
    assert is_aws_endpoint(url) is real


def test_reap_removes_only_expired_runs(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    run_validate(settings(tmp_path / "a", ami, run_id="cisv-old", keep=True), clients, runtime())
    run_validate(settings(tmp_path / "b", ami, run_id="cisv-new", keep=True), clients, runtime())
    lines: list[str] = []
    # Five minutes later the runs' heartbeats are still fresh (reap waits 10 minutes by default).
    early = reap.run_reap(clients, shifted_now() + timedelta(minutes=5), lines.append)
    assert early.total == 0, lines
    dry = reap.run_reap(clients, shifted_now() + timedelta(hours=3), lines.append, dry_run=True)
    assert len(dry.instances) == 2 and len(dry.configurations) == 2
    done = reap.run_reap(clients, shifted_now() + timedelta(hours=3), lines.append)
    assert (len(done.instances), len(done.configurations), len(done.security_groups)) == (2, 2, 2)
    assert done.failures == []
    # the aws fixture asserts nothing is left


def test_a_resumed_run_beats_before_anything_can_look_abandoned(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run killed an hour ago (its instance not yet expired) left its instance, security group
    and scan configuration with its last heartbeat. Resumed, the run stamps them before it waits
    for anything (long before its heartbeat's first interval), so `invoke reap --stale-minutes
    10` leaves them alone."""
    ami, run_id = make_ami(clients), "cisv-resumed-beat"
    resumed_at = datetime.now(UTC).replace(microsecond=0)
    killed_at = resumed_at - timedelta(hours=1)
    base = runtime()
    run_validate(
        settings(tmp_path / "a", ami, run_id=run_id, keep=True),
        clients,
        replace(base, now=lambda: killed_at),
    )
    seen: dict[str, Any] = {}
    real_wait = run_module.wait_ssm

    def wait_ssm(*args: Any) -> list[str]:
        """The resumed run's first wait: what reap sees now, a minute into the run."""
        instances = clients.ec2.describe_instances(
            Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}]
        )["Reservations"][0]["Instances"]
        groups = clients.ec2.describe_security_groups(
            Filters=[{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}]
        )["SecurityGroups"]
        seen["stamps"] = {
            t["Value"]
            for resource in instances + groups
            for t in resource["Tags"]
            if t["Key"] == HEARTBEAT_TAG
        }
        seen["reap"] = reap.run_reap(
            clients, resumed_at + timedelta(minutes=1), lambda _: None, stale_after=STALE
        )
        return real_wait(*args)

    monkeypatch.setattr(run_module, "wait_ssm", wait_ssm)
    verdict = run_validate(
        settings(tmp_path / "b", ami, run_id=run_id, resume=True),
        clients,
        replace(base, now=lambda: resumed_at),
    )
    assert verdict.verdict.value == "PASS", verdict.errors
    assert seen["stamps"] == {heartbeat.stamp(resumed_at)}
    report: reap.ReapReport = seen["reap"]
    assert report.total == 0
    ours = [d for d in report.skipped if reap.run_id_of(d.candidate.tags) == run_id]
    assert {d.candidate.kind for d in ours} == {"instance", "security-group", "scan-configuration"}
    assert {d.reason for d in ours} == {"live run"}


def test_a_resumed_run_without_its_first_beat_would_have_been_reaped(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """The same killed run, not resumed: reap takes it (what the first beat prevents)."""
    ami, run_id = make_ami(clients), "cisv-killed"
    killed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    run_validate(
        settings(tmp_path, ami, run_id=run_id, keep=True),
        clients,
        replace(runtime(), now=lambda: killed_at),
    )
    now = datetime.now(UTC)
    planned = reap.plan(reap.find_candidates(clients), now, STALE)
    assert {d.reason for d in planned if reap.run_id_of(d.candidate.tags) == run_id} == {
        "stale heartbeat"
    }
    done = reap.run_reap(clients, now, lambda _: None, stale_after=STALE)
    assert (len(done.instances), len(done.security_groups), len(done.configurations)) == (1, 1, 1)
