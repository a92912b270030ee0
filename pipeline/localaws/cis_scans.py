"""The state of the emulated Inspector CIS scans and what is derived from it, pure: scan
configurations, scans and their targets, the filter and sort tables of the List operations,
findings, aggregations, pages and the report PDF. ``inspector_cis.CisService`` serves them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.localaws import cis_report, model, query
from pipeline.localaws.context import Ctx, Params, Result
from pipeline.localaws.fleet import Host
from pipeline.localaws.profiles import CheckOutcome
from pipeline.localaws.scenario import Results
from pipeline.localaws.wire import ServiceError, validation_error

SERVICE = "inspector2"
FINDINGS = uuid.UUID("6f1c2a4e-8f0b-4c1e-9a57-3d2b7c9e0a11")  # uuid5 namespace of finding ARNs
TARGET_STATUS = {"COMPLETED": "COMPLETED", "FAILED": "TIMED_OUT", "CANCELLED": "CANCELLED"}


@dataclass(slots=True)
class Configuration:
    """A CIS scan configuration, as created (``accountIds`` may hold SELF / ALL_ACCOUNTS)."""

    arn: str
    region: str
    name: str
    level: str
    schedule: dict[str, Any]
    account_ids: list[str]
    tag_map: dict[str, list[str]]
    tags: dict[str, str]

    def covers_account(self, account: str) -> bool:
        return any(a in ("SELF", "ALL_ACCOUNTS", account) for a in self.account_ids)

    def matches(self, host_tags: Mapping[str, str]) -> bool:
        """AND across keys, OR across the values of one key; case-sensitive."""
        return all(host_tags.get(key) in values for key, values in self.tag_map.items())

    def targets(self, account: str) -> Result:
        """``CisTargets`` as the service returns it: SELF / ALL_ACCOUNTS become the account ID."""
        ids = [account if a in ("SELF", "ALL_ACCOUNTS") else a for a in self.account_ids]
        return {"accountIds": list(dict.fromkeys(ids)), "targetResourceTags": self.tag_map}

    def item(self, account: str) -> Result:
        item: Result = {
            "scanConfigurationArn": self.arn,
            "ownerId": account,
            "scanName": self.name,
            "securityLevel": self.level,
            "schedule": self.schedule,
            "targets": self.targets(account),
        }
        if self.tags:
            item["tags"] = self.tags
        return item


@dataclass(frozen=True, slots=True)
class Target:
    """One scanned instance: why it has no checks (``reason``), or its per-check findings."""

    instance_id: str
    account_id: str
    tags: dict[str, list[str]]
    platform: str | None
    reason: str | None  # UNSUPPORTED_OS | SSM_UNMANAGED
    findings: tuple[Result, ...] = ()
    # How a target the CIS plugin never reported on (role without the CIS session actions, EC2
    # scanning not activated) looks once a COMPLETED scan ends: TIMED_OUT, or SCAN_IN_PROGRESS
    # (no targetStatus, reason SCAN_IN_PROGRESS forever); scenario ``scan.unreported_target``.
    ended: str | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    """One scan: what it targeted, when it ends and how, and every target's decided result."""

    arn: str
    configuration_arn: str
    region: str
    name: str
    level: str
    targets_spec: Result
    scheduled_by: str
    started_at: float
    ends_at: float
    final_status: str
    results: tuple[Target, ...] = field(default_factory=tuple)
    lies: Results = field(default_factory=Results)  # the scenario's ``results`` at scan start
    report_after_s: float = 0.0  # the CIS report is IN_PROGRESS this long after the scan ends

    def status(self, now: float) -> str:
        return self.final_status if now >= self.ends_at else "IN_PROGRESS"

    def findings(self, now: float) -> list[Result]:
        if self.status(now) == "IN_PROGRESS":
            return []
        return [f for target in self.results for f in target.findings]

    def item(self, now: float) -> Result:
        findings = self.findings(now)
        delta = self.lies.scan_counts_delta if findings else {}
        failed = sum(f["status"] == "FAILED" for f in findings)
        return {
            "scanArn": self.arn,
            "scanConfigurationArn": self.configuration_arn,
            "status": self.status(now),
            "scanName": self.name,
            "scanDate": self.started_at,
            "failedChecks": max(0, failed + delta.get("failed_checks", 0)),
            "totalChecks": max(0, len(findings) + delta.get("total_checks", 0)),
            "targets": self.targets_spec,
            "scheduledBy": self.scheduled_by,
            "securityLevel": self.level,
        }

    def target_item(self, target: Target, now: float) -> Result:
        status = self.status(now)
        findings = target.findings if status != "IN_PROGRESS" else ()
        item: Result = {
            "scanArn": self.arn,
            "targetResourceId": target.instance_id,
            "accountId": target.account_id,
            "statusCounts": counts(findings, self.lies.status_counts_delta if findings else None),
        }
        if target.tags:
            item["targetResourceTags"] = target.tags
        if target.platform:
            item["platform"] = target.platform
        stuck = status == "COMPLETED" and target.ended == "SCAN_IN_PROGRESS"
        if status == "IN_PROGRESS" or stuck:
            item["targetStatusReason"] = "SCAN_IN_PROGRESS"
        else:
            item["targetStatus"] = (
                target.ended if status == "COMPLETED" and target.ended else TARGET_STATUS[status]
            )
            if target.reason:
                item["targetStatusReason"] = target.reason
        return item


