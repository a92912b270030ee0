"""Run IDs and the commit a run comes from: one format for build, validate and the nightly.

A run ID names every resource a run creates (tags, AMI names, scan configurations), so it must
be a valid AMI name part and tag value.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it can name an AMI and a tag value; else ConfigError."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ConfigError(
            f"run ID {run_id!r}: use 1-64 letters, digits, '.', '_' or '-' (starting alphanumeric)"
        )
    return run_id


def git_commit(cwd: Path = REPO_ROOT) -> str:
    """``git rev-parse HEAD`` in ``cwd``, or ``unknown`` outside a work tree or without git."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else "unknown"


def new_run_id(now: datetime, token: str | None = None) -> str:
    """``20261126T141500Z-1a2b3c``: sortable by time, unique enough to name AMIs."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{token or secrets.token_hex(3)}"
