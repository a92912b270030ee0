"""The scenario's ``results:`` knobs: each one makes the results API lie exactly as documented.

Every test scans a stock AL2023 node (a mix of PASSED, FAILED and SKIPPED rows) through boto3
against the server, with the knob, and compares with what the service itself claims.
"""

from __future__ import annotations

import csv
import io
import urllib.request
from typing import Any

import pytest

from pipeline import catalog
from pipeline.catalog import Platform

World = Any  # the ``world`` fixture (tests/localaws/conftest.py)
AL2023 = catalog.load(Platform.AMAZON_LINUX_2023)
AL2 = catalog.load(Platform.AMAZON_LINUX_2)


def _scan(world: World, results: dict[str, Any] | None, level: str = "LEVEL_2") -> dict[str, Any]:
    """Launch one stock AL2023 node, scan it with ``results`` in force; everything observed."""
    if results is not None:
        world.aws.load_scenario({"results": results})
    (instance,) = world.launch()
    scan_arn = world.scan(level=level)
    (scan,) = world.c.inspector.list_cis_scans()["scans"]
    return {
        "instance": instance,
        "scan": scan,
        "target": world.targets(scan_arn)[instance],
        "rows": world.details(scan_arn, instance),
        "arn": scan_arn,
    }


def _reset(world: World) -> None:
    world.aws.reset()
    world._profiles.clear()  # the roles went with the reset


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"failed": 0, "passed": 0, "skipped": 0}
    for row in rows:
        counts[row["status"].lower()] += 1
    return counts


def _a(rows: list[dict[str, Any]], status: str) -> str:
    return str(next(r["checkId"] for r in rows if r["status"] == status))


def test_truthful_by_default(world: World) -> None:
    got = _scan(world, None)
    assert got["target"]["statusCounts"] == _counts(got["rows"])
    assert got["scan"]["totalChecks"] == len(got["rows"]) == len(AL2023.in_scope(2))
    assert got["scan"]["failedChecks"] == _counts(got["rows"])["failed"] > 0
    assert len({r["checkId"] for r in got["rows"]}) == len(got["rows"])


def test_drop_status_hides_rows_the_counts_still_count(world: World) -> None:
    got = _scan(world, {"drop_status": ["FAILED"]})
    counts = got["target"]["statusCounts"]
    assert counts["failed"] > 0
    assert _counts(got["rows"])["failed"] == 0
    assert len(got["rows"]) == got["scan"]["totalChecks"] - counts["failed"]
    assert got["scan"]["failedChecks"] == counts["failed"]


def test_max_pages_ends_pagination_early(world: World) -> None:
    got = _scan(world, {"max_pages": 1, "page_size": 50})
    page = world.c.inspector.get_cis_scan_result_details(
        scanArn=got["arn"],
        targetResourceId=got["instance"],
        accountId=world.aws.account_id,
        maxResults=1000,  # page_size caps it anyway
    )
    assert "nextToken" not in page
    assert len(got["rows"]) == len(page["scanResultDetails"]) == 50 < got["scan"]["totalChecks"]
    assert sum(got["target"]["statusCounts"].values()) == got["scan"]["totalChecks"]


def test_max_pages_counts_pages_of_the_requested_size(world: World) -> None:
    got = _scan(world, {"max_pages": 2})
    rows = world.details(got["arn"], got["instance"], PaginationConfig={"PageSize": 10})
    assert len(rows) == 20


def test_duplicates_identical_and_conflicting(world: World) -> None:
    truth = _scan(world, None)
    passed, failed = _a(truth["rows"], "PASSED"), _a(truth["rows"], "FAILED")
    _reset(world)
    got = _scan(world, {"duplicate": [passed], "conflicting_duplicate": {failed: "PASSED"}})
    same = [r for r in got["rows"] if r["checkId"] == passed]
    assert len(same) == 2 and same[0] == same[1]
    clash = [r for r in got["rows"] if r["checkId"] == failed]
    assert sorted(r["status"] for r in clash) == ["FAILED", "PASSED"]
    assert len(got["rows"]) == got["scan"]["totalChecks"] + 2  # the counts hold the truth
    assert got["target"]["statusCounts"] == truth["target"]["statusCounts"]


def test_status_counts_delta_changes_only_the_target_counts(world: World) -> None:
    got = _scan(world, {"status_counts_delta": {"failed": 1, "passed": -2}})
    real = _counts(got["rows"])
    want = {**real, "failed": real["failed"] + 1, "passed": real["passed"] - 2}
    assert got["target"]["statusCounts"] == want
    assert got["scan"]["totalChecks"] == len(got["rows"])


def test_scan_counts_delta_changes_only_the_scan_counts(world: World) -> None:
    got = _scan(world, {"scan_counts_delta": {"total_checks": 3, "failed_checks": -1}})
    real = _counts(got["rows"])
    assert got["scan"]["totalChecks"] == len(got["rows"]) + 3
    assert got["scan"]["failedChecks"] == real["failed"] - 1
    assert got["target"]["statusCounts"] == real