def counts(
    findings: tuple[Result, ...] | list[Result], delta: Mapping[str, int] | None = None
) -> Result:
    statuses = [f["status"] for f in findings]
    counts = {
        "failed": statuses.count("FAILED"),
        "skipped": statuses.count("SKIPPED"),
        "passed": statuses.count("PASSED"),
    }
    return {key: max(0, count + (delta or {}).get(key, 0)) for key, count in counts.items()}


def present_statuses(item: Result) -> list[str]:
    """The result statuses a target has at least one check in (as its statusCounts show)."""
    return [status.upper() for status, count in item["statusCounts"].items() if count]


def visible_check_ids(item: Result, target: Target) -> list[str]:
    """The checks of a target, once its results are visible (not while the scan runs)."""
    return [f["checkId"] for f in target.findings] if "targetStatus" in item else []


def string(key: str) -> query.Field[Result]:
    return query.Field(query.strings, lambda item: item.get(key))


CONFIG_FILTERS: dict[str, query.Field[Configuration]] = {
    "scanNameFilters": query.Field(query.strings, lambda c: c.name),
    "targetResourceTagFilters": query.Field(query.tags, lambda c: c.tag_map),
    "scanConfigurationArnFilters": query.Field(query.strings, lambda c: c.arn),
}
CONFIG_SORT: dict[str, Callable[[Configuration], Any]] = {
    "SCAN_NAME": lambda c: (c.name, c.arn),
    "SCAN_CONFIGURATION_ARN": lambda c: c.arn,
}
_ScanPair = tuple[Result, "Scan"]
SCAN_FILTERS: dict[str, query.Field[_ScanPair]] = {
    "scanNameFilters": query.Field(query.strings, lambda p: p[0]["scanName"]),
    "targetResourceTagFilters": query.Field(
        query.tags, lambda p: p[1].targets_spec["targetResourceTags"]
    ),
    "targetResourceIdFilters": query.Field(
        query.strings, lambda p: [t.instance_id for t in p[1].results]
    ),
    "scanStatusFilters": query.Field(query.strings, lambda p: p[0]["status"]),
    "scanAtFilters": query.Field(query.dates, lambda p: p[0]["scanDate"]),
    "scanConfigurationArnFilters": query.Field(
        query.strings, lambda p: p[0]["scanConfigurationArn"]
    ),
    "scanArnFilters": query.Field(query.strings, lambda p: p[0]["scanArn"]),
    "scheduledByFilters": query.Field(query.strings, lambda p: p[0]["scheduledBy"]),
    "failedChecksFilters": query.Field(query.numbers, lambda p: p[0]["failedChecks"]),
    "targetAccountIdFilters": query.Field(query.strings, lambda p: p[0]["targets"]["accountIds"]),
}
SCAN_SORT: dict[str, Callable[[_ScanPair], Any]] = {
    "STATUS": lambda p: (p[0]["status"], p[0]["scanDate"]),
    "SCHEDULED_BY": lambda p: (p[0]["scheduledBy"], p[0]["scanDate"]),
    "SCAN_START_DATE": lambda p: p[0]["scanDate"],
    "FAILED_CHECKS": lambda p: (p[0]["failedChecks"], p[0]["scanDate"]),
}
CHECK_FILTERS: dict[str, query.Field[Result]] = {
    "accountIdFilters": string("accountId"),
    "checkIdFilters": string("checkId"),
    "titleFilters": string("title"),
    "platformFilters": string("platform"),
    "failedResourcesFilters": query.Field(query.numbers, lambda a: a["statusCounts"]["failed"]),
    "securityLevelFilters": string("level"),
}
CHECK_SORT: dict[str, Callable[[Result], Any]] = {
    "CHECK_ID": lambda a: (query.check_id_key(a["checkId"]), a["platform"]),
    "TITLE": lambda a: (a["title"], query.check_id_key(a["checkId"])),
    "PLATFORM": lambda a: (a["platform"], query.check_id_key(a["checkId"])),
    "FAILED_COUNTS": lambda a: (a["statusCounts"]["failed"], query.check_id_key(a["checkId"])),
    "SECURITY_LEVEL": lambda a: (a["level"], query.check_id_key(a["checkId"])),
}
TARGET_FILTERS: dict[str, query.Field[tuple[Result, Target]]] = {
    "accountIdFilters": query.Field(query.strings, lambda p: p[0]["accountId"]),
    "statusFilters": query.Field(query.strings, lambda p: present_statuses(p[0])),
    "checkIdFilters": query.Field(query.strings, lambda p: visible_check_ids(*p)),
    "targetResourceIdFilters": query.Field(query.strings, lambda p: p[0]["targetResourceId"]),
    "targetResourceTagFilters": query.Field(query.tags, lambda p: p[1].tags),
    "platformFilters": query.Field(query.strings, lambda p: p[0].get("platform")),
    "targetStatusFilters": query.Field(query.strings, lambda p: p[0].get("targetStatus")),
    "targetStatusReasonFilters": query.Field(
        query.strings, lambda p: p[0].get("targetStatusReason")
    ),
    "failedChecksFilters": query.Field(query.numbers, lambda p: p[0]["statusCounts"]["failed"]),
}
TARGET_SORT: dict[str, Callable[[tuple[Result, Target]], Any]] = {
    "RESOURCE_ID": lambda p: p[0]["targetResourceId"],
    "FAILED_COUNTS": lambda p: (p[0]["statusCounts"]["failed"], p[0]["targetResourceId"]),
    "ACCOUNT_ID": lambda p: (p[0]["accountId"], p[0]["targetResourceId"]),
    "PLATFORM": lambda p: (p[0].get("platform", ""), p[0]["targetResourceId"]),
    "TARGET_STATUS": lambda p: (p[0].get("targetStatus", ""), p[0]["targetResourceId"]),
    "TARGET_STATUS_REASON": lambda p: (
        p[0].get("targetStatusReason", ""),
        p[0]["targetResourceId"],
    ),
}
DETAIL_FILTERS: dict[str, query.Field[Result]] = {
    "findingStatusFilters": string("status"),
    "checkIdFilters": string("checkId"),
    "titleFilters": string("title"),
    "securityLevelFilters": string("level"),
    "findingArnFilters": string("findingArn"),
}
DETAIL_SORT: dict[str, Callable[[Result], Any]] = {
    "CHECK_ID": lambda f: query.check_id_key(f["checkId"]),
    "STATUS": lambda f: (f["status"], query.check_id_key(f["checkId"])),
}


