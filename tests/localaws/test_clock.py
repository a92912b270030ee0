"""The emulation clock."""

from __future__ import annotations

import pytest

from pipeline.localaws.clock import ManualClock, SystemClock


def test_system_clock_follows_its_source_plus_what_was_advanced() -> None:
    now = [100.0]
    clock = SystemClock(lambda: now[0])
    assert clock.now() == 100.0
    now[0] = 101.0
    assert clock.advance(300) == 401.0
    assert clock.now() == 401.0


def test_manual_clock_only_moves_when_told() -> None:
    clock = ManualClock(start=10.0)
    assert clock.now() == clock.now() == 10.0
    assert clock.advance(0.5) == 10.5


@pytest.mark.parametrize("seconds", [-1.0, float("nan")])
def test_time_never_goes_back(seconds: float) -> None:
    with pytest.raises(ValueError, match="only moves forward"):
        ManualClock().advance(seconds)
    with pytest.raises(ValueError):
        SystemClock().advance(seconds)
