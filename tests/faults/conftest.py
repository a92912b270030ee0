"""Fixtures of the fault matrix: the session's local AWS, clients that give up quickly, an
instant clock whose sleeps can do something mid-run (terminate an instance, delete a
configuration), and the after-check that nothing the run created is left."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime
from tests._dates import shifted_now
from tests.validate.conftest import assert_nothing_left


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def aws(local_aws_server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """The session's local AWS, reset, with the client environment; afterwards it must hold no
    running test instance, scan configuration or per-run security group."""
    local_aws_server.reset()
    for key, value in local_aws_server.env().items():
        monkeypatch.setenv(key, value)
    yield local_aws_server
    local_aws_server.load_scenario(None)  # no fault may hit the after-check
    assert_nothing_left(local_aws_server)


@pytest.fixture
def clients(aws: LocalAws) -> AwsClients:
    """Two attempts per call: a storm of a few faults exhausts botocore's retries quickly."""
    return make_clients(max_attempts=2)


Hook = Callable[[float], None]


@dataclass
class Clock:
    """Sleeping advances the local AWS clock and our monotonic clock together; ``hooks`` run
    at each sleep (the pipeline only sleeps while it polls), to act from outside mid-run."""

    aws: LocalAws
    now: float = 0.0
    hooks: list[Hook] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.aws.advance(seconds)
        for hook in self.hooks:
            hook(self.now)

    def clock(self) -> float:
        return self.now

    def runtime(self) -> Runtime:
        return Runtime(now=shifted_now, echo=self.lines.append, sleep=self.sleep, clock=self.clock)


@pytest.fixture
def clock(aws: LocalAws) -> Clock:
    return Clock(aws)
