"""The cross-check of every row's status with Inspector's other views (``pipeline.crosscheck``):
the per-check view (ListCisScanResultsAggregatedByChecks, evidence/checks.json) and the CIS report
(CSV, evidence/cis-report.csv). Pure, then ``invoke gate`` on an evidence folder that has them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline import commands, crosscheck, gate, policy, results
from pipeline.errors import ConfigError, ExitCode
from pipeline.localaws import cis_report
from tests._complete import SCAN_ARN, complete_rows, page, status_counts

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies/exceptions"
DAY = date(2026, 12, 1)
# The AL2023 policy excepts these (a hardened AL2023 node fails exactly them).
FAILED = ["1.6.1.6", "2.1.2", "3.2.1", "3.4.2.7", "4.2.2", "4.2.4", "5.1.1.6", "6.1.11", "6.1.12"]
UNEXCEPTED, EXCEPTED = "1.1.1.1", "3.2.1"

Row = dict[str, Any]


def rows_of(*targets: str, failed: Iterable[str] = FAILED) -> list[Row]:
    return [r for t in targets for r in complete_rows(target=t, failed=failed)]


def checks_view(rows: list[Row], scan_arn: str = SCAN_ARN) -> list[Row]:
    """ListCisScanResultsAggregatedByChecks' items for ``rows`` (one per check per platform)."""
    items: dict[tuple[str, str], Row] = {}
    for row in rows:
        item = items.setdefault(
            (row["checkId"], row["platform"]),
            {
                "scanArn": scan_arn,
                "checkId": row["checkId"],
                "title": row["title"],
                "level": row["level"],
                "accountId": row["accountId"],
                "platform": row["platform"],
                "statusCounts": {"passed": 0, "failed": 0, "skipped": 0},
            },
        )
        item["statusCounts"][row["status"].lower()] += 1
    return list(items.values())


def with_status(rows: list[Row], target: str, statuses: dict[str, str]) -> list[Row]:
    """``rows`` with the given checks of ``target`` reported with another status."""
    return [
        {**r, "status": statuses[r["checkId"]]}
        if r["targetResourceId"] == target and r["checkId"] in statuses
        else r
        for r in rows
    ]


def parsed(rows: list[Row]) -> tuple[results.CheckResult, ...]:
    return results.parse_document(rows, "results.json").rows


def views(truth: list[Row]) -> results.ScanFacts:
    """What Inspector's other views say when they tell ``truth``."""
    counts, problems = crosscheck.read_checks(checks_view(truth), "checks.json", SCAN_ARN)
    report, unread = crosscheck.read_report(cis_report.csv_report(truth), "report.csv", SCAN_ARN)
    assert problems == unread == []
    return results.ScanFacts(2, scan_arn=SCAN_ARN, check_counts=counts, report_rows=report)


def test_views_that_tell_what_the_rows_say_agree() -> None:
    truth = rows_of("i-1", "i-2")
    assert crosscheck.problems(parsed(truth), views(truth)) == []


def test_a_swap_that_keeps_every_count_is_a_false_pass_without_the_views() -> None:
    """The rows report an unexcepted FAILED as PASSED and an excepted PASSED as FAILED: every
    target's and the scan's counts hold, so the counts pass it; both views name both checks."""
    truth = with_status(rows_of("i-1"), "i-1", {UNEXCEPTED: "FAILED", EXCEPTED: "PASSED"})
    told = with_status(truth, "i-1", {UNEXCEPTED: "PASSED", EXCEPTED: "FAILED"})
    assert status_counts(told) == status_counts(truth)
    rows = parsed(told)
    counts = {"i-1": results.StatusCounts(**status_counts(truth))}
    facts = results.ScanFacts(2, counts, len(truth), status_counts(truth)["failed"], SCAN_ARN)
    al2023 = policy.load(POLICIES / "amazon-linux-2023.yaml")
    chosen = {"i-1": al2023}
    arch = {"i-1": "x86_64"}
    fooled = gate.evaluate(rows, chosen, DAY, level=2, facts=facts, architectures=arch)
    assert fooled.verdict is gate.Outcome.PASS, fooled.errors

    seen = replace(facts, check_counts=views(truth).check_counts)
    verdict = gate.evaluate(rows, chosen, DAY, level=2, facts=seen, architectures=arch)
    assert verdict.verdict is gate.Outcome.ERROR
    assert verdict.exit_code == ExitCode.UNTRUSTED_SCAN
    by_checks = [e for e in verdict.errors if crosscheck.CHECKS_VIEW in e]
    assert [e.split(":")[0] for e in by_checks] == [
        f"check {UNEXCEPTED} on AMAZON_LINUX_2023",
        f"check {EXCEPTED} on AMAZON_LINUX_2023",
    ]
    assert "counts 0 passed, 1 failed, 0 skipped but the result rows give 1 passed" in by_checks[0]
    assert "(i-1 PASSED)" in by_checks[0]

    reported = replace(facts, report_rows=views(truth).report_rows)
    verdict = gate.evaluate(rows, chosen, DAY, level=2, facts=reported, architectures=arch)
    assert verdict.verdict is gate.Outcome.ERROR
    assert [e for e in verdict.errors if "CIS report" in e] == [
        f"check {UNEXCEPTED} on i-1: the result rows say PASSED, the CIS report says FAILED: "
        "Inspector's views disagree",
        f"check {EXCEPTED} on i-1: the result rows say FAILED, the CIS report says PASSED: "
        "Inspector's views disagree",
    ]


