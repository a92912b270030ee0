"""Domain polling with tenacity, for what has no botocore waiter (CIS scans, SSM registration).

``sleep`` and ``clock`` are injected, so tests run a 45-minute wait instantly. A ``Schedule``
says when to look: each poll is one AWS call, and each interval is how late an end can be seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When to poll: first after ``first_wait_s``, then every ``interval_s``, the interval
    multiplied by ``growth`` after each poll up to ``max_interval_s``.

    The first wait is capped by the caller's timeout, so a short timeout still gets a poll.
    """

    first_wait_s: float = 0.0
    interval_s: float = 2.0
    growth: float = 2.0
    max_interval_s: float = 30.0

    def __post_init__(self) -> None:
        if self.first_wait_s < 0 or self.interval_s <= 0 or self.growth < 1:
            raise ValueError(f"invalid polling schedule {self}")
        if self.max_interval_s < self.interval_s:
            raise ValueError(f"invalid polling schedule {self}: max below the first interval")

    def wait_before(self, poll: int) -> float:
        """Seconds to sleep before poll number ``poll`` (0 is the first poll)."""
        if poll == 0:
            return self.first_wait_s
        return float(min(self.max_interval_s, self.interval_s * self.growth ** (poll - 1)))

    def offsets(self, horizon_s: float) -> list[float]:
        """When each poll happens (seconds after the wait began), up to the first at or after
        ``horizon_s``: the polls needed to see something that ends at ``horizon_s``."""
        at, found = 0.0, []
        for poll in range(100_000):
            at += self.wait_before(poll)
            found.append(at)
            if at >= horizon_s:
                break
        return found

    def seen_at(self, end_s: float) -> tuple[int, float]:
        """(polls made, delay after ``end_s`` before a poll saw it) for an end at ``end_s``."""
        offsets = self.offsets(end_s)
        return len(offsets), offsets[-1] - end_s


# What ``poll_until`` did before schedules had a first wait: 2 s doubling to 30 s.
BACKOFF = Schedule()


# Real AWS: an EKS node takes a minute or more to boot and register with SSM, and a CIS scan
# takes minutes, so the first look waits (45 s / 60 s) and then the interval is 15 s growing to
# 30 s (SSM) / 30 s (scan): each poll is one call, and an interval is how late an end can be
# seen. For the benchmark's 90 s + 300 s: 4 + 9 calls instead of 7 + 14 (docs/benchmarks.md).
SSM_WAIT = Schedule(first_wait_s=45, interval_s=15, growth=1.15, max_interval_s=30)
SCAN_WAIT = Schedule(first_wait_s=60, interval_s=30, growth=1.0, max_interval_s=30)


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout_s: float,
    describe: Callable[[T], str],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    echo: Callable[[str], None],
    first_interval_s: float = 2.0,
    max_interval_s: float = 30.0,
    schedule: Schedule | None = None,
) -> T:
    """Call ``fetch`` until ``done(value)`` or ``timeout_s`` passes; return the last value.

    With no ``schedule`` the interval starts at ``first_interval_s`` and doubles up to
    ``max_interval_s``, the first call at once. Each wait prints a progress line with the
    elapsed time. The caller checks ``done`` on the result.
    """
    plan = schedule or Schedule(0.0, first_interval_s, 2.0, max(max_interval_s, first_interval_s))
    start = clock()
    first = min(plan.first_wait_s, max(timeout_s, 0.0))
    if first > 0:
        echo(f"  … first look in {first:.0f}s")
        sleep(first)

    def stop(_: RetryCallState) -> bool:
        return clock() - start >= timeout_s

    def wait(state: RetryCallState) -> float:
        return plan.wait_before(state.attempt_number)

    def progress(state: RetryCallState) -> None:
        value = state.outcome.result() if state.outcome else None
        text = describe(value) if value is not None else "no answer yet"
        echo(f"  … {text} ({clock() - start:.0f}s elapsed)")

    retrying = Retrying(
        retry=retry_if_result(lambda value: not done(value)),
        stop=stop,
        wait=wait,
        sleep=sleep,
        before_sleep=progress,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    return retrying(fetch)
