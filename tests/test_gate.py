"""The gate, driven by data: one file per case in tests/cases/gate/ (a regression = a file)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from pipeline import catalog, gate, policy, report, results
from pipeline.errors import ConfigError
from pipeline.schema import schema_problems
from tests import _gatecase as gatecase
from tests._complete import SCAN_ARN, complete_rows, distinct_rows, status_counts

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
TARGETS = ("i-1", "i-2", "i-3")
# What an adversary or a broken API does to a complete scan. Whether the result is harmful (the
# verdict must be ERROR, whatever else) is judged on the data it leaves, not on these names: two
# corruptions can add up to the complete scan again (a row duplicated, then one copy moved onto
# an identical row of another target; an automated check SKIPPED, then changed back to PASSED).
CORRUPTIONS = (
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
    "reorder",
    "identical_duplicate",
    "split_pages",
)


@dataclass(frozen=True)
class Corruption:
    """One corruption: ``row`` picks the row it hits (an index into the rows as they are then,
    wrapped); ``choice`` picks the retarget's new target, the reorder's shuffle or where the
    first page ends; ``token`` is the next_token's value."""

    kind: str
    row: int = 0
    choice: int = 0
    token: Any = "more"


# (document, facts, asked level, failed IDs, harmful?)
Scan = tuple[Any, results.ScanFacts, int, set[str], bool]


def corrupted(level: int, failed: dict[str, list[str]], corruptions: list[Corruption]) -> Scan:
    """A complete scan of the targets in ``failed`` (each with those checks FAILED), corrupted.

    Harmful when what the gate is given differs from the complete scan: another set of rows
    (order and identical repeats aside), other facts, or a page that says more pages follow.
    """
    rows: list[dict[str, Any]] = []
    for target, ids in failed.items():
        rows += complete_rows("AMAZON_LINUX_2023", level, target, failed=ids)
    counts = {
        t: results.StatusCounts(**status_counts(r for r in rows if r["targetResourceId"] == t))
        for t in failed
    }
    nfailed = sum(r["status"] == "FAILED" for r in rows)
    facts = results.ScanFacts(level, counts, len(rows), nfailed, SCAN_ARN)
    complete, complete_facts = distinct_rows(rows), facts
    cut: int | None = None
    token: Any = None
    for c in corruptions:
        row = rows[c.row % len(rows)]
        if c.kind == "drop":  # every copy of that row
            key = (row["targetResourceId"], row["checkId"])
            rows = [r for r in rows if (r["targetResourceId"], r["checkId"]) != key]
        elif c.kind == "conflicting_duplicate":
            other = "PASSED" if row["status"] != "PASSED" else "FAILED"
            rows.append({**row, "status": other})
        elif c.kind == "change_status":
            row["status"] = {"PASSED": "FAILED", "FAILED": "PASSED", "SKIPPED": "PASSED"}[
                row["status"]
            ]
        elif c.kind == "counts_delta":
            t = row["targetResourceId"]
            n = counts[t] if t in counts else results.StatusCounts(0, 0, 0)
            counts = {**counts, t: results.StatusCounts(n.passed + 1, n.failed, n.skipped)}
            facts = results.ScanFacts(level, counts, facts.total_checks, nfailed, SCAN_ARN)
        elif c.kind == "total_delta":
            facts = results.ScanFacts(level, counts, len(rows) + 1, nfailed, SCAN_ARN)
        elif c.kind == "other_level":
            facts = results.ScanFacts(3 - level, counts, facts.total_checks, nfailed, SCAN_ARN)
        elif c.kind == "retitle":
            row["title"] = "Ensure " + row["title"] + " twice"
        elif c.kind == "replatform":
            row["platform"] = "AMAZON_LINUX_2"
        elif c.kind == "relevel":
            row["level"] = "LEVEL_1" if row["level"] == "LEVEL_2" else "LEVEL_2"
        elif c.kind == "skip_automated":
            auto = [r for r in rows if AL2023.recommendations[r["checkId"]].automated]
            auto[c.row % len(auto)]["status"] = "SKIPPED"
        elif c.kind == "retarget":  # a row moved to another (or an unscanned) instance
            others = [t for t in TARGETS if t != row["targetResourceId"]]
            row["targetResourceId"] = others[c.choice % len(others)]
        elif c.kind == "foreign_scan":
            row["scanArn"] = SCAN_ARN.replace("test-scan", "another-scan")
        elif c.kind == "next_token":
            cut, token = c.choice, c.token
        elif c.kind == "reorder":
            random.Random(c.choice).shuffle(rows)
        elif c.kind == "identical_duplicate":
            rows.append(dict(row))
        elif c.kind == "split_pages":
            cut = c.choice
        else:
            raise AssertionError(f"unknown corruption {c.kind!r}")
    document: Any = rows
    if cut is not None:
        cut = min(cut, len(rows))
        document = [{"scanResultDetails": rows[:cut]}, {"scanResultDetails": rows[cut:]}]
        document = [p for p in document if p["scanResultDetails"]] or [{"scanResultDetails": []}]
        if token is not None:
            # any token but null or "" says more pages follow, falsy ones included
            document[0]["nextToken"] = token
    harmful = token is not None or facts != complete_facts or distinct_rows(rows) != complete
    return document, facts, level, {i for ids in failed.values() for i in ids}, harmful


