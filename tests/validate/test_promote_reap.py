"""The reaper removes only what runs leaked (promotion is tested in tests/release/)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import reap
from pipeline.aws import AwsClients, is_aws_endpoint
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests.validate.conftest import make_ami, settings


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
    early = reap.run_reap(clients, datetime.now(UTC) + timedelta(minutes=5), lines.append)
    assert early.total == 0, lines
    dry = reap.run_reap(clients, datetime.now(UTC) + timedelta(hours=3), lines.append, dry_run=True)
    assert len(dry.instances) == 2 and len(dry.configurations) == 2
    done = reap.run_reap(clients, datetime.now(UTC) + timedelta(hours=3), lines.append)
    assert (len(done.instances), len(done.configurations), len(done.security_groups)) == (2, 2, 2)
    assert done.failures == []
    # the aws fixture asserts nothing is left
