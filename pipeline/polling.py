"""Domain polling with tenacity, for what has no botocore waiter (CIS scans, SSM registration).

``sleep`` and ``clock`` are injected, so tests run a 45-minute wait instantly. A ``Schedule``
says when to look: each poll is one AWS call, and each interval is how late an end can be seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When to poll: first after ``first_wait_s``, then every ``interval_s``, the interval
    multiplied by ``growth`` after each poll up to ``max_interval_s``.

    A wait with an expected range (it usually ends by ``expected_end_s`` after it began) keeps
    its intervals within ``expected_max_interval_s`` until then, so an end in the range is seen
    at most that late; past the range (a failure, usually) the growing interval takes over
    again and polls cost less. The first wait is capped by the caller's timeout, so a short
    timeout still gets a poll.
    """

    first_wait_s: float = 0.0
    interval_s: float = 2.0
    growth: float = 2.0
    max_interval_s: float = 30.0
    expected_end_s: float = 0.0
    expected_max_interval_s: float = math.inf

    def __post_init__(self) -> None:
        if self.first_wait_s < 0 or self.interval_s <= 0 or self.growth < 1:
            raise ValueError(f"invalid polling schedule {self}")
        if self.max_interval_s < self.interval_s:
            raise ValueError(f"invalid polling schedule {self}: max below the first interval")
        if self.expected_end_s < 0 or self.expected_max_interval_s <= 0:
            raise ValueError(f"invalid polling schedule {self}: expected range")

    def waits(self) -> Iterator[float]:
        """Seconds to sleep before each poll, in order and endless: the first wait, then the
        intervals (each chosen by when the poll before it happened)."""
        at, grown = self.first_wait_s, self.interval_s
        yield at
        while True:
            step = grown
            if at < self.expected_end_s:
                step = min(step, self.expected_max_interval_s)
            at += step
            yield step
            grown = min(self.max_interval_s, grown * self.growth)

    def wait_before(self, poll: int) -> float:
        """Seconds to sleep before poll number ``poll`` (0 is the first poll)."""
        return next(islice(self.waits(), poll, None))

    def offsets(self, horizon_s: float) -> list[float]:
        """When each poll happens (seconds after the wait began), up to the first at or after
        ``horizon_s``: the polls needed to see something that ends at ``horizon_s``."""
        at, found = 0.0, []
        for wait in islice(self.waits(), 100_000):
            at += wait
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


# Real AWS (docs/benchmarks.md): an EKS node registers with SSM 40-180 s after launch and a CIS
# scan takes 2-15 minutes. The first look waits for the range's start (45 s, 126 s); then the
# interval starts at 5 s / 7 s and grows 10 % / 7 % a poll, held to 8 s / 18 s inside the range,
# so an end there is seen at most that late: over the ranges the run waits at most 1.075x the
# time AWS needs (p90 1.04x). Past the range (a node that never registers, a stuck scan) the
# interval is back to 30 s. Never two polls within 5 s; 8 + 16 polls for 90 s + 300 s.
SSM_WAIT = Schedule(
    first_wait_s=45,
    interval_s=5,
    growth=1.1,
    max_interval_s=30,
    expected_end_s=180,
    expected_max_interval_s=8,
)
SCAN_WAIT = Schedule(
    first_wait_s=126,
    interval_s=7,
    growth=1.07,
    max_interval_s=30,
    expected_end_s=900,
    expected_max_interval_s=18,
)


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
    planned = plan.waits()
    first = min(next(planned), max(timeout_s, 0.0))
    if first > 0:
        echo(f"  … first look in {first:.0f}s")
        sleep(first)
    intervals: list[float] = []  # the schedule's, by attempt (tenacity may ask more than once)

    def stop(_: RetryCallState) -> bool:
        return clock() - start >= timeout_s

    def wait(state: RetryCallState) -> float:
        while len(intervals) < state.attempt_number:
            intervals.append(next(planned))
        return intervals[state.attempt_number - 1]

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
