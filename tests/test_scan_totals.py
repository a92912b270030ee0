"""The scan's totals (ListCisScans totalChecks/failedChecks) are reconciled under exactly the two
meanings AWS leaves possible, each strictly, and the verdict records which one matched."""

from __future__ import annotations

import pytest

from pipeline import catalog_refresh, completeness
from pipeline.aws import inspector
from pipeline.completeness import DISTINCT, ROWS
from pipeline.results import CheckResult, CheckStatus, ScanFacts

ARN = "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/cis-scan/s"
P, F = CheckStatus.PASSED, CheckStatus.FAILED


def rows(*targets: dict[str, CheckStatus]) -> list[CheckResult]:
    return [
        CheckResult(check_id, status, f"i-{n}", scan_arn=ARN)
        for n, target in enumerate(targets)
        for check_id, status in target.items()
    ]


# x86_64 fails 1.1 and 1.2; arm64 fails 1.2 only: 6 rows, 3 FAILED; 3 checks, 2 failed somewhere.
TWO = rows({"1.1": F, "1.2": F, "1.3": P}, {"1.1": P, "1.2": F, "1.3": P})
ONE = rows({"1.1": F, "1.2": P})

CASES = [
    pytest.param(TWO, 6, 3, ROWS, id="two-targets-rows"),
    pytest.param(TWO, 3, 2, DISTINCT, id="two-targets-distinct-checks"),
    pytest.param(TWO, 3, None, DISTINCT, id="only-the-total"),
    pytest.param(ONE, 2, 1, f"{ROWS} = {DISTINCT}", id="one-target-cannot-tell"),
]


@pytest.mark.parametrize(("results", "total", "failed", "meaning"), CASES)
def test_either_meaning_reconciles_and_is_named(
    results: list[CheckResult], total: int, failed: int | None, meaning: str
) -> None:
    facts = ScanFacts(2, None, total, failed, ARN)
    assert completeness.scan_totals(results, facts) == ([], meaning)


@pytest.mark.parametrize(
    ("total", "failed"),
    [
        pytest.param(6, 2, id="rows-total-with-distinct-failed"),
        pytest.param(3, 3, id="distinct-total-with-rows-failed"),
        pytest.param(5, 3, id="a-row-missing"),
        pytest.param(3, 1, id="a-failure-missing"),
    ],
)
def test_a_mixture_or_a_miss_is_no_match(total: int, failed: int) -> None:
    problems, meaning = completeness.scan_totals(TWO, ScanFacts(2, None, total, failed, ARN))
    assert meaning is None
    assert len(problems) == 1 and "under neither meaning" in problems[0]
    assert f"totalChecks={total}, failedChecks={failed}" in problems[0]


def test_no_totals_no_meaning() -> None:
    assert completeness.scan_totals(TWO, ScanFacts(2, None, None, None, ARN)) == ([], None)
    assert completeness.scan_totals(TWO, None) == ([], None)


def _aggregation(check_id: str, passed: int, failed: int) -> inspector.CheckAggregation:
    return inspector.CheckAggregation(
        check_id, "t", "LEVEL_1", "AMAZON_LINUX_2023", passed, failed, 0
    )


# Two targets: 1.1 fails on one, 1.2 on both, 1.3 on none: 6 rows, 3 FAILED; 3 checks, 2 failed.
AGGREGATIONS = [_aggregation("1.1", 1, 1), _aggregation("1.2", 0, 2), _aggregation("1.3", 2, 0)]


@pytest.mark.parametrize(
    ("total", "failed", "said"),
    [
        (6, 3, f"count {ROWS}"),
        (3, 2, f"count {DISTINCT}"),
        (4, 2, "match neither meaning"),
    ],
)
def test_catalogue_refresh_says_what_a_real_scans_totals_count(
    total: int, failed: int, said: str
) -> None:
    scan = inspector.CisScan(ARN, "arn:config", "COMPLETED", total, failed, {})
    line = catalog_refresh.totals_line(scan, AGGREGATIONS)
    assert line.startswith("TOTALS") and said in line, line
