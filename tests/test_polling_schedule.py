"""``pipeline.polling``: when each poll happens (one AWS call each), how late an end is seen,
and that ``poll_until`` sleeps exactly as its schedule says (fake clock, no waiting)."""

from __future__ import annotations

import pytest

from pipeline.polling import BACKOFF, SCAN_WAIT, SSM_WAIT, Schedule, poll_until

# (schedule, the wait's end in seconds, polls made, seconds late) - the benchmark's waits first
SEEN = [
    pytest.param(SSM_WAIT, 90, 8, 1.53, id="ssm-90s"),
    pytest.param(SCAN_WAIT, 300, 16, 1.85, id="scan-300s"),
    pytest.param(SCAN_WAIT, 301, 16, 0.85, id="scan-301s"),
    pytest.param(SSM_WAIT, 40, 1, 5.0, id="ssm-at-the-range-start"),
    pytest.param(SCAN_WAIT, 120, 1, 6.0, id="scan-at-the-range-start"),
    pytest.param(SCAN_WAIT, 10, 1, 116.0, id="scan-that-fails-fast"),
    pytest.param(SSM_WAIT, 900, 44, 7.53, id="ssm-never-online-until-the-timeout"),
    pytest.param(BACKOFF, 90, 7, 0.0, id="old-ssm-90s"),
    pytest.param(BACKOFF, 300, 14, 0.0, id="old-scan-300s"),
    pytest.param(BACKOFF, 0, 1, 0.0, id="done-at-once"),
]
# The waits' expected ranges (issue 18; docs/benchmarks.md) and validate's timeouts.
RANGES = [
    pytest.param(SSM_WAIT, 40, 180, 900, id="ssm"),
    pytest.param(SCAN_WAIT, 120, 900, 2700, id="scan"),
]


@pytest.mark.parametrize(("schedule", "end", "polls", "late"), SEEN)
def test_polls_and_lateness(schedule: Schedule, end: float, polls: int, late: float) -> None:
    made, delay = schedule.seen_at(end)
    assert (made, round(delay, 2)) == (polls, late)


def _gaps(at: list[float]) -> list[float]:
    return [b - a for a, b in zip(at, at[1:], strict=False)]


@pytest.mark.parametrize(("schedule", "low", "high", "timeout"), RANGES)
def test_never_more_than_one_poll_per_5s_and_never_later_than_30s(
    schedule: Schedule, low: float, high: float, timeout: float
) -> None:
    """The peak call rate of a polling phase: no two polls closer than 5 s, all the way to the
    timeout, so no 5 s window holds more than one call; and no interval above validate's 30 s
    ``poll_max_s`` (which then changes nothing)."""
    gaps = _gaps(schedule.offsets(timeout))
    assert min(gaps) >= 5
    assert schedule.max_interval_s <= 30 and round(max(gaps), 6) <= 30
    assert schedule.first_wait_s >= 5  # after the calls that start the wait


@pytest.mark.parametrize(("schedule", "low", "high", "timeout"), RANGES)
def test_an_end_in_the_range_is_seen_soon_and_one_beyond_it_costs_fewer_polls(
    schedule: Schedule, low: float, high: float, timeout: float
) -> None:
    at = schedule.offsets(timeout)
    first_poll_at_or_after_low = next(a for a in at if a >= low)
    inside = [b - a for a, b in zip(at, at[1:], strict=False) if a < high]
    beyond = [b - a for a, b in zip(at, at[1:], strict=False) if a >= high]
    assert schedule.first_wait_s <= low + schedule.expected_max_interval_s
    assert first_poll_at_or_after_low - low <= schedule.expected_max_interval_s
    assert max(inside) <= schedule.expected_max_interval_s
    assert round(min(beyond), 6) == round(max(beyond), 6) == 30  # validate's cap, past the range


def test_the_benchmark_s_five_minute_run_polls_more_to_see_ends_sooner() -> None:
    old = BACKOFF.seen_at(90)[0] + BACKOFF.seen_at(300)[0]
    before = (
        Schedule(first_wait_s=45, interval_s=15, growth=1.15, max_interval_s=30).seen_at(90)[0]
        + Schedule(first_wait_s=60, interval_s=30, growth=1.0, max_interval_s=30).seen_at(300)[0]
    )
    new = SSM_WAIT.seen_at(90)[0] + SCAN_WAIT.seen_at(300)[0]
    assert (old, before, new) == (21, 13, 24)


def test_wait_before_is_the_schedule_s_own_gaps() -> None:
    for schedule in (BACKOFF, SSM_WAIT, SCAN_WAIT):
        at = schedule.offsets(1000)
        assert [schedule.wait_before(n) for n in range(len(at))] == pytest.approx(
            [at[0], *_gaps(at)]
        )


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
        pytest.param({"schedule": SCAN_WAIT}, 140, 2700, [126, 7, 7.49], id="scan"),
        pytest.param(
            {"schedule": SSM_WAIT}, 90, 900, [45, 5, 5.5, 6.05, 6.66, 7.32, 8, 8], id="ssm"
        ),
        pytest.param(
            {"schedule": SSM_WAIT},
            10_000,
            300,
            [45, 5, 5.5, 6.05, 6.66, 7.32] + [8] * 14 + [30] * 4,
            id="ssm-timeout",
        ),
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
        {"expected_end_s": -1},
        {"expected_max_interval_s": 0},
    ],
)
def test_a_nonsense_schedule_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid polling schedule"):
        Schedule(**bad)