def test_a_swap_across_targets_keeps_the_per_check_counts_the_report_still_sees_it() -> None:
    """Why both views: the same check swapped between two targets (and another check the other
    way) keeps every per-target and per-check count; only the per-row report tells."""
    truth = rows_of("i-1", "i-2")
    told = with_status(truth, "i-1", {UNEXCEPTED: "FAILED", EXCEPTED: "PASSED"})
    told = with_status(told, "i-2", {UNEXCEPTED: "PASSED", EXCEPTED: "FAILED"})
    truth = with_status(truth, "i-1", {UNEXCEPTED: "PASSED", EXCEPTED: "FAILED"})
    truth = with_status(truth, "i-2", {UNEXCEPTED: "FAILED", EXCEPTED: "PASSED"})
    facts = views(truth)
    assert crosscheck.by_checks(parsed(told), facts.check_counts or {}) == []
    found = crosscheck.by_report(parsed(told), facts.report_rows or ())
    assert [p.split(":")[0] for p in found] == [
        f"check {UNEXCEPTED} on i-1",
        f"check {EXCEPTED} on i-1",
        f"check {UNEXCEPTED} on i-2",
        f"check {EXCEPTED} on i-2",
    ]


def test_a_row_one_view_lacks_is_a_disagreement_both_ways() -> None:
    truth = rows_of("i-1")
    fewer = [r for r in truth if r["checkId"] != EXCEPTED]
    assert crosscheck.problems(parsed(fewer), views(truth)) == [
        f"check {EXCEPTED} on AMAZON_LINUX_2023: {crosscheck.CHECKS_VIEW} counts 0 passed, "
        "1 failed, 0 skipped but the result rows give no row: Inspector's views disagree",
        f"check {EXCEPTED} on i-1: the result rows say nothing (no row), the CIS report says "
        "FAILED: Inspector's views disagree",
    ]
    extra = crosscheck.problems(parsed(truth), views(fewer))
    assert len(extra) == 2
    assert f"{crosscheck.CHECKS_VIEW} counts no result but the result rows give" in extra[0]
    assert "the result rows say FAILED, the CIS report says nothing (no row)" in extra[1]


def test_conflicting_duplicates_disagree_with_a_view_identical_ones_do_not() -> None:
    truth = rows_of("i-1")
    twice = truth + [dict(truth[0])]
    assert crosscheck.problems(parsed(twice), views(truth)) == []
    clash = truth + [{**truth[0], "status": "FAILED"}]
    found = crosscheck.problems(parsed(clash), views(truth))
    assert len(found) == 2 and "FAILED/PASSED" in found[1]


def test_a_view_without_platforms_is_compared_per_check() -> None:
    truth = rows_of("i-1")
    items = [{k: v for k, v in i.items() if k != "platform"} for i in checks_view(truth)]
    counts, problems = crosscheck.read_checks(items, "checks.json", SCAN_ARN)
    assert problems == [] and all(platform is None for _, platform in counts)
    assert crosscheck.by_checks(parsed(truth), counts) == []
    told = with_status(truth, "i-1", {EXCEPTED: "PASSED"})
    assert [p.split(":")[0] for p in crosscheck.by_checks(parsed(told), counts)] == [
        f"check {EXCEPTED}"
    ]


