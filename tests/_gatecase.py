"""Build a gate case's inputs from its JSON: complete results for a scan, then corruptions.

A case names the scan it starts from (``scan``: platform, level, targets with their FAILED and
SKIPPED checks), the corruptions an adversary or a broken API would apply (``mutate``), and the
facts Inspector reports (``facts``: counts and totals computed from the uncorrupted rows, then
optionally altered). Raw ``results`` (rows or pages) are used as they are.
"""

from __future__ import annotations

import copy
from typing import Any

from pipeline import results
from tests._complete import SCAN_ARN, complete_rows, status_counts


def build(case: dict[str, Any]) -> tuple[Any, results.ScanFacts | None, dict[str, str]]:
    """(results document, facts, architectures) for ``case``."""
    scan = case.get("scan")
    rows: list[dict[str, Any]] = []
    facts = None
    archs: dict[str, str] = {}
    if scan:
        level = scan.get("level", case.get("level", 2))
        for target, spec in scan["targets"].items():
            rows += complete_rows(
                scan.get("platform", "AMAZON_LINUX_2023"),
                level,
                target,
                failed=spec.get("failed", ()),
                skipped=spec.get("skipped", ()),
            )
            if "architecture" in spec:
                archs[target] = spec["architecture"]
        if "facts" in scan:
            facts = _facts(rows, level, scan["facts"])
    rows = _mutate(rows, case.get("mutate", []))
    raw = case.get("results")
    if raw is not None:
        if rows:
            rows += raw
        else:
            return copy.deepcopy(raw), facts, archs
    if case.get("pages"):
        targets = list(dict.fromkeys(r["targetResourceId"] for r in rows))
        document: Any = [
            {
                "scanResultDetails": [r for r in rows if r["targetResourceId"] == t],
                "targetResourceId": t,
            }
            for t in targets
        ]
        for page_edit in case.get("page_edits", []):
            document[page_edit["page"]].update(page_edit["set"])
        document += case.get("extra_pages", [])
        return document, facts, archs
    return rows, facts, archs


def _facts(rows: list[dict[str, Any]], level: int, spec: Any) -> results.ScanFacts:
    spec = spec if isinstance(spec, dict) else {}
    counts: dict[str, results.StatusCounts] = {}
    for target in dict.fromkeys(r["targetResourceId"] for r in rows):
        c = status_counts(r for r in rows if r["targetResourceId"] == target)
        for key, delta in spec.get("counts_delta", {}).get(target, {}).items():
            c[key] += delta
        counts[target] = results.StatusCounts(**c)
    for target, c in spec.get("extra_targets", {}).items():
        counts[target] = results.StatusCounts(**c)
    failed = sum(r["status"] == "FAILED" for r in rows)
    return results.ScanFacts(
        level=spec.get("level", level),
        target_counts=None if spec.get("no_counts") else counts,
        total_checks=len(rows) + spec.get("total_delta", 0),
        failed_checks=failed + spec.get("failed_delta", 0),
        scan_arn=spec.get("scan_arn", SCAN_ARN),
    )


def _mutate(rows: list[dict[str, Any]], ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for op in ops:
        kind = op["op"]
        hit = [
            r
            for r in rows
            if ("target" not in op or r["targetResourceId"] == op["target"])
            and ("check" not in op or r["checkId"] == op["check"])
            and ("status" not in op or r["status"] == op["status"])
        ]
        if kind == "drop":
            rows = [r for r in rows if not any(r is h for h in hit)]
        elif kind == "keep_first":
            rows = rows[: op["n"]]
        elif kind == "set":
            for r in hit:
                for key, value in op["fields"].items():
                    if value is None:
                        r.pop(key, None)
                    else:
                        r[key] = value
        elif kind == "duplicate":
            for r in hit:
                twin = {**r, **op.get("fields", {})}
                rows.append(twin)
        else:
            raise AssertionError(f"unknown mutation {kind!r}")
    return rows
