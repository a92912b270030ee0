"""Pagination as modelled: maxResults limits (1000 for details, 100 for aggregations, scans
capped at 50 a page), nextToken round trips through botocore paginators, tokens bound to queries."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.catalog import Platform

World = Any
INSTANCES = 120


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[list[dict[str, Any]]]:
    return [page.get(key, []) for page in client.get_paginator(operation).paginate(**kwargs)]


def test_many_instances_and_many_checks_page_as_modelled(world: World) -> None:
    """One LEVEL_2 scan of INSTANCES hardened AL2023 nodes, 243 checks each."""
    instances = world.launch(ami=world.hardened(Platform.AMAZON_LINUX_2023, 2), count=INSTANCES)
    scan_arn = world.scan(level="LEVEL_2")
    pages = _pages(
        world.c.inspector,
        "list_cis_scan_results_aggregated_by_target_resource",
        "targetResourceAggregations",
        scanArn=scan_arn,
        PaginationConfig={"PageSize": 100},
    )
    assert [len(p) for p in pages] == [100, INSTANCES - 100]
    ids = [t["targetResourceId"] for page in pages for t in page]
    assert ids == sorted(instances)  # default sort: RESOURCE_ID, no duplicates, none lost
    (scan,) = world.c.inspector.list_cis_scans()["scans"]
    assert scan["totalChecks"] == INSTANCES * 243

    checks = _pages(
        world.c.inspector,
        "list_cis_scan_results_aggregated_by_checks",
        "checkAggregations",
        scanArn=scan_arn,
        PaginationConfig={"PageSize": 100},
    )
    assert [len(p) for p in checks] == [100, 100, 43]
    for aggregation in (a for page in checks for a in page):
        assert sum(aggregation["statusCounts"].values()) == INSTANCES

    # details: one page of up to 1000, or smaller pages with the same rows in the same order
    common = {
        "scanArn": scan_arn,
        "targetResourceId": instances[7],
        "accountId": world.aws.account_id,
    }
    whole = world.c.inspector.get_cis_scan_result_details(maxResults=1000, **common)
    assert len(whole["scanResultDetails"]) == 243 and "nextToken" not in whole
    pages = _pages(
        world.c.inspector,
        "get_cis_scan_result_details",
        "scanResultDetails",
        PaginationConfig={"PageSize": 50},
        **common,
    )
    assert [len(p) for p in pages] == [50, 50, 50, 50, 43]
    assert [r["findingArn"] for p in pages for r in p] == [
        r["findingArn"] for r in whole["scanResultDetails"]
    ]


def test_list_cis_scans_holds_at_most_50_a_page(world: World) -> None:
    for index in range(55):
        world.create(tags={"batch": [str(index)]})
    first = world.c.inspector.list_cis_scans(maxResults=100)
    assert len(first["scans"]) == 50 and first["nextToken"]
    second = world.c.inspector.list_cis_scans(maxResults=100, nextToken=first["nextToken"])
    assert len(second["scans"]) == 5 and "nextToken" not in second


def test_a_token_is_bound_to_its_query(world: World) -> None:
    for index in range(3):
        world.create(tags={"batch": [str(index)]})
    token = world.c.inspector.list_cis_scan_configurations(maxResults=1)["nextToken"]
    with pytest.raises(ClientError, match="ValidationException"):
        world.c.inspector.list_cis_scan_configurations(
            maxResults=1, nextToken=token, sortOrder="DESC"
        )
    with pytest.raises(ClientError, match="ValidationException"):
        world.c.inspector.list_cis_scan_configurations(nextToken="not-a-token")
    rest = world.c.inspector.list_cis_scan_configurations(maxResults=1, nextToken=token)
    assert len(rest["scanConfigurations"]) == 1


def test_ssm_pages_of_5(world: World) -> None:
    world.launch(count=12)
    world.aws.advance(2)
    pages = _pages(
        world.c.ssm,
        "describe_instance_information",
        "InstanceInformationList",
        PaginationConfig={"PageSize": 5},
    )
    assert [len(p) for p in pages] == [5, 5, 2]
    with pytest.raises(world.c.ssm.exceptions.InvalidNextToken):
        world.c.ssm.describe_instance_information(NextToken="garbage")
