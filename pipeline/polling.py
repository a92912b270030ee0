"""Domain polling with tenacity, for what has no botocore waiter (CIS scans, SSM registration).

``sleep`` and ``clock`` are injected, so tests run a 45-minute wait instantly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential

T = TypeVar("T")


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
) -> T:
    """Call ``fetch`` until ``done(value)`` or ``timeout_s`` passes; return the last value.

    The interval starts at ``first_interval_s`` and doubles up to ``max_interval_s``. Each wait
    prints a progress line with the elapsed time. The caller checks ``done`` on the result.
    """
    start = clock()

    def stop(_: RetryCallState) -> bool:
        return clock() - start >= timeout_s

    def progress(state: RetryCallState) -> None:
        value = state.outcome.result() if state.outcome else None
        text = describe(value) if value is not None else "no answer yet"
        echo(f"  … {text} ({clock() - start:.0f}s elapsed)")

    retrying = Retrying(
        retry=retry_if_result(lambda value: not done(value)),
        stop=stop,
        wait=wait_exponential(
            multiplier=first_interval_s, min=first_interval_s, max=max_interval_s
        ),
        sleep=sleep,
        before_sleep=progress,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    return retrying(fetch)
