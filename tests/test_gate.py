"""The gate, driven by data: one file per case in tests/cases/gate/ (a regression = a file)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import catalog, gate, policy, report, results
from pipeline.errors import ConfigError
from pipeline.schema import schema_problems

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests/cases/gate").glob("*.json"))
POLICIES = ROOT / "policies/exceptions"


def _policies(spec: dict[str, Any], tmp_path: Path) -> tuple[dict[Any, Any], Any]:
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
    parsed = results.parse_items(results.iter_items(case["results"], "results.json"))
    chosen = gate.select_policies(parsed.rows, available, explicit)
    return gate.evaluate(
        parsed.rows,
        chosen,
        date.fromisoformat(case["today"]),
        expected_targets=case.get("expected_targets") or results.declared_targets(case["results"]),
        problems=parsed.problems,
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

AL2 = catalog.load(catalog.Platform.AMAZON_LINUX_2)
SHIPPED = policy.load(POLICIES / "amazon-linux-2.yaml")
IDS = sorted(AL2.recommendations)
STATUSES = st.sampled_from(["PASSED", "FAILED", "SKIPPED"])


@st.composite
def result_sets(draw: st.DrawFn) -> list[results.CheckResult]:
    targets = draw(st.lists(st.sampled_from(["i-1", "i-2", "i-3"]), min_size=1, unique=True))
    rows = []
    for target in targets:
        for cid in draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=25, unique=True)):
            rec = AL2.recommendations[cid]
            title = draw(st.sampled_from([rec.title, None, "Ensure something else entirely"]))
            level = draw(st.sampled_from([rec.level_name, None, "LEVEL_1", "LEVEL_2"]))
            status = results.CheckStatus(draw(STATUSES))
            rows.append(results.CheckResult(cid, status, target, title, level, "AMAZON_LINUX_2"))
    return rows


@settings(max_examples=300, deadline=None)
@given(rows=result_sets(), day=st.dates(date(2025, 1, 1), date(2028, 12, 31)))
def test_an_unexcepted_failure_never_passes(rows: list[results.CheckResult], day: date) -> None:
    verdict = gate.evaluate(rows, {r.target: SHIPPED for r in rows}, day)
    blocking = [
        r
        for r in rows
        if r.status is results.CheckStatus.FAILED
        and not (
            (exc := SHIPPED.by_check.get(r.check_id)) is not None
            and exc.active_on(day)
            and exc.covers_level(r.level)
            and (
                r.title is None
                or catalog.normalise_title(r.title) == catalog.normalise_title(exc.title)
            )
        )
    ]
    if blocking:
        assert verdict.verdict is not gate.Outcome.PASS
        assert len(verdict.failed_unexcepted) == len(blocking)
    else:
        assert verdict.verdict is gate.Outcome.PASS
