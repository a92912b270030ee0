"""Run the local AWS in the foreground until SIGINT/SIGTERM (``invoke local-aws``, ``python -m``).

The first output line is the endpoint URL, then ``export`` lines a shell can ``eval``.
"""

from __future__ import annotations

import gc
import shlex
import signal
import threading
from collections.abc import Callable
from types import FrameType

from pipeline.localaws.server import local_aws


def serve(port: int, scenario_path: str | None, out: Callable[[str], None]) -> None:
    """Start on 127.0.0.1:``port`` (0: a free port), print how to reach it, block until signalled.

    Raises ConfigError for an invalid scenario file or a port that cannot be bound.
    """
    stop = threading.Event()
    with local_aws(port, scenario_path) as aws, _SignalStop(stop):
        out(aws.endpoint)
        for name, value in aws.env().items():
            out(f"export {name}={shlex.quote(value)}")
        _collect_less_often()
        stop.wait()


def _collect_less_often() -> None:
    """This process is the server: moto's ~10^5-10^6 long-lived objects make the default GC
    thresholds spend a large share of each request in full collections."""
    gc.set_threshold(100_000, 50, 100)


class _SignalStop:
    """Set ``stop`` on SIGINT/SIGTERM while inside; restore the previous handlers afterwards."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()
