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
from collections.abc import Callable
from dataclasses import replace

from pipeline import catalog
from pipeline.catalog import Platform
from pipeline.localaws import cis_report, profiles, query
from pipeline.localaws.cis_report import ReportStore
from pipeline.localaws.cis_scans import (
    CHECK_FILTERS,
    CHECK_SORT,
    CONFIG_FILTERS,
    CONFIG_SORT,
    DETAIL_FILTERS,
    DETAIL_SORT,
    SCAN_FILTERS,
    SCAN_SORT,
    TARGET_FILTERS,
    TARGET_SORT,
    Configuration,
    Scan,
    Target,
    aggregate,
    finding,
    new_arn,
    page,
    pdf,
    reported,
    restated,
    told,
)
from pipeline.localaws.context import Ctx, Handler, Params, Result
from pipeline.localaws.fleet import Fleet, Host
from pipeline.localaws.profiles import HostProfile, ManifestSource
from pipeline.localaws.scenario import Scenario
from pipeline.localaws.ssm import is_online
from pipeline.localaws.wire import ServiceError


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
            arn=new_arn(ctx, "cis-configuration"),
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
        chosen = query.apply(configs, params.get("filterCriteria"), CONFIG_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), CONFIG_SORT, "SCAN_NAME"
        )
        return page(
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
        arn = new_arn(ctx, "cis-scan")
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
            report_after_s=scenario.report_after_s,
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
            finding(ctx, scan.arn, host, platform, label, told(o, lies)) for o in outcomes
        )
        return Target(host.instance_id, ctx.account_id, shown, platform, None, findings)

    def list_scans(self, ctx: Ctx, params: Params) -> Result:
        with self._lock:
            scans = [s for s in self._scans.values() if s.region == ctx.region]
        pairs = [(s.item(ctx.now), s) for s in scans]
        chosen = query.apply(pairs, params.get("filterCriteria"), SCAN_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), SCAN_SORT, "SCAN_START_DATE"
        )
        return page("ListCisScans", "scans", [item for item, _ in ordered], params)

    def _scan(self, ctx: Ctx, arn: str) -> Scan | None:
        with self._lock:
            scan = self._scans.get(arn)
        return scan if scan is not None and scan.region == ctx.region else None

    # -- results ----------------------------------------------------------------------------

    def list_by_checks(self, ctx: Ctx, params: Params) -> Result:
        scan = self._scan(ctx, params["scanArn"])
        aggregations = aggregate(scan, ctx) if scan else []
        chosen = query.apply(aggregations, params.get("filterCriteria"), CHECK_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), CHECK_SORT, "CHECK_ID"
        )
        return page("ListCisScanResultsAggregatedByChecks", "checkAggregations", ordered, params)

    def list_by_target(self, ctx: Ctx, params: Params) -> Result:
        scan = self._scan(ctx, params["scanArn"])
        pairs = [(scan.target_item(t, ctx.now), t) for t in scan.results] if scan else []
        chosen = query.apply(pairs, params.get("filterCriteria"), TARGET_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), TARGET_SORT, "RESOURCE_ID"
        )
        items = [item for item, _ in ordered]
        return page(
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
            findings = reported(findings, scan.lies)
        chosen = query.apply(findings, params.get("filterCriteria"), DETAIL_FILTERS)
        ordered = query.order(
            chosen, params.get("sortBy"), params.get("sortOrder"), DETAIL_SORT, "CHECK_ID"
        )
        return page(
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
        if ctx.now < scan.ends_at + scan.report_after_s:  # the report is still being made
            return {"status": "IN_PROGRESS"}
        accounts = params.get("targetAccounts") or [ctx.account_id]
        rows = [f for f in scan.findings(ctx.now) if f["accountId"] in accounts]
        fmt = params.get("reportFormat", "PDF")
        if fmt == "CSV":  # a scenario's report_status makes the CSV (only) lie
            content = cis_report.csv_report(restated(rows, scan.lies.report_status))
        else:
            content = pdf(scan, rows, ctx.now)
        return {"status": "SUCCEEDED", "url": ctx.base_url + self._reports.put(fmt, content)}
