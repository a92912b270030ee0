"""The error tree and the exit-code contract: every failure the pipeline reports maps to one code.

Only ``tasks.py`` turns these into process exit codes; nothing in ``pipeline/`` calls ``sys.exit``.
"""

from __future__ import annotations

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


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose. ``str(err)`` is user-facing."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, problems: Iterable[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(message)

    def lines(self) -> list[str]:
        """One line per problem (each already names its file and JSON path), else the message."""
        return list(self.problems) or [str(self)]


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


class ToolError(PipelineError):
    """An external tool (packer) failed (exit 1)."""
