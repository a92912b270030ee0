"""Shared fixtures. Autouse: fake AWS credentials and region, so no test can reach real AWS.

Hypothesis profiles: "ci" (the default, and what ``invoke test`` runs) is derandomized: every run
tries the same examples, so a red CI is a real regression and reruns the same way. "explore"
draws new random examples, many more, and saves failures to .hypothesis/ for replay:
``.venv/bin/pytest -n 0 --hypothesis-profile=explore tests/test_gate.py`` (README).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

settings.register_profile(
    "ci", derandomize=True, database=None, max_examples=200, deadline=None, print_blob=True
)
settings.register_profile("explore", max_examples=2_000, deadline=None, print_blob=True)
settings.load_profile("ci")  # also without pyproject's addopts; --hypothesis-profile overrides

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


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader() -> Iterator[None]:
    """Every boto3 session of this process reads botocore's service models through one loader.

    The pipeline makes a fresh session per ``make_clients()`` (one or two per run); the tests call
    it hundreds of times, and each fresh loader re-parses the models of seven services (~0.5 s,
    ~90,000 objects for the GC). Models are read-only data: sharing them changes no behaviour.
    """
    import botocore.loaders
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        shared = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)
        patch.setattr(botocore.session, "create_loader", shared)
        yield


@pytest.fixture(autouse=True)
def _no_regional_clients_kept() -> Iterator[None]:
    """``pipeline.aws.release.in_region`` keeps each home bundle's regional clients for the
    process (one CLI run); in the tests' long-lived processes that kept every earlier test's
    clients (~10^6 objects per worker: slow GC, a slow worker exit). Forget them after each test."""
    yield
    from pipeline.aws import release

    release._REGIONAL.clear()


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode, minus its sleeps: a throttled call is still retried (and
    counted) as often as configured, without up to 1-20 s of real jitter per retry against a
    local AWS on loopback (in this process; a CLI run in a subprocess keeps botocore's backoff)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


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
