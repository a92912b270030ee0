"""Dates the tests judge the shipped exceptions policies on: derived from the policies, never
from the calendar, so renewing an exception (a new ``expires``) breaks no test, and no test
starts failing on the day the shipped exceptions expire."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from pipeline import policy

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "policies/exceptions"


def _expiries() -> list[date]:
    loaded = policy.load_all(policy.discover(SHIPPED))
    return [e.expires for pol in loaded.values() for e in (*pol.exceptions, *pol.skips)]


FIRST_EXPIRY = min(_expiries())  # the earliest `expires` of any shipped exception or skip
VALID_DAY = FIRST_EXPIRY - timedelta(days=policy.EXPIRY_WARNING_DAYS + 30)  # no warning yet
WARNING_DAY = FIRST_EXPIRY - timedelta(days=20)  # within the warning window
EXPIRED_DAY = FIRST_EXPIRY + timedelta(days=1)


# The clock of the in-process runs (``Runtime(now=shifted_now)``) and of the release commands the
# tests call after them: the real time until the shipped exceptions come within 60 days of their
# expiry, then shifted back to stay there, so a run's gate never judges an expired shipped
# exception (record ages, heartbeats and TTLs stay consistent: one clock for all of them).
_LATEST = datetime.combine(VALID_DAY, time(12, 0), tzinfo=UTC)
SHIFT = min(timedelta(0), _LATEST - datetime.now(UTC))


def shifted_now() -> datetime:
    return datetime.now(UTC) + SHIFT


def subprocess_env(tmp: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for an ``invoke`` child that gates with the shipped policies on the real date:
    unchanged while they are valid, else with a copy of them whose every ``expires`` moves by
    the same shift (``INVOKE_PIPELINE_POLICY_DIR``)."""
    out = dict(env)
    if not SHIFT:
        return out
    folder = tmp / "policies-shifted"
    folder.mkdir(parents=True, exist_ok=True)
    for path in SHIPPED.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        moved = re.sub(
            r"(expires:\s*)(\d{4}-\d{2}-\d{2})",
            lambda m: m.group(1) + str(date.fromisoformat(m.group(2)) - SHIFT),
            text,
        )
        (folder / path.name).write_text(moved, encoding="utf-8")
    out["INVOKE_PIPELINE_POLICY_DIR"] = str(folder)
    return out
