"""The error tree and the exit-code contract: every failure the pipeline reports maps to one code.

Only ``tasks.py`` turns these into process exit codes; nothing in ``pipeline/`` calls ``sys.exit``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented in the README; CI systems and release engineers rely on these values."""

    OK = 0  # gate passed
    UNEXPECTED = 1  # a bug or an unexpected AWS/tool failure
    INVALID_INPUT = 2  # invalid input, policy or configuration
    GATE_BLOCKED = 3  # FAILED checks without a valid exception
    UNTRUSTED_SCAN = (
        4  # no trustworthy scan result (zero checks, scan FAILED, SSM never online, ...)
    )
    INTERRUPTED = 130  # SIGINT (128 + 2), after cleanup
    TERMINATED = 143  # SIGTERM (128 + 15), after cleanup


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose. ``str(err)`` is user-facing."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, problems: Iterable[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(message)

    def lines(self) -> list[str]:
        """One line per problem (each names its file and JSON path), else the message.

        At most ``MAX_PROBLEM_LINES`` lines, then "... and K more problems"; each line is made
        safe by ``one_line`` (no newline or control character from input, at most
        ``MAX_LINE_CHARS`` characters), so a hostile file cannot flood or forge the output.
        """
        raw = list(self.problems) or [str(self)]
        shown = [one_line(line, MAX_LINE_CHARS) for line in raw[:MAX_PROBLEM_LINES]]
        if len(raw) > MAX_PROBLEM_LINES:
            shown.append(f"... and {len(raw) - MAX_PROBLEM_LINES} more problems")
        return shown


MAX_PROBLEM_LINES = 20
MAX_LINE_CHARS = 500
# C0/C1 controls (CR and LF included), DEL, line/paragraph separators, bidirectional overrides
# (the "Trojan Source" characters) and lone surrogates (unprintable as UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": " "}


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` as one printable line: control characters become visible escapes (``\\n``,
    ``\\x1b``, ``\\u202e``); longer than ``limit`` characters, it is cut and ends with "…"."""
    safe = _UNSAFE.sub(lambda m: _NAMED.get(m.group(), f"\\u{ord(m.group()):04x}"), text)
    if limit is not None and len(safe) > limit:
        return safe[: limit - 1] + "…"
    return safe


class ConfigError(PipelineError):
    """Invalid input: a policy, a results file, a flag or a setting (exit 2)."""

    exit_code = ExitCode.INVALID_INPUT


class PolicyError(ConfigError):
    """An exceptions policy that is unreadable or invalid. Never treated as "no exceptions"."""


class AwsError(PipelineError):
    """An AWS call failed in a way the pipeline cannot recover from (exit 1)."""


class ScanError(PipelineError):
    """No trustworthy scan result: the scan or its targets cannot be believed (exit 4)."""

    exit_code = ExitCode.UNTRUSTED_SCAN


class GateBlocked(PipelineError):
    """FAILED checks that no valid exception covers (exit 3)."""

    exit_code = ExitCode.GATE_BLOCKED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by ``tasks.py``'s handler: unwinds like Ctrl-C (every ``finally`` and
    cleanup runs); the command then exits 143 instead of 130."""


class ToolError(PipelineError):
    """An external tool (packer) failed (exit 1)."""