def bad_token(message: str) -> ServiceError:
    return validation_error(
        message, "FIELD_VALIDATION_FAILED", [{"name": "nextToken", "message": message}]
    )


def new_arn(ctx: Ctx, kind: str, resource: uuid.UUID | None = None) -> str:
    """``arn:aws:inspector2:<region>:<acct>:owner/<acct>/<kind>/<uuid>``."""
    owner = f"arn:aws:inspector2:{ctx.region}:{ctx.account_id}:owner/{ctx.account_id}"
    return f"{owner}/{kind}/{resource or uuid.uuid4()}"


def finding(
    ctx: Ctx, scan_arn: str, host: Host, platform: str, label: str, outcome: CheckOutcome
) -> Result:
    rec = outcome.recommendation
    finding_id = uuid.uuid5(FINDINGS, f"{scan_arn}/{host.instance_id}/{rec.id}")
    kind = "Automated" if rec.automated else "Manual"
    return {
        "scanArn": scan_arn,
        "accountId": ctx.account_id,
        "targetResourceId": host.instance_id,
        "platform": platform,
        "status": outcome.status,
        "statusReason": outcome.reason,
        "checkId": rec.id,
        "title": rec.title,
        "checkDescription": f"{label}, {rec.id} ({rec.level_name}, {kind}): {rec.title}.",
        "remediation": f"Apply the remediation of {label} recommendation {rec.id} ({rec.title}).",
        "level": rec.level_name,
        "findingArn": new_arn(ctx, "cis-finding", finding_id),
    }