def test_scan_level_scans_and_reports_another_level(world: World) -> None:
    got = _scan(world, {"scan_level": "LEVEL_1"}, level="LEVEL_2")
    assert got["scan"]["securityLevel"] == "LEVEL_1"
    assert {r["level"] for r in got["rows"]} == {"LEVEL_1"}
    assert {r["checkId"] for r in got["rows"]} == {r.id for r in AL2023.in_scope(1)}
    (config,) = world.c.inspector.list_cis_scan_configurations()["scanConfigurations"]
    assert config["securityLevel"] == "LEVEL_2"  # what was asked for


def test_title_overrides_rename_rows(world: World) -> None:
    check = AL2023.in_scope(1)[0].id
    got = _scan(world, {"title_overrides": {check: "Ensure something else entirely"}})
    (row,) = [r for r in got["rows"] if r["checkId"] == check]
    assert row["title"] == "Ensure something else entirely"
    others = [r for r in got["rows"] if r["checkId"] != check]
    assert all(r["title"] == AL2023.recommendations[r["checkId"]].title for r in others)


def test_benchmark_gives_rows_of_another_catalogue(world: World) -> None:
    got = _scan(world, {"benchmark": "AMAZON_LINUX_2"})
    assert {r["checkId"] for r in got["rows"]} == {r.id for r in AL2.in_scope(2)}
    assert {r["platform"] for r in got["rows"]} == {"AMAZON_LINUX_2023"}  # the host's OS
    assert all(r["title"] == AL2.recommendations[r["checkId"]].title for r in got["rows"])
    assert got["target"]["statusCounts"] == _counts(got["rows"])


def test_skip_automated_listed_and_all(world: World) -> None:
    truth = _scan(world, None)
    passed, failed = _a(truth["rows"], "PASSED"), _a(truth["rows"], "FAILED")
    _reset(world)
    got = _scan(world, {"skip_automated": [passed, failed]})
    status = {r["checkId"]: r for r in got["rows"]}
    assert status[passed]["status"] == status[failed]["status"] == "SKIPPED"
    assert "scenario" in status[passed]["statusReason"]
    assert got["target"]["statusCounts"] == _counts(got["rows"])
    _reset(world)
    every = _scan(world, {"skip_automated": "all"})
    assert {r["status"] for r in every["rows"]} == {"SKIPPED"}
    assert every["scan"]["failedChecks"] == 0


def _by_checks(world: World, scan_arn: str) -> dict[str, dict[str, int]]:
    pages = world.c.inspector.get_paginator("list_cis_scan_results_aggregated_by_checks")
    return {
        item["checkId"]: item["statusCounts"]
        for page in pages.paginate(scanArn=scan_arn, PaginationConfig={"PageSize": 100})
        for item in page.get("checkAggregations", [])
    }


def _report(world: World, scan_arn: str) -> dict[str, str]:
    """checkId -> status in the CSV report (one target)."""
    url = world.c.inspector.get_cis_scan_report(scanArn=scan_arn, reportFormat="CSV")["url"]
    with urllib.request.urlopen(url) as response:  # a plain HTTP client, as the pipeline
        body = response.read().decode("utf-8")
    return {row["checkId"]: row["status"] for row in csv.DictReader(io.StringIO(body))}


def _one(status: str) -> dict[str, int]:
    return {"failed": 0, "passed": 0, "skipped": 0, status.lower(): 1}


def test_swap_status_exchanges_statuses_in_the_rows_only(world: World) -> None:
    truth = _scan(world, None)
    passed, failed = _a(truth["rows"], "PASSED"), _a(truth["rows"], "FAILED")
    _reset(world)
    got = _scan(world, {"swap_status": {passed: failed}})
    status = {r["checkId"]: r["status"] for r in got["rows"]}
    assert (status[passed], status[failed]) == ("FAILED", "PASSED")
    assert _counts(got["rows"]) == got["target"]["statusCounts"] == truth["target"]["statusCounts"]
    assert got["scan"]["failedChecks"] == truth["scan"]["failedChecks"]
    by_checks, report = _by_checks(world, got["arn"]), _report(world, got["arn"])
    assert (by_checks[passed], by_checks[failed]) == (_one("PASSED"), _one("FAILED"))
    assert (report[passed], report[failed]) == ("PASSED", "FAILED")


def test_aggregated_status_lies_in_the_per_check_view_only(world: World) -> None:
    truth = _scan(world, None)
    failed = _a(truth["rows"], "FAILED")
    _reset(world)
    got = _scan(world, {"aggregated_status": {failed: "PASSED"}})
    assert _by_checks(world, got["arn"])[failed] == _one("PASSED")
    assert {r["checkId"]: r["status"] for r in got["rows"]}[failed] == "FAILED"
    assert _report(world, got["arn"])[failed] == "FAILED"
    assert got["target"]["statusCounts"] == truth["target"]["statusCounts"]