@st.composite
def scans(draw: st.DrawFn) -> Scan:
    """A random complete scan, then up to three corruptions."""
    level = draw(st.sampled_from([1, 2]))
    scope = [r.id for r in AL2023.in_scope(level) if r.automated]
    excepted = [i for i in scope if i in SHIPPED.by_check]
    targets = draw(st.lists(st.sampled_from(TARGETS), min_size=1, unique=True))
    failed = {t: draw(st.lists(st.sampled_from(excepted + scope), max_size=6)) for t in targets}
    kinds = draw(st.lists(st.sampled_from(CORRUPTIONS), max_size=3, unique=True))
    corruptions = [
        Corruption(
            kind,
            row=draw(st.integers(0, 10_000)),
            choice=draw(st.integers(0, 10_000)),
            token=draw(st.sampled_from(["more", 0, False, " ", {}])),
        )
        for kind in kinds
    ]
    note(f"corruptions: {corruptions}")
    return corrupted(level, failed, corruptions)


CLEAN = {"i-1": [], "i-2": []}  # two targets, nothing FAILED: level 1's first row is automated


# Twice the profile's budget (the "ci" profile: 400 derandomized examples).
@settings(max_examples=2 * settings().max_examples)
@given(scan=scans())
# A copy of a row, then the original moved onto the same (identical) row of another target:
# the same complete scan with an identical repeat, which passes (it was labelled harmful).
@example(
    scan=corrupted(1, CLEAN, [Corruption("identical_duplicate"), Corruption("retarget", choice=0)])
)
# An automated check SKIPPED, then the same row changed back to PASSED: the complete scan.
@example(scan=corrupted(1, CLEAN, [Corruption("skip_automated"), Corruption("change_status")]))
def test_pass_only_for_a_complete_scan_with_every_failure_excepted(scan: Scan) -> None:
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


def test_corruptions_that_add_up_to_the_complete_scan_are_harmless() -> None:
    """The two examples above leave the complete scan (so the gate must not ERROR on them),
    though their second corruption alone is harmful."""
    for pair in (
        [Corruption("identical_duplicate"), Corruption("retarget", choice=0)],
        [Corruption("skip_automated"), Corruption("change_status")],
    ):
        assert corrupted(1, CLEAN, pair)[4] is False, pair
        assert corrupted(1, CLEAN, pair[1:])[4] is True, pair[1:]
    assert corrupted(1, CLEAN, [Corruption("skip_automated")])[4] is True
    assert corrupted(1, CLEAN, [Corruption("identical_duplicate")])[4] is False
