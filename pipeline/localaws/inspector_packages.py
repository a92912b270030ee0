"""Inspector package scanning of EC2 instances: ``ListCoverage``, ``ListFindings`` and
``ListFindingAggregations`` (``AWS_EC2_INSTANCE``), which moto lacks or answers from nothing.

Coverage and findings come from ``package_scan`` (what Inspector knows: nothing unless EC2
scanning is ENABLED in the region). Filters follow the models: within one filter list
EQUALS/PREFIX are OR'ed, NOT_EQUALS AND'ed; lists are AND'ed; a filter on a field a resource
does not have (ECR, Lambda, code) matches only through NOT_EQUALS. The aggregation counts the
truth (ACTIVE findings per instance); the scenario's ``vulnerabilities`` lies change only
``ListFindings``: ``drop``, ``conflicting_duplicate``, ``other_resource``, ``max_pages``/
``page_size``, ``leftover_token``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from pipeline.localaws import model, package_scan, query, wire
from pipeline.localaws.context import Ctx, Handler, Params, Result
from pipeline.localaws.fleet import Fleet
from pipeline.localaws.package_scan import SEVERITY_RANK, Coverage
from pipeline.localaws.scenario import Scenario
from pipeline.localaws.scenario_sections import VulnKnobs
from pipeline.localaws.wire import ServiceError

SERVICE = "inspector2"
Row = dict[str, Any]
Matcher = Callable[[Any, list[dict[str, Any]]], bool]


def _strings(get: Callable[[Row], Any]) -> query.Field[Row]:
    return query.Field(query.strings, get)


def _dates(value: Any, filters: list[dict[str, Any]]) -> bool:
    if value is None:
        return False
    return any(
        f.get("startInclusive", value) <= value <= f.get("endInclusive", value) for f in filters
    )


def _numbers(value: Any, filters: list[dict[str, Any]]) -> bool:
    return value is not None and query.numbers(value, filters)


def _map(value: Any, filters: list[dict[str, Any]]) -> bool:
    tags = value or {}
    return any(f["key"] in tags and f.get("value") in (None, tags[f["key"]]) for f in filters)


def _resource(row: Row, key: str) -> list[Any]:
    return [r.get(key) for r in row["resources"]]


def _ec2(row: Row, key: str) -> list[Any]:
    return [r.get("details", {}).get("awsEc2Instance", {}).get(key) for r in row["resources"]]


def _packages(row: Row) -> list[Row]:
    return list(row.get("packageVulnerabilityDetails", {}).get("vulnerablePackages", []))


def _package_filter(value: Any, filters: list[dict[str, Any]]) -> bool:
    """PackageFilter: a finding matches when one package matches every part of one filter."""
    keys = {"name": "name", "version": "version", "release": "release", "architecture": "arch"}

    def one(pkg: Row, flt: Row) -> bool:
        for part, spec in flt.items():
            if part == "epoch":
                if not query.numbers(pkg.get("epoch", 0), [spec]):
                    return False
            elif not query.strings(pkg.get(keys.get(part, part)), [spec]):
                return False
        return True

    return any(one(pkg, flt) for pkg in value for flt in filters)


COVERAGE_FIELDS: dict[str, query.Field[Row]] = {
    "scanStatusCode": _strings(lambda r: r["scanStatus"]["statusCode"]),
    "scanStatusReason": _strings(lambda r: r["scanStatus"]["reason"]),
    "accountId": _strings(lambda r: r["accountId"]),
    "resourceId": _strings(lambda r: r["resourceId"]),
    "resourceType": _strings(lambda r: r["resourceType"]),
    "scanType": _strings(lambda r: r["scanType"]),
    "scanMode": _strings(lambda r: r.get("scanMode")),
    "ec2InstanceTags": query.Field(_map, lambda r: r["resourceMetadata"]["ec2"]["tags"]),
    "lastScannedAt": query.Field(_dates, lambda r: r.get("lastScannedAt")),
}
FINDING_FIELDS: dict[str, query.Field[Row]] = {
    "findingArn": _strings(lambda r: r["findingArn"]),
    "awsAccountId": _strings(lambda r: r["awsAccountId"]),
    "findingType": _strings(lambda r: r["type"]),
    "severity": _strings(lambda r: r["severity"]),
    "findingStatus": _strings(lambda r: r["status"]),
    "title": _strings(lambda r: r.get("title")),
    "resourceType": _strings(lambda r: _resource(r, "type")),
    "resourceId": _strings(lambda r: _resource(r, "id")),
    "ec2InstanceImageId": _strings(lambda r: _ec2(r, "imageId")),
    "vulnerabilityId": _strings(lambda r: r["packageVulnerabilityDetails"]["vulnerabilityId"]),
    "vulnerabilitySource": _strings(lambda r: r["packageVulnerabilityDetails"]["source"]),
    "vendorSeverity": _strings(lambda r: r["packageVulnerabilityDetails"].get("vendorSeverity")),
    "relatedVulnerabilities": _strings(
        lambda r: r["packageVulnerabilityDetails"].get("relatedVulnerabilities", [])
    ),
    "fixAvailable": _strings(lambda r: r.get("fixAvailable")),
    "exploitAvailable": _strings(lambda r: r.get("exploitAvailable")),
    "inspectorScore": query.Field(_numbers, lambda r: r.get("inspectorScore")),
    "firstObservedAt": query.Field(_dates, lambda r: r["firstObservedAt"]),
    "lastObservedAt": query.Field(_dates, lambda r: r["lastObservedAt"]),
    "updatedAt": query.Field(_dates, lambda r: r.get("updatedAt")),
    "resourceTags": query.Field(_map, lambda r: r["resources"][0].get("tags")),
    "vulnerablePackages": query.Field(_package_filter, _packages),
}
_FINDING_SORT: dict[str, Callable[[Row], Any]] = {
    "AWS_ACCOUNT_ID": lambda r: r["awsAccountId"],
    "FINDING_TYPE": lambda r: r["type"],
    "SEVERITY": lambda r: -SEVERITY_RANK.get(r["severity"], 9),
    "FIRST_OBSERVED_AT": lambda r: r["firstObservedAt"],
    "LAST_OBSERVED_AT": lambda r: r["lastObservedAt"],
    "FINDING_STATUS": lambda r: r["status"],
    "RESOURCE_TYPE": lambda r: r["resources"][0]["type"],
    "VULNERABILITY_ID": lambda r: r["packageVulnerabilityDetails"]["vulnerabilityId"],
    "VULNERABILITY_SOURCE": lambda r: r["packageVulnerabilityDetails"]["source"],
    "INSPECTOR_SCORE": lambda r: r.get("inspectorScore", 0.0),
    "VENDOR_SEVERITY": lambda r: r["packageVulnerabilityDetails"].get("vendorSeverity", ""),
}
_EC2_SORT = {
    "CRITICAL": lambda r: r["severityCounts"]["critical"],
    "HIGH": lambda r: r["severityCounts"]["high"],
    "ALL": lambda r: r["severityCounts"]["all"],
    "NETWORK_FINDINGS": lambda r: r["networkFindings"],
}


def _absent(filters: list[dict[str, Any]]) -> bool:
    """A filter list on a field no EC2 package resource has: only NOT_EQUALS can pass."""
    return bool(filters) and all(
        isinstance(f, dict) and f.get("comparison") == "NOT_EQUALS" for f in filters
    )


def _filter(rows: list[Row], criteria: dict[str, Any] | None, fields: dict[str, Any]) -> list[Row]:
    known = {k: v for k, v in (criteria or {}).items() if k in fields}
    if any(not _absent(v) for k, v in (criteria or {}).items() if k not in fields and v):
        return []
    return query.apply(rows, known, fields)


def _bad_token(message: str) -> ServiceError:
    return wire.validation_error(message, "FIELD_VALIDATION_FAILED")


class PackageScanService:
    """ListCoverage, ListFindings, ListFindingAggregations for EC2 package scans."""

    def __init__(
        self,
        fleet: Fleet,
        scenario: Callable[[], Scenario],
        enabled_since: Callable[[str, float], float | None],
    ) -> None:
        self._fleet = fleet
        self._scenario = scenario
        self._enabled_since = enabled_since  # (region, now) -> EC2 scanning ENABLED since

    def operations(self) -> dict[str, Handler]:
        return {
            "ListCoverage": self.list_coverage,
            "ListFindings": self.list_findings,
            "ListFindingAggregations": self.list_finding_aggregations,
        }

    def _coverage(self, ctx: Ctx) -> tuple[list[Coverage], float]:
        since = self._enabled_since(ctx.region, ctx.now)
        if since is None:
            return [], 0.0
        scenario = self._scenario()
        return [
            package_scan.coverage(
                host, ctx.now, since, scenario.ssm_online_after_s, scenario.vulnerabilities
            )
            for host in self._fleet.hosts(ctx.region)
            if host.state != "terminated"
        ], since

    def _truth(self, ctx: Ctx) -> list[Row]:
        knobs = self._scenario().vulnerabilities
        covered, _ = self._coverage(ctx)
        return [row for cov in covered for row in package_scan.findings(ctx, cov, knobs)]

    def list_coverage(self, ctx: Ctx, params: Params) -> Result:
        covered, since = self._coverage(ctx)
        rows = [row for cov in covered for row in package_scan.coverage_rows(ctx, cov, since)]
        rows = _filter(rows, params.get("filterCriteria"), COVERAGE_FIELDS)
        rows.sort(key=lambda r: (r["resourceId"], r["scanType"]))
        return self._page("ListCoverage", "coveredResources", rows, params)

    def list_findings(self, ctx: Ctx, params: Params) -> Result:
        knobs = self._scenario().vulnerabilities
        rows = _filter(self._truth(ctx), params.get("filterCriteria"), FINDING_FIELDS)
        sort = params.get("sortCriteria") or {}
        key = _FINDING_SORT.get(sort.get("field", ""))
        if key is None:  # no sort asked (or by an ECR/network field): severity, then ID
            rows.sort(key=lambda r: (SEVERITY_RANK.get(r["severity"], 9), r["findingArn"]))
        else:
            rows.sort(key=key, reverse=sort.get("sortOrder") == "DESC")
        rows = _lie(ctx, rows, knobs)
        return self._page(
            "ListFindings",
            "findings",
            rows,
            params,
            size_cap=knobs.page_size,
            max_pages=knobs.max_pages,
            leftover=knobs.leftover_token,
        )

    def list_finding_aggregations(self, ctx: Ctx, params: Params) -> Result:
        kind = params["aggregationType"]
        request = params.get("aggregationRequest") or {}
        if kind != "AWS_EC2_INSTANCE" or set(request) - {"ec2InstanceAggregation"}:
            raise wire.validation_error(
                f"the local AWS aggregates AWS_EC2_INSTANCE only (asked: {kind} "
                f"{', '.join(request) or 'without a request'})",
                "OTHER",
            )
        spec = request.get("ec2InstanceAggregation") or {}
        counted: dict[str, Row] = {}
        for row in self._truth(ctx):
            if row["status"] != "ACTIVE":
                continue
            resource = row["resources"][0]
            item = counted.setdefault(resource["id"], _aggregate(ctx, resource))
            counts = item["severityCounts"]
            counts["all"] += 1
            counts[row["severity"].lower()] += 1
        items = list(counted.values())
        accounts = params.get("accountIds")
        fields: dict[str, query.Field[Row]] = {
            "instanceIds": _strings(lambda r: r["instanceId"]),
            "amis": _strings(lambda r: r.get("ami")),
            "operatingSystems": _strings(lambda r: r.get("operatingSystem")),
            "instanceTags": query.Field(_map, lambda r: r.get("instanceTags")),
        }
        items = query.apply(items, {k: v for k, v in spec.items() if k in fields}, fields)
        if accounts:
            items = [i for i in items if query.strings(i["accountId"], accounts)]
        sort_key = _EC2_SORT[spec.get("sortBy", "ALL")]
        items.sort(key=lambda r: r["instanceId"])
        items.sort(key=sort_key, reverse=spec.get("sortOrder", "DESC") == "DESC")
        responses = [{"ec2InstanceAggregation": item} for item in items]
        page = self._page("ListFindingAggregations", "responses", responses, params)
        return {"aggregationType": kind, **page}

    def _page(
        self,
        operation: str,
        key: str,
        rows: list[Row],
        params: Params,
        *,
        size_cap: int | None = None,
        max_pages: int | None = None,
        leftover: bool = False,
    ) -> Result:
        limit = model.page_limit(SERVICE, operation, key)
        page_max = min(limit, size_cap) if size_cap else limit
        token = params.get("nextToken")
        if leftover and token and _leftover_index(token) is not None:
            # endless: a client that does not cap its pages never ends
            return {key: [], "nextToken": _leftover_token((_leftover_index(token) or 0) + 1)}
        page = query.paginate(
            rows, params, page_max=page_max, bad_token=_bad_token, max_pages=max_pages
        )
        result: Result = {key: page.items}
        if page.next_token:
            result["nextToken"] = page.next_token
        elif leftover:
            result["nextToken"] = _leftover_token(1)
        return result


def _aggregate(ctx: Ctx, resource: Row) -> Row:
    ec2 = resource["details"]["awsEc2Instance"]
    return {
        "instanceId": resource["id"],
        "ami": ec2["imageId"],
        "operatingSystem": ec2["platform"],
        "instanceTags": dict(resource.get("tags") or {}),
        "accountId": ctx.account_id,
        "severityCounts": {
            s: 0 for s in ("all", "critical", "high", "medium", "low", "informational", "untriaged")
        },
        "networkFindings": 0,
    }


def _lie(ctx: Ctx, rows: list[Row], knobs: VulnKnobs) -> list[Row]:
    """ListFindings' lies of the scenario, applied to the filtered, sorted findings."""
    told: list[Row] = []
    for row in rows:
        vuln_id = row["packageVulnerabilityDetails"]["vulnerabilityId"]
        if vuln_id in knobs.drop:
            continue
        told.append(row)
        other = knobs.conflicting_duplicate.get(vuln_id)
        if other is not None:
            told.append({**row, "severity": other})
        if vuln_id in knobs.other_resource:
            foreign = _foreign_id(row["resources"][0]["id"])
            resource = {**row["resources"][0], "id": foreign}
            told.append(
                {
                    **row,
                    "findingArn": package_scan.finding_arn(ctx, foreign, vuln_id),
                    "resources": [resource],
                }
            )
    return told


def _foreign_id(instance_id: str) -> str:
    return "i-0" + hashlib.sha256(f"foreign/{instance_id}".encode()).hexdigest()[:16]


def _leftover_token(index: int) -> str:
    raw = json.dumps({"leftover": index}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _leftover_index(token: str) -> int | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode())).get("leftover")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None
