"""Filters and sorting of the CIS list operations, data-driven over one completed scan.

One module-wide world (built once): a hardened AL2023 L2 node, a stock AL2 node and an
SSM-unmanaged node, scanned at LEVEL_2, plus a recurring configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.catalog import Platform
from pipeline.localaws.query import check_id_key
from tests.localaws.conftest import Clients, World


@dataclass
class Scanned:
    world: World
    scan_arn: str
    hardened: str
    stock: str
    unmanaged: str

    def call(self, method: str, **params: Any) -> list[dict[str, Any]]:
        key = {
            "list_cis_scans": "scans",
            "list_cis_scan_configurations": "scanConfigurations",
            "list_cis_scan_results_aggregated_by_checks": "checkAggregations",
            "list_cis_scan_results_aggregated_by_target_resource": "targetResourceAggregations",
            "get_cis_scan_result_details": "scanResultDetails",
        }[method]
        if method.startswith("list_cis_scan_results") or method == "get_cis_scan_result_details":
            params["scanArn"] = self.scan_arn
        if method == "get_cis_scan_result_details":
            params.update(targetResourceId=self.hardened, accountId=self.world.aws.account_id)
        pages = self.world.c.inspector.get_paginator(method).paginate(**params)
        return [item for page in pages for item in page.get(key, [])]


@pytest.fixture(scope="module")
def scanned(local_aws_server: Any, clients: Clients) -> Iterator[Scanned]:
    local_aws_server.reset()
    world = World(local_aws_server, clients)
    hardened = world.launch(
        ami=world.hardened(Platform.AMAZON_LINUX_2023, 2), tags={"cis-scan": "run-1", "n": "1"}
    )[0]
    stock = world.launch(
        ami=world.base_ami("amazon-linux-2", "1.32"), tags={"cis-scan": "run-1", "n": "2"}
    )[0]
    unmanaged = world.launch(tags={"cis-scan": "run-1", "n": "3"}, policies=[world.CIS_POLICY])[0]
    scan_arn = world.scan()
    daily = {"daily": {"startTime": {"timeOfDay": "01:00", "timezone": "UTC"}}}
    world.c.inspector.create_cis_scan_configuration(
        scanName="another",
        securityLevel="LEVEL_1",
        schedule=daily,
        targets={"accountIds": ["SELF"], "targetResourceTags": {"other": ["x"]}},
    )
    yield Scanned(world, scan_arn, hardened, stock, unmanaged)
    local_aws_server.reset()


def eq(value: Any) -> dict[str, Any]:
    return {"comparison": "EQUALS", "value": value}


def ids(items: list[dict[str, Any]], key: str) -> list[Any]:
    return [item[key] for item in items]


Case = tuple[str, str, dict[str, Any], Callable[[Scanned, list[dict[str, Any]]], bool]]
CASES: list[Case] = [
    # ListCisScanConfigurations
    (
        "configs sorted by name",
        "list_cis_scan_configurations",
        {},
        lambda s, r: ids(r, "scanName") == ["another", "cis-test"],
    ),
    (
        "configs by name, DESC",
        "list_cis_scan_configurations",
        {"sortBy": "SCAN_NAME", "sortOrder": "DESC"},
        lambda s, r: ids(r, "scanName") == ["cis-test", "another"],
    ),
    (
        "configs by prefix",
        "list_cis_scan_configurations",
        {"filterCriteria": {"scanNameFilters": [{"comparison": "PREFIX", "value": "ano"}]}},
        lambda s, r: ids(r, "scanName") == ["another"],
    ),
    (
        "configs by target tag",
        "list_cis_scan_configurations",
        {
            "filterCriteria": {
                "targetResourceTagFilters": [
                    {"comparison": "EQUALS", "key": "cis-scan", "value": "run-1"}
                ]
            }
        },
        lambda s, r: ids(r, "scanName") == ["cis-test"],
    ),
    # ListCisScans
    (
        "scans: NOT_EQUALS its name",
        "list_cis_scans",
        {
            "filterCriteria": {
                "scanNameFilters": [{"comparison": "NOT_EQUALS", "value": "cis-test"}]
            }
        },
        lambda s, r: r == [],
    ),
    (
        "scans: completed",
        "list_cis_scans",
        {"filterCriteria": {"scanStatusFilters": [eq("COMPLETED")]}},
        lambda s, r: ids(r, "scanArn") == [s.scan_arn],
    ),
    (
        "scans: in progress",
        "list_cis_scans",
        {"filterCriteria": {"scanStatusFilters": [eq("IN_PROGRESS")]}},
        lambda s, r: r == [],
    ),
    (
        "scans: by target id",
        "list_cis_scans",
        {"filterCriteria": {"targetResourceIdFilters": [eq("i-00000000")]}},
        lambda s, r: r == [],
    ),
    (
        "scans: failed checks at least 1",
        "list_cis_scans",
        {"filterCriteria": {"failedChecksFilters": [{"lowerInclusive": 1}]}},
        lambda s, r: len(r) == 1,
    ),
    (
        "scans: failed checks at most 0",
        "list_cis_scans",
        {"filterCriteria": {"failedChecksFilters": [{"upperInclusive": 0}]}},
        lambda s, r: r == [],
    ),
    (
        "scans: started in the far future",
        "list_cis_scans",
        {"filterCriteria": {"scanAtFilters": [{"earliestScanStartTime": 4_000_000_000}]}},
        lambda s, r: r == [],
    ),
    (
        "scans: by target account",
        "list_cis_scans",
        {"filterCriteria": {"targetAccountIdFilters": [eq("123456789012")]}},
        lambda s, r: len(r) == 1,
    ),
    # ListCisScanResultsAggregatedByChecks
    (
        "checks sorted numerically",
        "list_cis_scan_results_aggregated_by_checks",
        {},
        lambda s, r: (
            [check_id_key(a["checkId"]) for a in r] == sorted(check_id_key(a["checkId"]) for a in r)
        ),
    ),
    (
        "checks of one platform",
        "list_cis_scan_results_aggregated_by_checks",
        {"filterCriteria": {"platformFilters": [eq("AMAZON_LINUX_2")]}},
        lambda s, r: len(r) == 240 and set(ids(r, "platform")) == {"AMAZON_LINUX_2"},
    ),
    (
        "checks of one id",
        "list_cis_scan_results_aggregated_by_checks",
        {"filterCriteria": {"checkIdFilters": [eq("1.1.1.1")]}},
        lambda s, r: (
            ids(r, "checkId") == ["1.1.1.1", "1.1.1.1"]
            and set(ids(r, "platform")) == {"AMAZON_LINUX_2", "AMAZON_LINUX_2023"}
        ),
    ),
    (
        "checks of level 2",
        "list_cis_scan_results_aggregated_by_checks",
        {"filterCriteria": {"securityLevelFilters": [eq("LEVEL_2")]}},
        lambda s, r: len(r) == 35 + 64 and set(ids(r, "level")) == {"LEVEL_2"},
    ),
    (
        "checks failed on at least 1 target",
        "list_cis_scan_results_aggregated_by_checks",
        {"filterCriteria": {"failedResourcesFilters": [{"lowerInclusive": 1}]}},
        lambda s, r: r and all(a["statusCounts"]["failed"] >= 1 for a in r),
    ),
    (
        "checks by failed counts DESC",
        "list_cis_scan_results_aggregated_by_checks",
        {"sortBy": "FAILED_COUNTS", "sortOrder": "DESC"},
        lambda s, r: (
            [a["statusCounts"]["failed"] for a in r]
            == sorted((a["statusCounts"]["failed"] for a in r), reverse=True)
        ),
    ),
    (
        "checks by title",
        "list_cis_scan_results_aggregated_by_checks",
        {"sortBy": "TITLE"},
        lambda s, r: ids(r, "title") == sorted(ids(r, "title")),
    ),
    # ListCisScanResultsAggregatedByTargetResource
    (
        "targets by id",
        "list_cis_scan_results_aggregated_by_target_resource",
        {},
        lambda s, r: ids(r, "targetResourceId") == sorted([s.hardened, s.stock, s.unmanaged]),
    ),
    (
        "targets unmanaged",
        "list_cis_scan_results_aggregated_by_target_resource",
        {"filterCriteria": {"targetStatusReasonFilters": [eq("SSM_UNMANAGED")]}},
        lambda s, r: ids(r, "targetResourceId") == [s.unmanaged],
    ),
    (
        "targets with a PASSED check",
        "list_cis_scan_results_aggregated_by_target_resource",
        {"filterCriteria": {"statusFilters": [eq("PASSED")]}},
        lambda s, r: (
            s.unmanaged not in ids(r, "targetResourceId")
            and s.hardened in ids(r, "targetResourceId")
        ),
    ),
    (
        "targets of a platform",
        "list_cis_scan_results_aggregated_by_target_resource",
        {"filterCriteria": {"platformFilters": [eq("AMAZON_LINUX_2")]}},
        lambda s, r: ids(r, "targetResourceId") == [s.stock],
    ),
    (
        "targets by tag",
        "list_cis_scan_results_aggregated_by_target_resource",
        {
            "filterCriteria": {
                "targetResourceTagFilters": [
                    {"comparison": "EQUALS", "key": "cis-scan", "value": "run-1"}
                ]
            }
        },
        lambda s, r: len(r) == 3,
    ),
    (
        "targets by failed counts DESC",
        "list_cis_scan_results_aggregated_by_target_resource",
        {"sortBy": "FAILED_COUNTS", "sortOrder": "DESC"},
        lambda s, r: ids(r, "targetResourceId")[-1] == s.unmanaged,
    ),
    (
        "targets completed",
        "list_cis_scan_results_aggregated_by_target_resource",
        {"filterCriteria": {"targetStatusFilters": [eq("COMPLETED")]}},
        lambda s, r: len(r) == 3,
    ),
    # GetCisScanResultDetails (the hardened node)
    (
        "details FAILED only",
        "get_cis_scan_result_details",
        {"filterCriteria": {"findingStatusFilters": [eq("FAILED")]}},
        lambda s, r: r and set(ids(r, "status")) == {"FAILED"},
    ),
    (
        "details: PREFIX and NOT_EQUALS",
        "get_cis_scan_result_details",
        {
            "filterCriteria": {
                "checkIdFilters": [
                    {"comparison": "PREFIX", "value": "1.1.1."},
                    {"comparison": "NOT_EQUALS", "value": "1.1.1.1"},
                ]
            }
        },
        lambda s, r: (
            r and all(c.startswith("1.1.1.") and c != "1.1.1.1" for c in ids(r, "checkId"))
        ),
    ),
    (
        "details of level 1",
        "get_cis_scan_result_details",
        {"filterCriteria": {"securityLevelFilters": [eq("LEVEL_1")]}},
        lambda s, r: len(r) == 179,
    ),
    (
        "details by status DESC",
        "get_cis_scan_result_details",
        {"sortBy": "STATUS", "sortOrder": "DESC"},
        lambda s, r: ids(r, "status") == sorted(ids(r, "status"), reverse=True),
    ),
    (
        "details by title",
        "get_cis_scan_result_details",
        {"filterCriteria": {"titleFilters": [eq("Ensure IP forwarding is disabled")]}},
        lambda s, r: len(r) == 1 and r[0]["title"] == "Ensure IP forwarding is disabled",
    ),
]


@pytest.mark.parametrize(
    ("method", "params", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_filter_and_sort(
    scanned: Scanned, method: str, params: dict[str, Any], expect: Callable[..., bool]
) -> None:
    result = scanned.call(method, **params)
    assert expect(scanned, result), result[:3]
