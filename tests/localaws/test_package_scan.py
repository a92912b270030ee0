"""Inspector's EC2 package scan: ListCoverage, ListFindings, ListFindingAggregations, and the
scenario's ``vulnerabilities`` knobs, through boto3."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.localaws import package_scan

World = Any
FIXABLE = {"YES", "PARTIAL"}


def by_id(value: str) -> list[dict[str, str]]:
    return [{"comparison": "EQUALS", "value": value}]


def scanned(world: World, ami: str | None = None, **kwargs: Any) -> str:
    """One managed instance, EC2 scanning enabled, its package scan completed."""
    world.aws.emulation.accounts.activate(world.aws.region)
    (instance,) = world.launch(ami=ami, **kwargs)
    world.aws.advance(10)  # SSM registration (1 s) + the initial scan (3 s)
    return str(instance)


def coverage(world: World, **criteria: Any) -> list[dict[str, Any]]:
    pages = world.c.inspector.get_paginator("list_coverage").paginate(filterCriteria=criteria)
    return [row for page in pages for row in page["coveredResources"]]


def package_row(world: World, instance: str) -> dict[str, Any]:
    (row,) = coverage(world, resourceId=by_id(instance), scanType=by_id("PACKAGE"))
    return row


def findings(world: World, **criteria: Any) -> list[dict[str, Any]]:
    pages = world.c.inspector.get_paginator("list_findings").paginate(filterCriteria=criteria)
    return [f for page in pages for f in page["findings"]]


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [f["packageVulnerabilityDetails"]["vulnerabilityId"] for f in rows]


def counts(world: World, instance: str | None = None) -> dict[str, dict[str, int]]:
    request: dict[str, Any] = {}
    if instance:
        request["aggregationRequest"] = {"ec2InstanceAggregation": {"instanceIds": by_id(instance)}}
    pages = world.c.inspector.get_paginator("list_finding_aggregations").paginate(
        aggregationType="AWS_EC2_INSTANCE", **request
    )
    return {
        r["ec2InstanceAggregation"]["instanceId"]: r["ec2InstanceAggregation"]["severityCounts"]
        for page in pages
        for r in page["responses"]
    }


def blocking(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f["packageVulnerabilityDetails"]["vulnerabilityId"]
        for f in rows
        if f["severity"] in ("CRITICAL", "HIGH") and f["fixAvailable"] in FIXABLE
    ]


def load(world: World, section: dict[str, Any]) -> None:
    """Put a ``vulnerabilities:`` section in force (loading resets Inspector's activation)."""
    world.aws.load_scenario({"vulnerabilities": section})
    world.aws.emulation.accounts.activate(world.aws.region)


def test_nothing_is_covered_unless_ec2_scanning_is_enabled(world: World) -> None:
    world.launch()
    world.aws.advance(10)
    assert coverage(world) == []
    assert findings(world) == []
    world.aws.emulation.accounts.activate(world.aws.region)
    assert len(coverage(world)) == 2  # NETWORK and PACKAGE


def test_coverage_is_pending_then_active(world: World) -> None:
    world.aws.emulation.accounts.activate(world.aws.region)
    (instance,) = world.launch()
    launched = world.aws.clock.now()
    world.aws.advance(2)
    row = package_row(world, instance)
    assert row["scanStatus"] == {"statusCode": "INACTIVE", "reason": "PENDING_INITIAL_SCAN"}
    assert "lastScannedAt" not in row
    assert findings(world, resourceId=by_id(instance)) == []
    world.aws.advance(5)
    row = package_row(world, instance)
    assert row["scanStatus"] == {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"}
    assert row["lastScannedAt"].timestamp() > launched
    described = world.c.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]
    # the same clock (EC2 reports whole seconds)
    assert abs(described["Instances"][0]["LaunchTime"].timestamp() - launched) < 1
    assert (row["resourceType"], row["scanMode"]) == ("AWS_EC2_INSTANCE", "EC2_SSM_AGENT_BASED")
    assert row["resourceMetadata"]["ec2"]["platform"] == "LINUX"
    network = coverage(world, resourceId=by_id(instance), scanType=by_id("NETWORK"))
    assert [r["scanStatus"]["statusCode"] for r in network] == ["ACTIVE"]
    not_active = [{"comparison": "NOT_EQUALS", "value": "ACTIVE"}]
    assert coverage(world, scanStatusCode=not_active) == []
    assert coverage(world, lambdaFunctionName=by_id("f")) == []  # a field EC2 rows lack


def test_reasons_from_the_instance(world: World) -> None:
    world.aws.emulation.accounts.activate(world.aws.region)
    (unmanaged,) = world.launch(policies=[world.CIS_POLICY])
    (stopped,) = world.launch()
    (terminated,) = world.launch()
    unknown_os = world.ami({"cis-ami:platform": "WINDOWS_SERVER_2022"})
    (unsupported,) = world.launch(ami=unknown_os)
    world.aws.advance(10)
    world.c.ec2.stop_instances(InstanceIds=[stopped])
    world.c.ec2.terminate_instances(InstanceIds=[terminated])
    rows = coverage(world, scanType=by_id("PACKAGE"))
    reasons = {r["resourceId"]: r["scanStatus"]["reason"] for r in rows}
    assert reasons == {
        unmanaged: "UNMANAGED_EC2_INSTANCE",
        stopped: "EC2_INSTANCE_STOPPED",
        unsupported: "UNSUPPORTED_OS",
    }


def test_stock_has_fixable_critical_findings_hardened_none(world: World) -> None:
    stock = scanned(world)
    hardened = scanned(world, world.hardened(world.Platform.AMAZON_LINUX_2023))
    stock_rows = findings(world, resourceId=by_id(stock))
    hardened_rows = findings(world, resourceId=by_id(hardened))
    assert {"CVE-2025-90101", "CVE-2025-90109"} <= set(blocking(stock_rows))
    assert blocking(hardened_rows) == []
    assert {f["severity"] for f in hardened_rows} >= {"HIGH", "MEDIUM", "LOW"}  # unfixed ones
    assert {f["fixAvailable"] for f in hardened_rows} == {"NO"}
    assert all(f["resources"][0]["id"] == hardened for f in hardened_rows)


def test_a_finding_is_shaped_like_inspectors(world: World) -> None:
    arm = world.base_ami(arch="arm64")
    instance = scanned(world, arm)
    (finding,) = findings(
        world, resourceId=by_id(instance), vulnerabilityId=by_id("CVE-2025-90101")
    )
    assert finding["findingArn"].startswith("arn:aws:inspector2:us-east-1:123456789012:finding/")
    assert (finding["type"], finding["status"], finding["severity"]) == (
        "PACKAGE_VULNERABILITY",
        "ACTIVE",
        "CRITICAL",
    )
    assert (finding["inspectorScore"], finding["fixAvailable"]) == (9.8, "YES")
    assert finding["title"] == "CVE-2025-90101 - openssl-libs"
    (resource,) = finding["resources"]
    assert (resource["type"], resource["id"]) == ("AWS_EC2_INSTANCE", instance)
    details = resource["details"]["awsEc2Instance"]
    assert (details["platform"], details["imageId"]) == ("AMAZON_LINUX_2023", arm)
    (package,) = finding["packageVulnerabilityDetails"]["vulnerablePackages"]
    assert package == {
        "name": "openssl-libs",
        "version": "3.2.2",
        "release": "1.amzn2023.0.2",
        "epoch": 1,
        "arch": "aarch64",
        "packageManager": "OS",
        "fixedInVersion": "1:3.2.2-1.amzn2023.0.4",
        "remediation": "dnf update openssl-libs",
    }
    (unfixed,) = findings(world, vulnerabilityId=by_id("CVE-2025-90106"))
    assert unfixed["packageVulnerabilityDetails"]["vulnerablePackages"][0]["fixedInVersion"] == (
        "NotAvailable"
    )
    (partial,) = findings(world, vulnerabilityId=by_id("CVE-2025-90110"))
    assert partial["fixAvailable"] == "PARTIAL"


def test_filters(world: World) -> None:
    one = scanned(world)
    two = scanned(world)
    everything = findings(world)
    assert Counter(f["resources"][0]["id"] for f in everything) == {one: 10, two: 10}
    only_one = findings(world, resourceId=by_id(one))
    assert {f["resources"][0]["id"] for f in only_one} == {one}
    critical = findings(world, resourceId=by_id(one), severity=by_id("CRITICAL"))
    assert sorted(ids(critical)) == ["CVE-2025-90101", "CVE-2025-90109"]
    no_fix = findings(world, resourceId=by_id(one), fixAvailable=by_id("NO"))
    assert sorted(ids(no_fix)) == ["CVE-2025-90106", "CVE-2025-90107", "CVE-2025-90108"]
    assert findings(world, findingStatus=by_id("SUPPRESSED")) == []
    assert findings(world, findingType=by_id("NETWORK_REACHABILITY")) == []
    prefix = [{"comparison": "PREFIX", "value": "CVE-2025-9010"}]
    assert len(findings(world, resourceId=by_id(one), vulnerabilityId=prefix)) == 9
    scores = findings(world, resourceId=by_id(one), inspectorScore=[{"lowerInclusive": 9.0}])
    assert sorted(ids(scores)) == ["CVE-2025-90101", "CVE-2025-90109"]
    package = [{"name": by_id("kernel")[0]}]
    kernel = findings(world, resourceId=by_id(one), vulnerablePackages=package)
    assert ids(kernel) == ["CVE-2025-90109"]
    assert findings(world, ecrImageHash=by_id("sha256:x")) == []


def test_pagination(world: World) -> None:
    instance = scanned(world)
    first = world.c.inspector.list_findings(
        filterCriteria={"resourceId": by_id(instance)}, maxResults=4
    )
    assert len(first["findings"]) == 4 and first["nextToken"]
    pages = world.c.inspector.get_paginator("list_findings").paginate(
        filterCriteria={"resourceId": by_id(instance)}, PaginationConfig={"PageSize": 3}
    )
    sizes = [len(page["findings"]) for page in pages]
    assert sizes == [3, 3, 3, 1]
    big = world.c.inspector.list_findings(maxResults=100)  # FindingList holds 25 at most
    assert len(big["findings"]) == 10 and "nextToken" not in big
    with pytest.raises(ClientError) as caught:  # a token belongs to its request
        world.c.inspector.list_findings(
            filterCriteria={"severity": by_id("LOW")}, nextToken=first["nextToken"]
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    ordered = world.c.inspector.list_findings(
        sortCriteria={"field": "INSPECTOR_SCORE", "sortOrder": "ASC"}
    )["findings"]
    assert [f["inspectorScore"] for f in ordered] == sorted(f["inspectorScore"] for f in ordered)


def test_aggregation_counts_agree_with_findings(world: World) -> None:
    stock = scanned(world)
    hardened = scanned(world, world.hardened(world.Platform.AMAZON_LINUX_2023))
    aggregated = counts(world)
    for instance in (stock, hardened):
        listed = Counter(f["severity"].lower() for f in findings(world, resourceId=by_id(instance)))
        expected = {s: listed.get(s, 0) for s in ("critical", "high", "medium", "low")}
        assert {s: aggregated[instance][s] for s in expected} == expected
        assert aggregated[instance]["all"] == sum(listed.values())
    assert set(counts(world, hardened)) == {hardened}
    with pytest.raises(ClientError) as caught:
        world.c.inspector.list_finding_aggregations(aggregationType="PACKAGE")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_a_new_cve_appears_on_the_hardened_image(world: World) -> None:
    hardened = scanned(world, world.hardened(world.Platform.AMAZON_LINUX_2023))
    assert blocking(findings(world, resourceId=by_id(hardened))) == []
    load(world, {"publish": ["CVE-2026-0001"]})
    rows = findings(world, resourceId=by_id(hardened))
    assert blocking(rows) == ["CVE-2026-0001"]
    (new,) = [f for f in rows if ids([f]) == ["CVE-2026-0001"]]
    (package,) = new["packageVulnerabilityDetails"]["vulnerablePackages"]
    assert (package["version"], package["release"], package["fixedInVersion"]) == (
        "3.2.2",
        "1.amzn2023.0.4",  # the hardened image has the earlier security update
        "1:3.2.2-1.amzn2023.0.5",
    )
    assert counts(world)[hardened]["critical"] == 1


@pytest.mark.parametrize(
    ("section", "reason"),
    [
        ({"scan_after_s": "never"}, "PENDING_INITIAL_SCAN"),
        ({"reason": "STALE_INVENTORY"}, "STALE_INVENTORY"),
        ({"reason": "NO_INVENTORY"}, "NO_INVENTORY"),
        ({"reason": "UNSUPPORTED_OS"}, "UNSUPPORTED_OS"),
    ],
)
def test_coverage_that_never_completes(world: World, section: dict[str, Any], reason: str) -> None:
    world.aws.load_scenario({"vulnerabilities": {"coverage": section}})
    instance = scanned(world)
    world.aws.advance(3600)
    row = package_row(world, instance)
    assert row["scanStatus"] == {"statusCode": "INACTIVE", "reason": reason}
    assert "lastScannedAt" not in row
    assert findings(world) == []


def test_lies_of_the_findings_api(world: World) -> None:
    world.aws.load_scenario(
        {
            "vulnerabilities": {
                "drop": ["CVE-2025-90101"],
                "conflicting_duplicate": {"CVE-2025-90102": "LOW"},
                "other_resource": ["CVE-2025-90109"],
                "suppressed": ["CVE-2025-90104"],
            }
        }
    )
    instance = scanned(world)
    rows = findings(world, resourceId=by_id(instance))
    listed = ids(rows)
    assert "CVE-2025-90101" not in listed  # dropped, yet counted below
    assert [f["severity"] for f in rows if ids([f]) == ["CVE-2025-90102"]] == ["HIGH", "LOW"]
    owners = {f["resources"][0]["id"] for f in rows if ids([f]) == ["CVE-2025-90109"]}
    assert len(owners) == 2 and instance in owners  # one for another resource
    (suppressed,) = [f for f in rows if ids([f]) == ["CVE-2025-90104"]]
    assert suppressed["status"] == "SUPPRESSED"
    aggregated = counts(world)[instance]
    assert aggregated["critical"] == 2 and aggregated["medium"] == 2  # truth; not the suppressed


def test_a_truncated_or_endless_finding_list(world: World) -> None:
    world.aws.load_scenario({"vulnerabilities": {"max_pages": 1, "page_size": 4}})
    instance = scanned(world)
    assert len(findings(world, resourceId=by_id(instance))) == 4  # no token after one page
    load(world, {"leftover_token": True})
    page = world.c.inspector.list_findings(filterCriteria={"resourceId": by_id(instance)})
    assert len(page["findings"]) == 10 and page["nextToken"]
    following = world.c.inspector.list_findings(
        filterCriteria={"resourceId": by_id(instance)}, nextToken=page["nextToken"]
    )
    assert following["findings"] == [] and following["nextToken"]


def test_a_response_that_breaks_the_model_is_a_500(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = scanned(world)
    real = package_scan.finding

    def broken(*args: Any) -> dict[str, Any]:
        return {**real(*args), "cveId": "not in the model"}

    monkeypatch.setattr(package_scan, "finding", broken)
    with pytest.raises(ClientError) as caught:
        world.c.inspector.list_findings(filterCriteria={"resourceId": by_id(instance)})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_the_initial_scan_starts_when_scanning_is_enabled(world: World) -> None:
    """An instance managed long before EC2 scanning was enabled is scanned after enabling."""
    (instance,) = world.launch()
    world.aws.advance(600)
    world.c.inspector.enable(resourceTypes=["EC2"])
    assert coverage(world) == []  # ENABLING
    world.aws.advance(1)
    assert package_row(world, instance)["scanStatus"]["reason"] == "PENDING_INITIAL_SCAN"
    enabled = world.aws.clock.now()
    world.aws.advance(3)
    row = package_row(world, instance)
    assert row["scanStatus"]["reason"] == "SUCCESSFUL"
    assert row["lastScannedAt"].timestamp() == pytest.approx(enabled + 3)


def test_coverage_pages(world: World) -> None:
    world.aws.emulation.accounts.activate(world.aws.region)
    world.launch(count=3)
    world.aws.advance(10)
    pages = world.c.inspector.get_paginator("list_coverage").paginate(
        PaginationConfig={"PageSize": 2}
    )
    sizes = [len(page["coveredResources"]) for page in pages]
    assert sizes == [2, 2, 2]
    everything = coverage(world)
    assert Counter(r["scanType"] for r in everything) == {"NETWORK": 3, "PACKAGE": 3}


def test_a_hardened_build_without_security_updates_keeps_the_stock_packages(world: World) -> None:
    tags = {
        "cis-ami:platform": "AMAZON_LINUX_2023",
        "cis-ami:hardening-level": "2",
        "cis-ami:security-updates": "false",
    }
    instance = scanned(world, world.ami(tags))
    assert {"CVE-2025-90101", "CVE-2025-90109"} <= set(
        blocking(findings(world, resourceId=by_id(instance)))
    )
