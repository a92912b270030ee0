"""The gate, driven by data: one file per case in tests/cases/gate/ (a regression = a file)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from pipeline import catalog, gate, policy, report, results
from pipeline.errors import ConfigError
from pipeline.schema import schema_problems
from tests import _gatecase as gatecase
from tests._complete import SCAN_ARN, complete_rows, status_counts

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests/cases/gate").glob("*.json"))
POLICIES = ROOT / "policies/exceptions"
# The shipped AL2023 policy plus one approved skip (cases with "inline": "SKIP_POLICY").
SKIP_POLICY = """
skips:
  - check_id: 1.1.1.1
    title: Ensure mounting of squashfs filesystems is disabled
    reason: Inspector does not evaluate this check on arm64 instances.
    approved_by: platform-security
    expires: 2027-01-31
    architectures: [arm64]
"""


def _policies(spec: dict[str, Any], tmp_path: Path) -> tuple[dict[Any, Any], Any]:
    if spec.get("inline") == "SKIP_POLICY":
        path = tmp_path / "skips.yaml"
        path.write_text((POLICIES / "amazon-linux-2023.yaml").read_text() + SKIP_POLICY)
        explicit = policy.load(path)
        return {explicit.platform: explicit}, explicit
    if "inline" in spec:
        path = tmp_path / "inline.yaml"
        path.write_text(json.dumps(spec["inline"]))
        explicit = policy.load(path)
        return {explicit.platform: explicit}, explicit
    if spec["shipped"] is True:
        return policy.load_all(policy.discover(POLICIES)), None
    explicit = policy.load(POLICIES / spec["shipped"])
    return {explicit.platform: explicit}, explicit


def _run(case: dict[str, Any], tmp_path: Path) -> gate.Verdict:
    available, explicit = _policies(case["policy"], tmp_path)
    document, facts, archs = gatecase.build(case)
    parsed = results.parse_document(document, "results.json")
    chosen = gate.select_policies(parsed.rows, available, explicit)
    return gate.evaluate(
        parsed.rows,
        chosen,
        date.fromisoformat(case["today"]),
        level=case.get("level"),
        facts=facts,
        expected_targets=case.get("expected_targets") or parsed.targets,
        problems=parsed.problems,
        architectures=archs,
    )


def _ids(findings: Any) -> list[str]:
    return sorted(f"{f.result.check_id}@{f.result.target}" for f in findings)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_gate_case(path: Path, tmp_path: Path) -> None:
    case = json.loads(path.read_text())
    want = case["expect"]
    if "raises" in want:
        with pytest.raises(ConfigError, match=want["raises"]):
            _run(case, tmp_path)
        return
    verdict = _run(case, tmp_path)
    got: dict[str, Any] = {"verdict": verdict.verdict.value}
    got["failed_unexcepted"] = _ids(verdict.failed_unexcepted)
    got["failed_excepted"] = _ids(verdict.failed_excepted)
    got["expired"] = sorted(
        f"{n.exception.check_id}@{n.target}" for n in verdict.expired_exceptions
    )
    got["expiring_soon"] = sorted(n.exception.check_id for n in verdict.expiring_soon)
    got["unused"] = sorted(n.exception.check_id for n in verdict.unused_exceptions)
    got["skipped_count"] = len(verdict.skipped)
    got["passed_count"] = len(verdict.passed)
    got["targets"] = {t.target: t.verdict.value for t in verdict.targets}
    messages = [f.message for f in verdict.failed_unexcepted + verdict.failed_excepted]
    for key, value in want.items():
        if key == "errors_contain":
            for needle in value:
                assert any(needle in e for e in verdict.errors), f"GOT {verdict.errors}"
        elif key == "warnings_contain":
            for needle in value:
                assert any(needle in w for w in verdict.warnings), f"GOT {verdict.warnings}"
        elif key == "messages_contain":
            for needle in value:
                assert any(needle in m for m in messages), f"GOT {messages}"
        elif isinstance(value, list):
            assert got[key] == sorted(value), f"{key}: GOT {got[key]} WANT {sorted(value)}"
        else:
            assert got[key] == value, f"{key}: GOT {got[key]} WANT {value}"
    assert verdict.exit_code == {"PASS": 0, "FAIL": 3, "ERROR": 4}[verdict.verdict.value]
    # Every verdict renders, and verdict.json matches its published schema.
    assert schema_problems(report.to_json(verdict), "verdict.schema.json", path.name) == []


# ------------------------------------------------------------------ property

AL2023 = catalog.load(catalog.Platform.AMAZON_LINUX_2023)
SHIPPED = policy.load(POLICIES / "amazon-linux-2023.yaml")
TODAY = date(2026, 12, 1)
# A corruption that makes the results unprovable: the verdict must be ERROR, whatever else.
HARMFUL = (
    "drop",
    "conflicting_duplicate",
    "change_status",
    "counts_delta",
    "total_delta",
    "other_level",
    "retitle",
    "replatform",
    "relevel",
    "skip_automated",
    "next_token",
    "foreign_scan",
    "retarget",
)
HARMLESS = ("reorder", "identical_duplicate", "split_pages")


@st.composite
def scans(draw: st.DrawFn) -> tuple[Any, results.ScanFacts, int, set[str], bool]:
    """(document, facts, asked level, failed IDs, harmful?) for a random complete scan."""
    level = draw(st.sampled_from([1, 2]))
    scope = [r for r in AL2023.in_scope(level) if r.automated]
    targets = draw(st.lists(st.sampled_from(["i-1", "i-2", "i-3"]), min_size=1, unique=True))
    excepted = [r.id for r in scope if r.id in SHIPPED.by_check]
    rows: list[dict[str, Any]] = []
    failed: set[str] = set()
    for target in targets:
        ids = draw(st.lists(st.sampled_from(excepted + [r.id for r in scope]), max_size=6))
        failed.update(ids)
        rows += complete_rows("AMAZON_LINUX_2023", level, target, failed=ids)
    counts = {
        t: results.StatusCounts(**status_counts(r for r in rows if r["targetResourceId"] == t))
        for t in targets
    }
    nfailed = sum(r["status"] == "FAILED" for r in rows)
    facts = results.ScanFacts(level, counts, len(rows), nfailed, SCAN_ARN)
    kinds = draw(st.lists(st.sampled_from(HARMFUL + HARMLESS), max_size=3, unique=True))
    pages = False
    next_token = False
    for kind in kinds:
        i = draw(st.integers(0, len(rows) - 1))
        row = rows[i]
        if kind == "drop":  # every copy of that row
            key = (row["targetResourceId"], row["checkId"])
            rows = [r for r in rows if (r["targetResourceId"], r["checkId"]) != key]
        elif kind == "conflicting_duplicate":
            other = "PASSED" if row["status"] != "PASSED" else "FAILED"
            rows.append({**row, "status": other})
        elif kind == "change_status":
            row["status"] = {"PASSED": "FAILED", "FAILED": "PASSED", "SKIPPED": "PASSED"}[
                row["status"]
            ]
        elif kind == "counts_delta":
            t = row["targetResourceId"]
            c = counts[t]
            counts[t] = results.StatusCounts(c.passed + 1, c.failed, c.skipped)
        elif kind == "total_delta":
            facts = results.ScanFacts(level, counts, len(rows) + 1, nfailed, SCAN_ARN)
        elif kind == "other_level":
            facts = results.ScanFacts(3 - level, counts, facts.total_checks, nfailed, SCAN_ARN)
        elif kind == "retitle":
            row["title"] = "Ensure " + row["title"] + " twice"
        elif kind == "replatform":
            row["platform"] = "AMAZON_LINUX_2"
        elif kind == "relevel":
            row["level"] = "LEVEL_1" if row["level"] == "LEVEL_2" else "LEVEL_2"
        elif kind == "skip_automated":
            auto = [r for r in rows if AL2023.recommendations[r["checkId"]].automated]
            auto[i % len(auto)]["status"] = "SKIPPED"
        elif kind == "retarget":  # a row moved to another (or an unscanned) instance
            others = [t for t in ("i-1", "i-2", "i-3") if t != row["targetResourceId"]]
            row["targetResourceId"] = draw(st.sampled_from(others))
        elif kind == "foreign_scan":
            row["scanArn"] = SCAN_ARN.replace("test-scan", "another-scan")
        elif kind == "next_token":
            next_token = True
        elif kind == "reorder":
            rows = draw(st.permutations(rows))
        elif kind == "identical_duplicate":
            rows.append(dict(row))
        elif kind == "split_pages":
            pages = True
    document: Any = rows
    if pages or next_token:
        cut = draw(st.integers(0, len(rows)))
        document = [{"scanResultDetails": rows[:cut]}, {"scanResultDetails": rows[cut:]}]
        document = [p for p in document if p["scanResultDetails"]] or [{"scanResultDetails": []}]
        if next_token:
            # any token but null or "" says more pages follow, falsy ones included
            document[0]["nextToken"] = draw(st.sampled_from(["more", 0, False, " ", {}]))
    harmful = any(k in HARMFUL for k in kinds)
    note(f"corruptions: {kinds}")
    return document, facts, level, failed, harmful


@settings(max_examples=400, deadline=None)
@given(scan=scans())
def test_pass_only_for_a_complete_scan_with_every_failure_excepted(
    scan: tuple[Any, results.ScanFacts, int, set[str], bool],
) -> None:
    document, facts, level, failed, harmful = scan
    parsed = results.parse_document(document, "results.json")
    verdict = gate.evaluate(
        parsed.rows,
        {r.target: SHIPPED for r in parsed.rows},
        TODAY,
        level=level,
        facts=facts,
        problems=parsed.problems,
    )
    if harmful:
        assert verdict.verdict is gate.Outcome.ERROR, verdict.errors
        return
    blocking = {c for c in failed if c not in SHIPPED.by_check}
    want = gate.Outcome.FAIL if blocking else gate.Outcome.PASS
    assert verdict.verdict is want, (verdict.errors, blocking)
