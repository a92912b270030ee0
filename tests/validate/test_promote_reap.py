"""Promotion accepts only validated AMIs; the reaper removes only what runs leaked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import promote, reap
from pipeline.aws import AwsClients, is_aws_endpoint
from pipeline.errors import GateBlocked
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests.validate.conftest import ROOT, make_ami, settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PASSED = {
    "cis:verdict": "PASS",
    "cis:validated-at": "2026-11-20T10:00:00Z",
    "cis:policy-sha256": "a" * 64,
}


@pytest.mark.parametrize(
    ("tags", "real", "needle"),
    [
        ({}, False, "cis:verdict is missing"),
        ({**PASSED, "cis:verdict": "FAIL"}, False, "cis:verdict is FAIL"),
        ({**PASSED, "cis:validated-at": "2026-09-01T00:00:00Z"}, False, "more than 30 days ago"),
        ({**PASSED, "cis:policy-sha256": "b" * 64}, False, "another version of the exceptions"),
        ({**PASSED, "cis-ami:local": "true"}, True, "local AWS"),
        ({**PASSED, "cis:local": "true"}, True, "local AWS"),
    ],
    ids=["unvalidated", "failed", "stale", "policy-changed", "local-build", "local-scan"],
)
def test_refusals(tags: dict[str, str], real: bool, needle: str) -> None:
    problems = promote.refusals(
        tags, now=NOW, max_age_days=30, policy_sha="a" * 64, real_account=real
    )
    assert any(needle in p for p in problems), problems


def test_local_results_are_fine_on_the_local_aws_itself() -> None:
    tags = {**PASSED, "cis-ami:local": "true", "cis:local": "true"}
    assert (
        promote.refusals(tags, now=NOW, max_age_days=30, policy_sha="a" * 64, real_account=False)
        == []
    )


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


def test_promote_publishes_only_a_validated_ami(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    cfg = promote.PromoteSettings(ami=ami, policy_dir=ROOT / "policies/exceptions")
    with pytest.raises(GateBlocked, match="not promoted"):
        promote.run_promote(cfg, clients, datetime.now(UTC), print)
    assert run_validate(settings(tmp_path, ami, local=True), clients, runtime()).exit_code == 0
    done = promote.run_promote(cfg, clients, datetime.now(UTC), print)
    assert done.parameter == "/eks-cis-ami/al2023/x86_64/1.32/latest"
    value = clients.ssm.get_parameter(Name=done.parameter)["Parameter"]["Value"]
    assert value == ami


def test_reap_removes_only_expired_runs(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    run_validate(settings(tmp_path / "a", ami, run_id="cisv-old", keep=True), clients, runtime())
    run_validate(settings(tmp_path / "b", ami, run_id="cisv-new", keep=True), clients, runtime())
    lines: list[str] = []
    # Two hours later: nothing has expired yet (TTL 2 h is written at launch + 120 min).
    early = reap.run_reap(clients, datetime.now(UTC) + timedelta(minutes=90), lines.append)
    assert early.total == 0, lines
    dry = reap.run_reap(clients, datetime.now(UTC) + timedelta(hours=3), lines.append, dry_run=True)
    assert len(dry.instances) == 2 and len(dry.configurations) == 2
    done = reap.run_reap(clients, datetime.now(UTC) + timedelta(hours=3), lines.append)
    assert (len(done.instances), len(done.configurations), len(done.security_groups)) == (2, 2, 2)
    assert done.failures == []
    # the aws fixture asserts nothing is left
