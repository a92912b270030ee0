"""Build complete, realistic Inspector CIS results for tests (the shape of the seed's real scan).

A complete result has one row per recommendation of the catalogue at the scanned level: manual
recommendations SKIPPED, every automated one PASSED unless named in ``failed`` (or ``skipped``).
Tests that corrupt results start from these and break one thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline import catalog

SCAN_ARN = "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/cis-scan/test-scan"
ACCOUNT = "123456789012"


def complete_rows(
    platform: str = "AMAZON_LINUX_2023",
    level: int = 2,
    target: str = "i-0123456789abcdef0",
    *,
    failed: Iterable[str] = (),
    skipped: Iterable[str] = (),
    scan_arn: str = SCAN_ARN,
) -> list[dict[str, Any]]:
    """Every recommendation in scope at ``level``, as ``GetCisScanResultDetails`` items."""
    cat = catalog.load(platform)
    failed, skipped = set(failed), set(skipped)
    rows = []
    for rec in cat.in_scope(level):
        if rec.id in failed:
            status = "FAILED"
        elif rec.id in skipped or not rec.automated:
            status = "SKIPPED"
        else:
            status = "PASSED"
        row: dict[str, Any] = {
            "scanArn": scan_arn,
            "accountId": ACCOUNT,
            "targetResourceId": target,
            "platform": cat.platform.value,
            "checkId": rec.id,
            "title": rec.title,
            "level": rec.level_name,
            "status": status,
        }
        if status == "SKIPPED":
            row["statusReason"] = "Manual recommendation" if not rec.automated else "not evaluated"
        rows.append(row)
    return rows


def status_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``statusCounts`` as ``ListCisScanResultsAggregatedByTargetResource`` reports it."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for row in rows:
        counts[str(row["status"]).lower()] += 1
    return counts


def page(rows: list[dict[str, Any]], target: str | None = None) -> dict[str, Any]:
    """One saved page (evidence/results.json shape) for one target."""
    tgt = target or (rows[0]["targetResourceId"] if rows else "i-0123456789abcdef0")
    return {"scanResultDetails": rows, "targetResourceId": tgt}


def distinct_rows(rows: Iterable[dict[str, Any]]) -> frozenset[frozenset[tuple[str, Any]]]:
    """What the rows say, whatever their order or identical repeats: equal for two results the
    gate must judge alike."""
    return frozenset(frozenset(row.items()) for row in rows)
