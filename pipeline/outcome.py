"""The three outcomes every gate gives, and how they combine and map to exit codes (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pipeline.errors import ExitCode


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT[self]


_EXIT = {
    Outcome.PASS: ExitCode.OK,
    Outcome.FAIL: ExitCode.GATE_BLOCKED,
    Outcome.ERROR: ExitCode.UNTRUSTED_SCAN,
}
_RANK = {Outcome.PASS: 0, Outcome.FAIL: 1, Outcome.ERROR: 2}


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """ERROR over FAIL over PASS; nothing at all is ERROR (nothing was proven)."""
    found = list(outcomes)
    return max(found, key=_RANK.__getitem__) if found else Outcome.ERROR