def test_per_platform_views_keep_platforms_apart() -> None:
    """One check ID on two platforms: counted per platform, a status moved from one platform's
    target to the other's is seen even though the check's total holds."""
    al2023 = complete_rows(target="i-1", failed=[EXCEPTED])
    al2 = complete_rows("AMAZON_LINUX_2", target="i-2")
    truth = al2023 + al2
    told = with_status(truth, "i-1", {EXCEPTED: "PASSED"})
    told = with_status(told, "i-2", {EXCEPTED: "FAILED"})
    found = crosscheck.problems(parsed(told), replace(views(truth), report_rows=None))
    assert [p.split(":")[0] for p in found] == [
        f"check {EXCEPTED} on AMAZON_LINUX_2",
        f"check {EXCEPTED} on AMAZON_LINUX_2023",
    ]


def test_many_disagreements_are_capped() -> None:
    truth = rows_of("i-1")
    found = crosscheck.by_report((), views(truth).report_rows or ())
    assert len(found) == crosscheck.MAX_LISTED + 1
    assert found[-1] == f"... and {len(truth) - crosscheck.MAX_LISTED} more with the CIS report"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"checkAggregations": []}, r"checks.json: \$: expected a list of"),
        ([["1.1.1.1"]], r"checks.json: \$\[0\]: expected a check aggregation object"),
    ],
)
def test_a_checks_file_that_is_not_what_validate_wrote_is_exit_2(
    document: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        crosscheck.read_checks(document, "checks.json", SCAN_ARN)
    assert caught.value.exit_code == ExitCode.INVALID_INPUT


def test_check_items_that_cannot_be_used_are_problems() -> None:
    good = checks_view(complete_rows(target="i-1"))[:2]
    items = [
        good[0],
        {**good[0], "statusCounts": {"passed": 0, "failed": 1, "skipped": 0}},  # again, other
        dict(good[1]),
        dict(good[1]),  # identical: merged
        {**good[1], "checkId": "not-a-check"},
        {**good[1], "statusCounts": {"passed": -1}},
        {**good[1], "statusCounts": {"passed": True}},
        {**good[1], "statusCounts": None},
        {**good[1], "platform": 7},
        {**good[1], "scanArn": "arn:aws:inspector2:us-east-1:1:owner/1/cis-scan/other"},
        {k: v for k, v in good[1].items() if k != "scanArn"},
    ]
    counts, problems = crosscheck.read_checks(items, "checks.json", SCAN_ARN)
    assert len(counts) == 2
    assert [p.split(": ", 2)[1] for p in problems] == [
        "$[1]",
        *(f"$[{i}]" for i in range(4, 9)),
    ] + [
        "2 ListCisScanResultsAggregatedByChecks item(s) carry another scanArn than "
        f"{SCAN_ARN} (or none)"
    ]
    assert "listed again with other statusCounts" in problems[0]


def test_the_report_columns_are_matched_loosely_and_a_bom_is_tolerated() -> None:
    text = (
        "\ufeffResource ID,Check ID,Title,Status\ni-1,1.1.1.1,Ensure x,passed\ni-1,3.2.1,,FAILED\n"
    )
    rows, problems = crosscheck.read_report(text.encode(), "report.csv", SCAN_ARN)
    assert problems == []
    assert rows == (
        results.ReportRow("i-1", "1.1.1.1", results.CheckStatus.PASSED),
        results.ReportRow("i-1", "3.2.1", results.CheckStatus.FAILED),
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "report.csv: the CIS report is empty"),
        (b"\xff\xfe,,", "report.csv: not a readable CSV report"),
        (b"Resource,Rule,Outcome\ni-1,1.1.1.1,PASSED\n", "report.csv: no target, check, status "),
        (b"targetResourceId,checkId\ni-1,1.1.1.1\n", "report.csv: no status column"),
        (b"targetResourceId,checkId,status\ni-1,1.1.1.1,DONE\n", "report.csv: row 2: check 1.1"),
        (b"targetResourceId,checkId,status\ni-1,x.y,PASSED\n", "report.csv: row 2: checkId 'x.y'"),
        (b"targetResourceId,checkId,status\ni-1,1.1.1.1\n", "report.csv: row 2: fewer columns"),
        (
            b"targetResourceId,checkId,status\n ,1.1.1.1,PASSED\n",
            "report.csv: row 2: check 1.1.1.1: no",
        ),
        (
            b"scanArn,targetResourceId,checkId,status\nother,i-1,1.1.1.1,PASSED\n",
            f"report.csv: 1 row(s) name another scan than {SCAN_ARN}",
        ),
    ],
)
def test_a_report_that_cannot_vouch_for_the_rows_is_a_problem_never_a_crash(
    body: bytes, problem: str
) -> None:
    rows, problems = crosscheck.read_report(body, "report.csv", SCAN_ARN)
    assert rows == () and problems[0].startswith(problem), problems


