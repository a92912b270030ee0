"""Shared fixtures. Autouse: fake AWS credentials and region, so no test can reach real AWS."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pipeline.localaws import LocalAws


@pytest.fixture(autouse=True)
def _hermetic_aws_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_OUTPUT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    yield


# --- The local AWS (pipeline/localaws): one server per session, reset for each test that asks. ---


@pytest.fixture(scope="session")
def local_aws_server() -> Iterator[LocalAws]:
    """The session's local AWS on a free loopback port, on a manual clock.

    Time in the emulation only moves with ``.advance(seconds)``: give pollers ``sleep=aws.advance``
    so a "5-minute scan" completes instantly and nothing depends on wall-clock speed.
    """
    from pipeline.localaws import LocalAws
    from pipeline.localaws.clock import ManualClock

    # moto keeps ~10^5-10^6 live objects (AMI catalogue, managed policies) and rebuilds them after
    # each reset; with the default GC thresholds full collections then dominate (measured: the
    # tests/localaws suite takes 34 s instead of 22 s). Collect less often for this session.
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    server = LocalAws(clock=ManualClock())
    server.start()
    server.wait_ready()
    yield server
    server.stop()
    gc.set_threshold(*thresholds)


@pytest.fixture
def aws(local_aws_server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """The session's local AWS, reset (moto + emulation + scenario), with AWS_ENDPOINT_URL set."""
    local_aws_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws_server.endpoint)
    return local_aws_server