def test_report_status_lies_in_the_csv_only(world: World) -> None:
    truth = _scan(world, None)
    failed = _a(truth["rows"], "FAILED")
    _reset(world)
    got = _scan(world, {"report_status": {failed: "SKIPPED"}})
    assert _report(world, got["arn"])[failed] == "SKIPPED"
    assert {r["checkId"]: r["status"] for r in got["rows"]}[failed] == "FAILED"
    assert _by_checks(world, got["arn"])[failed] == _one("FAILED")
    pdf = world.c.inspector.get_cis_scan_report(scanArn=got["arn"])["url"]  # the PDF: the truth
    with urllib.request.urlopen(pdf) as response:
        assert f"FAILED   {failed}".encode() in response.read()


def test_all_skipped(world: World) -> None:
    got = _scan(world, {"all_skipped": True})
    assert {r["status"] for r in got["rows"]} == {"SKIPPED"}
    counts = got["target"]["statusCounts"]
    assert counts == {"failed": 0, "passed": 0, "skipped": len(AL2023.in_scope(2))}


@pytest.mark.parametrize(
    ("results", "problem"),
    [
        ({"drop_status": ["BROKEN"]}, "$.results.drop_status[0]: 'BROKEN' is not one of"),
        ({"max_pages": 0}, "$.results.max_pages: 0 is less than the minimum of 1"),
        ({"duplicate": ["9.9.9"]}, "$.results.duplicate: '9.9.9' is not a recommendation"),
        ({"status_counts_delta": {"unknown": 1}}, "$.results.status_counts_delta: Additional"),
        ({"scan_counts_delta": {"total_checks": 1.5}}, "$.results.scan_counts_delta.total_che"),
        ({"scan_level": "LEVEL_3"}, "$.results.scan_level: 'LEVEL_3' is not one of"),
        ({"title_overrides": {"1.1.1.1": ""}}, "$.results.title_overrides['1.1.1.1']: '' should"),
        ({"benchmark": "UBUNTU"}, "$.results.benchmark: 'UBUNTU' is not one of"),
        ({"skip_automated": "some"}, "$.results.skip_automated: 'some' is not valid"),
        ({"all_skipped": "yes"}, "$.results.all_skipped: 'yes' is not of type 'boolean'"),
        ({"conflicting_duplicate": {"1.1.1.1": "MAYBE"}}, "$.results.conflicting_duplicate"),
        ({"swap_status": {"1.1.1.1": "9.9.9"}}, "$.results.swap_status: '9.9.9' is not a rec"),
        ({"swap_status": {"1.1.1.1": "1.1.1.1"}}, "$.results.swap_status: 1.1.1.1 named more"),
        (
            {"swap_status": {"1.1.1.1": "3.2.1", "3.2.1": "1.1.1.2"}},
            "$.results.swap_status: 3.2.1 named more than once",
        ),
        ({"swap_status": {"1.1.1.1": 3}}, "$.results.swap_status['1.1.1.1']: 3 is not of"),
        ({"aggregated_status": {"1.1.1.1": "MAYBE"}}, "$.results.aggregated_status"),
        ({"aggregated_status": {"9.9.9": "PASSED"}}, "$.results.aggregated_status: '9.9.9' is"),
        ({"report_status": {"1.1.1.1": "passed"}}, "$.results.report_status"),
        ({"report_status": {"9.9.9": "PASSED"}}, "$.results.report_status: '9.9.9' is not"),
    ],
)
def test_invalid_results_knobs_name_the_json_path(results: dict[str, Any], problem: str) -> None:
    from pipeline.errors import ConfigError
    from pipeline.localaws import scenario

    with pytest.raises(ConfigError) as caught:
        scenario.parse({"results": results}, source="s.yaml")
    assert any(line.startswith(f"s.yaml: {problem}") for line in caught.value.lines()), (
        caught.value.lines()
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"scan": {"duration_s": float("nan")}}, "s.yaml: $.scan.duration_s: nan is not a finite"),
        ({"ssm": {"online_after_s": float("inf")}}, "s.yaml: $.ssm.online_after_s: inf is not a"),
        ({"faults": [[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}, "s.yaml: $.faults[0]"),
    ],
    ids=["nan", "infinity", "too-deep"],
)
def test_posted_scenarios_are_bounded_too(raw: dict[str, Any], problem: str) -> None:
    """What ``POST /_localaws/scenario`` hands to ``parse`` (JSON allows NaN and any depth)."""
    from pipeline.errors import ConfigError
    from pipeline.localaws import scenario

    with pytest.raises(ConfigError) as caught:
        scenario.parse(raw, source="s.yaml")
    assert caught.value.lines()[0].startswith(problem), caught.value.lines()