def test_unreadable_report_rows_are_capped() -> None:
    body = "checkId,targetResourceId,status\n" + "1.1.1.1,i-1,MAYBE\n" * 30
    _, problems = crosscheck.read_report(body.encode(), "report.csv", SCAN_ARN)
    assert len(problems) == crosscheck.MAX_LISTED + 1
    assert problems[-1] == "... and 20 more with report.csv's unreadable rows"


# ---------------------------------------------------------------- invoke gate on a folder


def evidence(folder: Path, truth: list[Row], told: list[Row]) -> Path:
    """A validate run's evidence folder: the rows ``told``, Inspector's views of ``truth``."""
    folder.mkdir(parents=True)
    by_target: dict[str, list[Row]] = {}
    for row in told:
        by_target.setdefault(row["targetResourceId"], []).append(row)
    counts = [
        {"targetResourceId": t, "statusCounts": status_counts(r), "targetStatus": "COMPLETED"}
        for t, r in by_target.items()
    ]
    files = {
        "results.json": [page(r, t) for t, r in by_target.items()],
        "scan.json": {
            "scanArn": SCAN_ARN,
            "securityLevel": "LEVEL_2",
            "status": "COMPLETED",
            "totalChecks": len(told),
            "failedChecks": status_counts(told)["failed"],
        },
        "targets.json": counts,
        "run.json": {"run_id": "r-1", "architectures": dict.fromkeys(by_target, "x86_64")},
        crosscheck.CHECKS_FILE: checks_view(truth),
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))
    (folder / crosscheck.REPORT_FILE).write_bytes(cis_report.csv_report(truth))
    return folder / "results.json"


def gate_on(results_json: Path, out: Path) -> gate.Verdict:
    return commands.run_gate(str(results_json), [], DAY, str(out), POLICIES, lambda _: None)


def test_invoke_gate_cross_checks_a_folder_with_the_views(tmp_path: Path) -> None:
    truth = rows_of("i-1")
    assert gate_on(evidence(tmp_path / "a", truth, truth), tmp_path / "out").verdict.value == "PASS"
    told = with_status(truth, "i-1", {UNEXCEPTED: "FAILED", EXCEPTED: "PASSED"})
    verdict = gate_on(evidence(tmp_path / "b", truth, told), tmp_path / "out")
    assert verdict.verdict is gate.Outcome.ERROR
    assert any(
        e.startswith(f"check {UNEXCEPTED} on i-1: the result rows say FAILED")
        for e in verdict.errors
    )
    assert any(crosscheck.CHECKS_VIEW in e for e in verdict.errors)


def test_invoke_gate_reads_each_view_alone_and_their_problems(tmp_path: Path) -> None:
    truth = rows_of("i-1")
    told = with_status(truth, "i-1", {EXCEPTED: "PASSED"})
    folder = evidence(tmp_path / "a", truth, told).parent
    (folder / crosscheck.CHECKS_FILE).unlink()
    only_report = gate_on(folder / "results.json", tmp_path / "out")
    assert [e for e in only_report.errors if EXCEPTED in e and "CIS report" in e]
    assert not [e for e in only_report.errors if crosscheck.CHECKS_VIEW in e]
    (folder / crosscheck.REPORT_FILE).write_text("nothing,useful\n1,2\n")
    unusable = gate_on(folder / "results.json", tmp_path / "out")
    assert unusable.verdict is gate.Outcome.ERROR
    assert any("no target, check, status column" in e for e in unusable.errors), unusable.errors


@pytest.mark.parametrize("name", [crosscheck.CHECKS_FILE, crosscheck.REPORT_FILE])
def test_a_view_without_its_scan_or_not_a_file_is_exit_2(tmp_path: Path, name: str) -> None:
    truth = rows_of("i-1")
    folder = evidence(tmp_path / "a", truth, truth).parent
    for gone in (
        "scan.json",
        "targets.json",
        *({crosscheck.CHECKS_FILE, crosscheck.REPORT_FILE} - {name}),
    ):
        (folder / gone).unlink()
    with pytest.raises(ConfigError, match=f"{name}: no scan.json beside it"):
        gate_on(folder / "results.json", tmp_path / "out")
    other = evidence(tmp_path / "b", truth, truth).parent
    (other / name).unlink()
    (other / name).mkdir()
    with pytest.raises(ConfigError, match=f"{name}: not a regular file"):
        gate_on(other / "results.json", tmp_path / "out")
