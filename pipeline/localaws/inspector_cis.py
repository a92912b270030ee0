"""Inspector's CIS scan control plane, which moto lacks: configurations, scans, results, reports.

Semantics (see README "Scan semantics"): a ``oneTime`` configuration starts a scan at once
(``IN_PROGRESS``), recurring ones are only stored. A scan's targets are the region's running
instances whose tags match ``targetResourceTags`` (AND across keys, OR across one key's
values, case-sensitive). Each target is decided when the scan starts and revealed when it ends
(after the scenario's duration): not an SSM managed node -> ``SSM_UNMANAGED``; no CIS
catalogue for its OS -> ``UNSUPPORTED_OS``; role not granting the CIS session actions (by any
policy, decided by ``iam_eval``) or EC2 scanning not ENABLED -> ``TIMED_OUT`` with zero checks;
also targeted by another existing configuration -> completed with zero checks (silently, as
the real service); otherwise one result per check from its host profile.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline import catalog
from pipeline.catalog import Platform
from pipeline.localaws import cis_report, model, profiles, query
from pipeline.localaws.cis_report import ReportStore
from pipeline.localaws.context import Ctx, Handler, Params, Result
from pipeline.localaws.fleet import Fleet, Host
from pipeline.localaws.profiles import CheckOutcome, HostProfile, ManifestSource
from pipeline.localaws.scenario import Results, Scenario
from pipeline.localaws.ssm import is_online
from pipeline.localaws.wire import ServiceError, validation_error

SERVICE = "inspector2"
_FINDINGS = uuid.UUID("6f1c2a4e-8f0b-4c1e-9a57-3d2b7c9e0a11")  # uuid5 namespace of finding ARNs
_TARGET_STATUS = {"COMPLETED": "COMPLETED", "FAILED": "TIMED_OUT", "CANCELLED": "CANCELLED"}


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
            "statusCounts": _counts(findings, self.lies.status_counts_delta if findings else None),
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
                target.ended if status == "COMPLETED" and target.ended else _TARGET_STATUS[status]
            )
            if target.reason:
                item["targetStatusReason"] = target.reason
        return item


def _counts(
    findings: tuple[Result, ...] | list[Result], delta: Mapping[str, int] | None = None
) -> Result:
    statuses = [f["status"] for f in findings]
    counts = {
        "failed": statuses.count("FAILED"),
        "skipped": statuses.count("SKIPPED"),
        "passed": statuses.count("PASSED"),
    }
    return {key: max(0, count + (delta or {}).get(key, 0)) for key, count in counts.items()}


def _present_statuses(item: Result) -> list[str]:
    """The result statuses a target has at least one check in (as its statusCounts show)."""
    return [status.upper() for status, count in item["statusCounts"].items() if count]


def _visible_check_ids(item: Result, target: Target) -> list[str]:
    """The checks of a target, once its results are visible (not while the scan runs)."""
    return [f["checkId"] for f in target.findings] if "targetStatus" in item else []


def _string(key: str) -> query.Field[Result]:
    return query.Field(query.strings, lambda item: item.get(key))


_CONFIG_FILTERS: dict[str, query.Field[Configuration]] = {
    "scanNameFilters": query.Field(query.strings, lambda c: c.name),
    "targetResourceTagFilters": query.Field(query.tags, lambda c: c.tag_map),
    "scanConfigurationArnFilters": query.Field(query.strings, lambda c: c.arn),
}
_CONFIG_SORT: dict[str, Callable[[Configuration], Any]] = {
    "SCAN_NAME": lambda c: (c.name, c.arn),
    "SCAN_CONFIGURATION_ARN": lambda c: c.arn,
}
_ScanPair = tuple[Result, "Scan"]
_SCAN_FILTERS: dict[str, query.Field[_ScanPair]] = {
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
_SCAN_SORT: dict[str, Callable[[_ScanPair], Any]] = {
    "STATUS": lambda p: (p[0]["status"], p[0]["scanDate"]),
    "SCHEDULED_BY": lambda p: (p[0]["scheduledBy"], p[0]["scanDate"]),
    "SCAN_START_DATE": lambda p: p[0]["scanDate"],
    "FAILED_CHECKS": lambda p: (p[0]["failedChecks"], p[0]["scanDate"]),
}
_CHECK_FILTERS: dict[str, query.Field[Result]] = {
    "accountIdFilters": _string("accountId"),
    "checkIdFilters": _string("checkId"),
    "titleFilters": _string("title"),
    "platformFilters": _string("platform"),
    "failedResourcesFilters": query.Field(query.numbers, lambda a: a["statusCounts"]["failed"]),
    "securityLevelFilters": _string("level"),
}
_CHECK_SORT: dict[str, Callable[[Result], Any]] = {
    "CHECK_ID": lambda a: (query.check_id_key(a["checkId"]), a["platform"]),
    "TITLE": lambda a: (a["title"], query.check_id_key(a["checkId"])),
    "PLATFORM": lambda a: (a["platform"], query.check_id_key(a["checkId"])),
    "FAILED_COUNTS": lambda a: (a["statusCounts"]["failed"], query.check_id_key(a["checkId"])),
    "SECURITY_LEVEL": lambda a: (a["level"], query.check_id_key(a["checkId"])),
}
_TARGET_FILTERS: dict[str, query.Field[tuple[Result, Target]]] = {
    "accountIdFilters": query.Field(query.strings, lambda p: p[0]["accountId"]),
    "statusFilters": query.Field(query.strings, lambda p: _present_statuses(p[0])),
    "checkIdFilters": query.Field(query.strings, lambda p: _visible_check_ids(*p)),
    "targetResourceIdFilters": query.Field(query.strings, lambda p: p[0]["targetResourceId"]),
    "targetResourceTagFilters": query.Field(query.tags, lambda p: p[1].tags),
    "platformFilters": query.Field(query.strings, lambda p: p[0].get("platform")),
    "targetStatusFilters": query.Field(query.strings, lambda p: p[0].get("targetStatus")),
    "targetStatusReasonFilters": query.Field(
        query.strings, lambda p: p[0].get("targetStatusReason")
    ),
    "failedChecksFilters": query.Field(query.numbers, lambda p: p[0]["statusCounts"]["failed"]),
}
_TARGET_SORT: dict[str, Callable[[tuple[Result, Target]], Any]] = {
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
_DETAIL_FILTERS: dict[str, query.Field[Result]] = {
    "findingStatusFilters": _string("status"),
    "checkIdFilters": _string("checkId"),
    "titleFilters": _string("title"),
    "securityLevelFilters": _string("level"),
    "findingArnFilters": _string("findingArn"),
}
_DETAIL_SORT: dict[str, Callable[[Result], Any]] = {
    "CHECK_ID": lambda f: query.check_id_key(f["checkId"]),
    "STATUS": lambda f: (f["status"], query.check_id_key(f["checkId"])),
}


def _bad_token(message: str) -> ServiceError:
    return validation_error(
        message, "FIELD_VALIDATION_FAILED", [{"name": "nextToken", "message": message}]
    )


class CisService:
    """State and handlers of the CIS operations, per region of the one emulated account."""

    def __init__(
        self,
        fleet: Fleet,
        scenario: Callable[[], Scenario],
        manifests: ManifestSource,
        reports: ReportStore,
        ec2_scanning: Callable[[str, float], bool] = lambda region, now: True,
    ) -> None:
        self._ec2_scanning = ec2_scanning  # (region, now) -> Inspector EC2 scanning is ENABLED
        self._fleet = fleet
        self._scenario = scenario
        self.manifests = manifests
        self._reports = reports
        self._lock = threading.RLock()
        self._configs: dict[str, Configuration] = {}
        self._scans: dict[str, Scan] = {}

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateCisScanConfiguration": self.create_configuration,
            "UpdateCisScanConfiguration": self.update_configuration,
            "DeleteCisScanConfiguration": self.delete_configuration,
            "ListCisScanConfigurations": self.list_configurations,
            "ListCisScans": self.list_scans,
            "ListCisScanResultsAggregatedByChecks": self.list_by_checks,
            "ListCisScanResultsAggregatedByTargetResource": self.list_by_target,
            "GetCisScanResultDetails": self.get_details,
            "GetCisScanReport": self.get_report,
        }

    def reset(self) -> None:
        with self._lock:
            self._configs.clear()
            self._scans.clear()

    # -- configurations ---------------------------------------------------------------------

    def create_configuration(self, ctx: Ctx, params: Params) -> Result:
        targets = params["targets"]
        config = Configuration(
            arn=_arn(ctx, "cis-configuration"),
            region=ctx.region,
            name=params["scanName"],
            level=params["securityLevel"],
            schedule=params["schedule"],
            account_ids=list(targets["accountIds"]),
            tag_map={k: list(v) for k, v in targets["targetResourceTags"].items()},
            tags=dict(params.get("tags") or {}),
        )
        with self._lock:
            self._configs[config.arn] = config
            if "oneTime" in config.schedule:
                scan = self._start(ctx, config)
                self._scans[scan.arn] = scan
        return {"scanConfigurationArn": config.arn}

    def update_configuration(self, ctx: Ctx, params: Params) -> Result:
        with self._lock:
            config = self._config(ctx, params["scanConfigurationArn"])
            targets = params.get("targets") or {}
            config.name = params.get("scanName", config.name)
            config.level = params.get("securityLevel", config.level)
            config.schedule = params.get("schedule", config.schedule)
            config.account_ids = list(targets.get("accountIds", config.account_ids))
            config.tag_map = dict(targets.get("targetResourceTags", config.tag_map))
        return {"scanConfigurationArn": config.arn}

    def delete_configuration(self, ctx: Ctx, params: Params) -> Result:
        with self._lock:
            config = self._config(ctx, params["scanConfigurationArn"])
            del self._configs[config.arn]
        return {"scanConfigurationArn": config.arn}

    def list_configurations(self, ctx: Ctx, params: Params) -> Result:
        with self._lock:
            configs = [c for c in self._configs.values() if c.region == ctx.region]
        chosen = query.apply(configs, params.get("filterCriteria"), _CONFIG_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), _CONFIG_SORT, "SCAN_NAME"
        )
        return _page(
            "ListCisScanConfigurations",
            "scanConfigurations",
            [c.item(ctx.account_id) for c in ordered],
            params,
        )

    def _config(self, ctx: Ctx, arn: str) -> Configuration:
        config = self._configs.get(arn)
        if config is None or config.region != ctx.region:
            raise ServiceError(
                "ResourceNotFoundException", f"Scan configuration {arn} was not found"
            )
        return config

    # -- scans ------------------------------------------------------------------------------

    def _start(self, ctx: Ctx, config: Configuration) -> Scan:
        scenario = self._scenario()
        arn = _arn(ctx, "cis-scan")
        hosts: list[Host] = []
        if config.covers_account(ctx.account_id):
            hosts = [
                h
                for h in self._fleet.hosts(ctx.region)
                if h.state == "running" and config.matches(h.tags)
            ]
        rivals = [
            c
            for c in self._configs.values()
            if c is not config and c.region == ctx.region and c.covers_account(ctx.account_id)
        ]
        scan = Scan(
            arn=arn,
            configuration_arn=config.arn,
            region=ctx.region,
            name=config.name,
            level=scenario.results.scan_level or config.level,
            targets_spec=config.targets(ctx.account_id),
            scheduled_by=ctx.account_id,
            started_at=ctx.now,
            ends_at=ctx.now + scenario.scan_duration_s,
            final_status=scenario.final_status,
            lies=scenario.results,
        )
        results = tuple(
            self._decide(ctx, scan, config, host, rivals, scenario)
            for host in sorted(hosts, key=lambda h: h.instance_id)
        )
        return replace(scan, results=results)

    def _decide(
        self,
        ctx: Ctx,
        scan: Scan,
        config: Configuration,
        host: Host,
        rivals: list[Configuration],
        scenario: Scenario,
    ) -> Target:
        shown = {k: [host.tags[k]] for k in config.tag_map if k in host.tags}
        if not is_online(host, ctx.now, scenario.ssm_online_after_s):
            return Target(host.instance_id, ctx.account_id, shown, None, "SSM_UNMANAGED")
        if host.profile is None:
            return Target(host.instance_id, ctx.account_id, shown, None, "UNSUPPORTED_OS")
        platform = host.profile.platform.value
        if not self._ec2_scanning(ctx.region, ctx.now) or not host.cis_capable:
            # Nothing reports for this target: the plugin cannot open a CIS session (role
            # without inspector2:*CisSession*, as users report: the target ends TIMED_OUT with no
            # checks), or EC2 scanning is not activated (the docs require it; what the real
            # service then shows is unknown: the same is assumed).
            return Target(
                host.instance_id,
                ctx.account_id,
                shown,
                platform,
                None,
                ended=scenario.unreported_target,
            )
        silent = (
            scenario.final_status != "COMPLETED"
            or scenario.zero_checks
            or any(rival.matches(host.tags) for rival in rivals)
        )
        if silent:
            return Target(host.instance_id, ctx.account_id, shown, platform, None)
        lies = scenario.results
        evaluated = host.profile
        if lies.benchmark and lies.benchmark != platform:  # rows of another catalogue
            evaluated = HostProfile(Platform(lies.benchmark), host.profile.hardening_level)
        manifest = self.manifests(evaluated.platform)
        label = catalog.load(evaluated.platform, manifest.benchmark_version).label
        outcomes = profiles.evaluate(evaluated, manifest, int(scan.level[-1]), scenario.checks)
        findings = tuple(
            _finding(ctx, scan.arn, host, platform, label, _told(o, lies)) for o in outcomes
        )
        return Target(host.instance_id, ctx.account_id, shown, platform, None, findings)

    def list_scans(self, ctx: Ctx, params: Params) -> Result:
        with self._lock:
            scans = [s for s in self._scans.values() if s.region == ctx.region]
        pairs = [(s.item(ctx.now), s) for s in scans]
        chosen = query.apply(pairs, params.get("filterCriteria"), _SCAN_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), _SCAN_SORT, "SCAN_START_DATE"
        )
        return _page("ListCisScans", "scans", [item for item, _ in ordered], params)

    def _scan(self, ctx: Ctx, arn: str) -> Scan | None:
        with self._lock:
            scan = self._scans.get(arn)
        return scan if scan is not None and scan.region == ctx.region else None

    # -- results ----------------------------------------------------------------------------

    def list_by_checks(self, ctx: Ctx, params: Params) -> Result:
        scan = self._scan(ctx, params["scanArn"])
        aggregations = _aggregate(scan, ctx) if scan else []
        chosen = query.apply(aggregations, params.get("filterCriteria"), _CHECK_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), _CHECK_SORT, "CHECK_ID"
        )
        return _page("ListCisScanResultsAggregatedByChecks", "checkAggregations", ordered, params)

    def list_by_target(self, ctx: Ctx, params: Params) -> Result:
        scan = self._scan(ctx, params["scanArn"])
        pairs = [(scan.target_item(t, ctx.now), t) for t in scan.results] if scan else []
        chosen = query.apply(pairs, params.get("filterCriteria"), _TARGET_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), _TARGET_SORT, "RESOURCE_ID"
        )
        items = [item for item, _ in ordered]
        return _page(
            "ListCisScanResultsAggregatedByTargetResource",
            "targetResourceAggregations",
            items,
            params,
        )

    def get_details(self, ctx: Ctx, params: Params) -> Result:
        scan = self._scan(ctx, params["scanArn"])
        findings = [
            f
            for f in (scan.findings(ctx.now) if scan else [])
            if f["targetResourceId"] == params["targetResourceId"]
            and f["accountId"] == params["accountId"]
        ]
        if scan is not None:
            findings = _reported(findings, scan.lies)
        chosen = query.apply(findings, params.get("filterCriteria"), _DETAIL_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), _DETAIL_SORT, "CHECK_ID"
        )
        return _page(
            "GetCisScanResultDetails",
            "scanResultDetails",
            ordered,
            params,
            max_pages=scan.lies.max_pages if scan else None,
            size_cap=scan.lies.page_size if scan else None,
        )

    def get_report(self, ctx: Ctx, params: Params) -> Result:
        scan = self._scan(ctx, params["scanArn"])
        if scan is None:
            raise ServiceError(
                "ResourceNotFoundException", f"Scan {params['scanArn']} was not found"
            )
        status = scan.status(ctx.now)
        if status != "COMPLETED":
            return {"status": "IN_PROGRESS" if status == "IN_PROGRESS" else "FAILED"}
        accounts = params.get("targetAccounts") or [ctx.account_id]
        rows = [f for f in scan.findings(ctx.now) if f["accountId"] in accounts]
        fmt = params.get("reportFormat", "PDF")
        content = cis_report.csv_report(rows) if fmt == "CSV" else _pdf(scan, rows, ctx.now)
        return {"status": "SUCCEEDED", "url": ctx.base_url + self._reports.put(fmt, content)}


def _arn(ctx: Ctx, kind: str, resource: uuid.UUID | None = None) -> str:
    """``arn:aws:inspector2:<region>:<acct>:owner/<acct>/<kind>/<uuid>``."""
    owner = f"arn:aws:inspector2:{ctx.region}:{ctx.account_id}:owner/{ctx.account_id}"
    return f"{owner}/{kind}/{resource or uuid.uuid4()}"


def _finding(
    ctx: Ctx, scan_arn: str, host: Host, platform: str, label: str, outcome: CheckOutcome
) -> Result:
    rec = outcome.recommendation
    finding_id = uuid.uuid5(_FINDINGS, f"{scan_arn}/{host.instance_id}/{rec.id}")
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
        "findingArn": _arn(ctx, "cis-finding", finding_id),
    }


def _aggregate(scan: Scan, ctx: Ctx) -> list[Result]:
    groups: dict[tuple[str, str], list[Result]] = {}
    for finding in scan.findings(ctx.now):
        groups.setdefault((finding["checkId"], finding["platform"]), []).append(finding)
    return [
        {
            "scanArn": scan.arn,
            "checkId": rows[0]["checkId"],
            "title": rows[0]["title"],
            "checkDescription": rows[0]["checkDescription"],
            "level": rows[0]["level"],
            "accountId": ctx.account_id,
            "statusCounts": _counts(rows),
            "platform": rows[0]["platform"],
        }
        for rows in groups.values()
    ]


def _told(outcome: CheckOutcome, lies: Results) -> CheckOutcome:
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


def _reported(findings: list[Result], lies: Results) -> list[Result]:
    """GetCisScanResultDetails' rows: dropped statuses gone, duplicates added after originals."""
    rows: list[Result] = []
    for finding in findings:
        if finding["status"] in lies.drop_status:
            continue
        rows.append(finding)
        if finding["checkId"] in lies.duplicate:
            rows.append(dict(finding))
        conflicting = lies.conflicting_duplicate.get(finding["checkId"])
        if conflicting is not None:
            rows.append({**finding, "status": conflicting})
    return rows


def _page(
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
        bad_token=_bad_token,
        max_pages=max_pages,
    )
    result: Result = {}
    if page.items or not model.may_omit_empty(SERVICE, operation, key):
        result[key] = page.items
    if page.next_token:
        result["nextToken"] = page.next_token
    return result


def _pdf(scan: Scan, rows: list[Result], now: float) -> bytes:
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
