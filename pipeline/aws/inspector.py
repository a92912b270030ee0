"""Amazon Inspector: EC2 scanning status and the CIS scan control plane (inspector2 CIS API).

The pipeline never calls the ``*CisSession*`` operations; those are the instance's side
(``AmazonInspector2ManagedCisPolicy``). CIS scans have no botocore waiters: polling is the
caller's (``pipeline.polling``).
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect, pages
from pipeline.errors import AwsError

if TYPE_CHECKING:
    from types_boto3_inspector2.type_defs import CisScanTypeDef

IAM_ACTIONS: tuple[str, ...] = (
    "inspector2:BatchGetAccountStatus",
    "inspector2:Enable",
    "iam:CreateServiceLinkedRole",
    "inspector2:CreateCisScanConfiguration",
    "inspector2:DeleteCisScanConfiguration",
    "inspector2:ListCisScanConfigurations",
    "inspector2:ListCisScans",
    "inspector2:ListCisScanResultsAggregatedByTargetResource",
    "inspector2:ListCisScanResultsAggregatedByChecks",  # validate's cross-check, catalogue.refresh
    "inspector2:GetCisScanResultDetails",
    "inspector2:GetCisScanReport",
    "inspector2:TagResource",
)
RESULTS_PAGE_SIZE = 1000  # GetCisScanResultDetails maxResults 1..1000
CHECKS_PAGE_SIZE = 100  # ListCisScanResultsAggregatedByChecks maxResults 1..100
REPORT_MAX_BYTES = 256 * 1024 * 1024  # the CIS report CSV; as much as safeio's results files


@dataclass(frozen=True, slots=True)
class CisScan:
    scan_arn: str
    configuration_arn: str
    status: str | None
    total_checks: int | None
    failed_checks: int | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScanTarget:
    """``ListCisScanResultsAggregatedByTargetResource`` for one instance."""

    target: str
    status: str | None
    reason: str | None
    platform: str | None
    passed: int
    failed: int
    skipped: int
    raw: dict[str, Any]


def ec2_scanning_status(clients: AwsClients, account_id: str) -> str:
    """EC2 scanning state: ENABLED, ENABLING, DISABLED, ... (BatchGetAccountStatus)."""
    try:
        resp = clients.inspector2.batch_get_account_status(accountIds=[account_id])
    except ClientError as exc:
        raise aws_error("inspector2:BatchGetAccountStatus", exc) from exc
    for account in resp.get("accounts", []):
        if account.get("accountId") == account_id:
            return str(account.get("resourceState", {}).get("ec2", {}).get("status", "UNKNOWN"))
    return "UNKNOWN"


def enable_ec2_scanning(clients: AwsClients, account_id: str) -> str:
    """Start enabling EC2 scanning (inspector2:Enable); returns the EC2 status it reports."""
    try:
        resp = clients.inspector2.enable(resourceTypes=["EC2"], accountIds=[account_id])
    except ClientError as exc:
        raise aws_error("inspector2:Enable", exc) from exc
    for account in resp.get("accounts", []):
        return str(account.get("resourceStatus", {}).get("ec2", "UNKNOWN"))
    failed = resp.get("failedAccounts", [])
    if failed:
        raise AwsError(f"inspector2:Enable failed: {failed[0].get('errorMessage', failed[0])}")
    return "UNKNOWN"


def find_configurations(clients: AwsClients, scan_name: str) -> list[str]:
    """ARNs of scan configurations named ``scan_name`` (ListCisScanConfigurations)."""
    return list(configurations_named(clients, scan_name, "EQUALS").values())


def configurations_named(
    clients: AwsClients, name: str, comparison: str = "PREFIX"
) -> dict[str, str]:
    """{scan name: configuration ARN} of configurations whose name matches ``name``."""
    items = collect(
        clients.inspector2,
        "list_cis_scan_configurations",
        "scanConfigurations",
        filterCriteria={"scanNameFilters": [{"comparison": comparison, "value": name}]},
    )
    return {str(i.get("scanName", "")): str(i["scanConfigurationArn"]) for i in items}


def configurations_with_tags(clients: AwsClients) -> list[tuple[str, str, dict[str, str]]]:
    """(scan name, configuration ARN, tags) of every CIS scan configuration
    (ListCisScanConfigurations returns each configuration's tags)."""
    items = collect(clients.inspector2, "list_cis_scan_configurations", "scanConfigurations")
    return [
        (
            str(i.get("scanName", "")),
            str(i["scanConfigurationArn"]),
            {str(k): str(v) for k, v in (i.get("tags") or {}).items()},
        )
        for i in items
    ]


def create_one_time_scan(
    clients: AwsClients,
    *,
    scan_name: str,
    level: int,
    target_tags: dict[str, list[str]],
    tags: dict[str, str],
) -> str:
    """Create a one-time CIS scan configuration (it starts a scan at once); return its ARN.

    Targets are ``SELF`` (a literal account ID comes back in listings) and ``target_tags``.
    """
    try:
        resp = clients.inspector2.create_cis_scan_configuration(
            scanName=scan_name,
            securityLevel="LEVEL_2" if level == 2 else "LEVEL_1",
            schedule={"oneTime": {}},
            targets={"accountIds": ["SELF"], "targetResourceTags": target_tags},
            tags=tags,
        )
    except ClientError as exc:
        raise aws_error(f"inspector2:CreateCisScanConfiguration {scan_name}", exc) from exc
    return resp["scanConfigurationArn"]


def delete_configuration(clients: AwsClients, arn: str) -> bool:
    """Delete a scan configuration; False if it was already gone (idempotent)."""
    try:
        clients.inspector2.delete_cis_scan_configuration(scanConfigurationArn=arn)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise aws_error(f"inspector2:DeleteCisScanConfiguration {arn}", exc) from exc
    return True


def find_scan(clients: AwsClients, configuration_arn: str) -> CisScan | None:
    """The scan a configuration started (ListCisScans filtered by configuration ARN)."""
    scans = collect(
        clients.inspector2,
        "list_cis_scans",
        "scans",
        filterCriteria={
            "scanConfigurationArnFilters": [{"comparison": "EQUALS", "value": configuration_arn}]
        },
    )
    if not scans:
        return None
    latest: CisScanTypeDef = max(scans, key=lambda s: str(s.get("scanDate", "")))  # type: ignore[assignment]
    return CisScan(
        scan_arn=latest["scanArn"],
        configuration_arn=latest["scanConfigurationArn"],
        status=latest.get("status"),
        total_checks=latest.get("totalChecks"),
        failed_checks=latest.get("failedChecks"),
        raw=dict(latest),
    )


def scan_targets(clients: AwsClients, scan_arn: str) -> list[ScanTarget]:
    """Per-instance status and counts (ListCisScanResultsAggregatedByTargetResource)."""
    items = collect(
        clients.inspector2,
        "list_cis_scan_results_aggregated_by_target_resource",
        "targetResourceAggregations",
        scanArn=scan_arn,
    )
    out = []
    for item in items:
        counts = item.get("statusCounts", {})
        out.append(
            ScanTarget(
                target=str(item.get("targetResourceId", "")),
                status=item.get("targetStatus"),
                reason=item.get("targetStatusReason"),
                platform=item.get("platform"),
                passed=int(counts.get("passed", 0)),
                failed=int(counts.get("failed", 0)),
                skipped=int(counts.get("skipped", 0)),
                raw=dict(item),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class CheckAggregation:
    """``ListCisScanResultsAggregatedByChecks`` for one check of one platform."""

    check_id: str | None
    title: str | None
    level: str | None
    platform: str | None
    passed: int
    failed: int
    skipped: int


def scan_by_arn(clients: AwsClients, scan_arn: str) -> CisScan | None:
    """One scan by its ARN (ListCisScans filtered by scan ARN), or None when it is not listed."""
    scans = collect(
        clients.inspector2,
        "list_cis_scans",
        "scans",
        filterCriteria={"scanArnFilters": [{"comparison": "EQUALS", "value": scan_arn}]},
    )
    for scan in scans:
        if scan.get("scanArn") == scan_arn:
            return CisScan(
                scan_arn=scan_arn,
                configuration_arn=str(scan.get("scanConfigurationArn", "")),
                status=scan.get("status"),
                total_checks=scan.get("totalChecks"),
                failed_checks=scan.get("failedChecks"),
                raw=dict(scan),
            )
    return None


def check_aggregation_items(clients: AwsClients, scan_arn: str) -> list[dict[str, Any]]:
    """Every item of ListCisScanResultsAggregatedByChecks for a scan (all pages, 100 a page),
    as the API returned them: one per check per platform, with ``statusCounts`` over targets."""
    return collect(
        clients.inspector2,
        "list_cis_scan_results_aggregated_by_checks",
        "checkAggregations",
        scanArn=scan_arn,
        PaginationConfig={"PageSize": CHECKS_PAGE_SIZE},
    )


def check_aggregations(clients: AwsClients, scan_arn: str) -> list[CheckAggregation]:
    """Every check a scan evaluated, per platform (ListCisScanResultsAggregatedByChecks, paged).

    Every member but ``scanArn`` is optional in the service model, so absent ones are None.
    """
    out = []
    for item in check_aggregation_items(clients, scan_arn):
        counts = item.get("statusCounts", {})
        out.append(
            CheckAggregation(
                check_id=item.get("checkId"),
                title=item.get("title"),
                level=item.get("level"),
                platform=item.get("platform"),
                passed=int(counts.get("passed", 0)),
                failed=int(counts.get("failed", 0)),
                skipped=int(counts.get("skipped", 0)),
            )
        )
    return out


def result_pages(
    clients: AwsClients, scan_arn: str, account_id: str, target: str
) -> list[dict[str, Any]]:
    """Every page of GetCisScanResultDetails for one instance, as the API returned it."""
    out = []
    for page in pages(
        clients.inspector2,
        "get_cis_scan_result_details",
        scanArn=scan_arn,
        accountId=account_id,
        targetResourceId=target,
        PaginationConfig={"PageSize": RESULTS_PAGE_SIZE},
    ):
        page = dict(page)
        page.pop("ResponseMetadata", None)
        page.pop("nextToken", None)
        page["targetResourceId"] = target  # which instance the page is about, for evidence
        out.append(page)
    return out


def request_report(clients: AwsClients, scan_arn: str) -> tuple[str, str | None]:
    """Ask for the CSV report (GetCisScanReport): its status (``IN_PROGRESS`` while Inspector
    is still making it, then ``SUCCEEDED`` or ``FAILED``) and its URL once it has one."""
    try:
        resp = clients.inspector2.get_cis_scan_report(scanArn=scan_arn, reportFormat="CSV")
    except ClientError as exc:
        raise aws_error(f"inspector2:GetCisScanReport {scan_arn}", exc) from exc
    url = resp.get("url")
    return str(resp.get("status", "UNKNOWN")), url if isinstance(url, str) else None


def download_report(scan_arn: str, status: str, url: str | None) -> bytes:
    """Download a report ``request_report`` answered: its bytes, as served.

    The caller writes them (``pipeline.outputs``: atomically, never through a link). Raises
    AwsError when the report was not produced or cannot be downloaded, or passes
    ``REPORT_MAX_BYTES``.
    """
    if status != "SUCCEEDED" or not url:
        raise AwsError(f"CIS report for {scan_arn} is {status}")
    if not url.startswith(("https://", "http://")):
        raise AwsError(f"CIS report URL is not HTTP(S): {url[:60]}")
    try:
        with urllib.request.urlopen(url, timeout=60) as handle:  # noqa: S310 - checked scheme
            body: bytes = handle.read(REPORT_MAX_BYTES + 1)
    except OSError as exc:
        raise AwsError(f"downloading the CIS report: {exc}") from exc
    if len(body) > REPORT_MAX_BYTES:
        raise AwsError(f"the CIS report for {scan_arn} is larger than {REPORT_MAX_BYTES} bytes")
    return body


@dataclass(frozen=True, slots=True)
class ScanConfiguration:
    """One CIS scan configuration as ListCisScanConfigurations describes it."""

    arn: str
    name: str
    level: str | None  # securityLevel: LEVEL_1 / LEVEL_2
    target_tags: dict[str, list[str]]
    raw: dict[str, Any]


def describe_configurations(clients: AwsClients, scan_name: str) -> list[ScanConfiguration]:
    """Configurations named exactly ``scan_name``, with their level and target tags."""
    items = collect(
        clients.inspector2,
        "list_cis_scan_configurations",
        "scanConfigurations",
        filterCriteria={"scanNameFilters": [{"comparison": "EQUALS", "value": scan_name}]},
    )
    out = []
    for item in items:
        targets = item.get("targets", {}) or {}
        tags = targets.get("targetResourceTags", {}) or {}
        out.append(
            ScanConfiguration(
                arn=str(item["scanConfigurationArn"]),
                name=str(item.get("scanName", "")),
                level=item.get("securityLevel"),
                target_tags={str(k): [str(v) for v in vs] for k, vs in tags.items()},
                raw=dict(item),
            )
        )
    return out
