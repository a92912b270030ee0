"""The emulation's clock: every delay (scan duration, SSM registration, activation) reads it.

``SystemClock`` follows wall time plus an offset that ``advance`` grows, so a client that polls
sees time pass normally while a test can jump a "5-minute scan" forward instantly.
``ManualClock`` never moves on its own (unit tests of the state machines).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch, as a float; ``advance`` moves it forward."""

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...


class SystemClock:
    """Wall time (``time.time`` unless another source is injected) plus an advanceable offset."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._source() + self._offset

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        _check_forward(seconds)
        with self._lock:
            self._offset += seconds
        return self.now()


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        _check_forward(seconds)
        with self._lock:
            self._now += seconds
        return self._now


def _check_forward(seconds: float) -> None:
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(f"the clock only moves forward (got {seconds!r} seconds)")
