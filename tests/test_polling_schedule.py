"""``pipeline.polling``: when each poll happens (one AWS call each), how late an end is seen,
and that ``poll_until`` sleeps exactly as its schedule says (fake clock, no waiting)."""

from __future__ import annotations

import pytest

from pipeline.polling import BACKOFF, SCAN_WAIT, SSM_WAIT, Schedule, poll_until

# (schedule, the wait's end in seconds, polls made, seconds late) - the benchmark's waits first
SEEN = [
    pytest.param(SSM_WAIT, 90, 4, 7.09, id="ssm-90s"),
    pytest.param(SCAN_WAIT, 300, 9, 0.0, id="scan-300s"),
    pytest.param(SCAN_WAIT, 301, 10, 29.0, id="scan-just-after-a-poll"),
    pytest.param(SCAN_WAIT, 10, 1, 50.0, id="scan-that-fails-fast"),
    pytest.param(BACKOFF, 90, 7, 0.0, id="old-ssm-90s"),
    pytest.param(BACKOFF, 300, 14, 0.0, id="old-scan-300s"),
    pytest.param(BACKOFF, 0, 1, 0.0, id="done-at-once"),
]


@pytest.mark.parametrize(("schedule", "end", "polls", "late"), SEEN)
def test_polls_and_lateness(schedule: Schedule, end: float, polls: int, late: float) -> None:
    made, delay = schedule.seen_at(end)
    assert (made, round(delay, 2)) == (polls, late)


def test_real_aws_schedules_are_cheaper_for_the_benchmark_and_never_later_than_30s() -> None:
    old = BACKOFF.seen_at(90)[0] + BACKOFF.seen_at(300)[0]
    new = SSM_WAIT.seen_at(90)[0] + SCAN_WAIT.seen_at(300)[0]
    assert (old, new) == (21, 13)
    for schedule in (SSM_WAIT, SCAN_WAIT):
        at = schedule.offsets(2700)
        gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
        assert round(max(gaps), 6) <= 30


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 2))
        self.now += seconds


def _poll(clock: Clock, ready_at: float, timeout: float, **kwargs: object) -> float:
    return poll_until(
        lambda: clock.now,
        lambda now: now >= ready_at,
        timeout_s=timeout,
        describe=lambda now: f"t={now}",
        sleep=clock.sleep,
        clock=lambda: clock.now,
        echo=lambda _: None,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("kwargs", "ready_at", "timeout", "slept"),
    [
        pytest.param({}, 90, 900, [2, 4, 8, 16, 30, 30], id="default-is-the-old-backoff"),
        pytest.param(
            {"first_interval_s": 1.0, "max_interval_s": 10.0},
            20,
            120,
            [1, 2, 4, 8, 10],
            id="release-parameter-wait",
        ),
        pytest.param({"schedule": SCAN_WAIT}, 120, 2700, [60, 30, 30], id="scan"),
        pytest.param({"schedule": SSM_WAIT}, 90, 900, [45, 15, 17.25, 19.84], id="ssm"),
        pytest.param({"schedule": SCAN_WAIT}, 10_000, 5, [5], id="first-wait-capped-by-timeout"),
    ],
)
def test_poll_until_sleeps_as_scheduled(
    kwargs: dict[str, object], ready_at: float, timeout: float, slept: list[float]
) -> None:
    clock = Clock()
    last = _poll(clock, ready_at, timeout, **kwargs)
    assert clock.slept == slept
    assert round(last, 2) == round(sum(slept), 2)  # the last value, done or not


@pytest.mark.parametrize(
    "bad",
    [
        {"first_wait_s": -1},
        {"interval_s": 0},
        {"growth": 0.5},
        {"interval_s": 40, "max_interval_s": 30},
    ],
)
def test_a_nonsense_schedule_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid polling schedule"):
        Schedule(**bad)