def aggregate(scan: Scan, ctx: Ctx) -> list[Result]:
    """ListCisScanResultsAggregatedByChecks' items: one per check per platform, counted over
    the targets (a scenario's ``aggregated_status`` counts a check's results as that status)."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for finding in restated(scan.findings(ctx.now), scan.lies.aggregated_status):
        groups.setdefault((finding["checkId"], finding["platform"]), []).append(finding)
    return [
        {
            "scanArn": scan.arn,
            "checkId": rows[0]["checkId"],
            "title": rows[0]["title"],
            "checkDescription": rows[0]["checkDescription"],
            "level": rows[0]["level"],
            "accountId": ctx.account_id,
            "statusCounts": counts(rows),
            "platform": rows[0]["platform"],
        }
        for rows in groups.values()
    ]


def told(outcome: CheckOutcome, lies: Results) -> CheckOutcome:
    """The outcome as the scenario makes the service report it (skips, renamed titles)."""
    rec = outcome.recommendation
    title = lies.title_overrides.get(rec.id)
    if title is not None:
        outcome = replace(outcome, recommendation=replace(rec, title=title))
    if lies.skips(rec.id, rec.automated) and outcome.status != "SKIPPED":
        outcome = replace(
            outcome, status="SKIPPED", reason="Not evaluated (local AWS scenario: results.skip)"
        )
    return outcome


def restated(findings: list[Result], statuses: Mapping[str, str]) -> list[Result]:
    """``findings`` with the checks named in ``statuses`` carrying that status instead (one
    view's lie: ``aggregated_status``, ``report_status``)."""
    return [
        {**f, "status": statuses[f["checkId"]]} if f["checkId"] in statuses else f for f in findings
    ]


def swapped(findings: list[Result], lies: Results) -> list[Result]:
    """One target's findings with the statuses of each ``swap_status`` pair exchanged: every
    count (per target, per scan) stays true, only the rows lie."""
    if not lies.swap_status:
        return findings
    truth = {f["checkId"]: f["status"] for f in findings}
    out = []
    for finding in findings:
        other = lies.swapped_with(finding["checkId"])
        if other is not None and other in truth:
            finding = {**finding, "status": truth[other]}
        out.append(finding)
    return out


def reported(findings: list[Result], lies: Results) -> list[Result]:
    """GetCisScanResultDetails' rows (of one target): swapped statuses exchanged, dropped
    statuses gone, duplicates added after originals."""
    rows: list[Result] = []
    for finding in swapped(findings, lies):
        if finding["status"] in lies.drop_status:
            continue
        rows.append(finding)
        if finding["checkId"] in lies.duplicate:
            rows.append(dict(finding))
        conflicting = lies.conflicting_duplicate.get(finding["checkId"])
        if conflicting is not None:
            rows.append({**finding, "status": conflicting})
    return rows


def page(
    operation: str,
    key: str,
    items: list[Any],
    params: Params,
    *,
    max_pages: int | None = None,
    size_cap: int | None = None,
) -> Result:
    """One page; ``size_cap`` (a scenario's ``page_size``) caps it below what maxResults asks,
    as AWS may return fewer items than asked for."""
    limit = model.page_limit(SERVICE, operation, key)
    page = query.paginate(
        items,
        params,
        page_max=min(limit, size_cap) if size_cap else limit,
        bad_token=bad_token,
        max_pages=max_pages,
    )
    result: Result = {}
    if page.items or not model.may_omit_empty(SERVICE, operation, key):
        result[key] = page.items
    if page.next_token:
        result["nextToken"] = page.next_token
    return result


def pdf(scan: Scan, rows: list[Result], now: float) -> bytes:
    summary = scan.item(now)
    lines = [
        f"Scan: {scan.arn}",
        f"Configuration: {scan.configuration_arn}",
        f"Level: {scan.level}   Status: {summary['status']}   Checks: {summary['totalChecks']}"
        f"   Failed: {summary['failedChecks']}",
        "",
    ]
    lines += [
        f"{r['status']:<8} {r['checkId']:<10} {r['targetResourceId']}  {r['title']}" for r in rows
    ]
    return cis_report.pdf_report(f"CIS scan report: {scan.name}", lines)
