"""Inspector's package scan of one EC2 instance: its coverage rows and its findings, as data.

Coverage (README "Inspector package scanning"): with EC2 scanning ENABLED, every instance
that is not terminated has a ``NETWORK`` row (``ACTIVE``) and a ``PACKAGE`` row whose status
follows SSM: stopped -> ``EC2_INSTANCE_STOPPED``; not a managed node -> ``UNMANAGED_EC2_INSTANCE``;
no known OS -> ``UNSUPPORTED_OS``; else ``PENDING_INITIAL_SCAN`` until ``scan_after_s`` after
it became managed (or scanning was enabled, if later), then ``ACTIVE``/``SUCCESSFUL`` with
``lastScannedAt`` (or the scenario's ``coverage.reason``, ``INACTIVE``, for good).
Findings: one ``PACKAGE_VULNERABILITY`` finding per vulnerability of the table that affects a
scanned instance's packages (``vulntable``), shaped as botocore's ``Finding``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pipeline.localaws import moto_state, seed, ssm, vulntable
from pipeline.localaws.context import Ctx
from pipeline.localaws.fleet import Host
from pipeline.localaws.profiles import HostProfile
from pipeline.localaws.scenario_sections import VulnKnobs
from pipeline.localaws.vulntable import Affected, Vulnerability

ARCH_TAG = "cis-ami:architecture"
# "false" on a hardened AMI built without security updates (the template variable); absent:
# hardened AMIs have them, stock ones do not.
UPDATES_TAG = "cis-ami:security-updates"
SCAN_MODE = "EC2_SSM_AGENT_BASED"
SEVERITY_RANK = {
    s: i for i, s in enumerate(("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"))
}
# Amazon Linux advisories' words for the severities.
_VENDOR = {"CRITICAL": "Critical", "HIGH": "Important", "MEDIUM": "Medium", "LOW": "Low"}
_STOPPED = frozenset({"stopping", "stopped"})


@dataclass(frozen=True, slots=True)
class Coverage:
    """The PACKAGE scan state of one host; ``scanned_at`` only once a scan completed."""

    host: Host
    code: str  # ACTIVE | INACTIVE
    reason: str
    scanned_at: float | None


def coverage(
    host: Host, now: float, enabled_since: float, online_after: float | None, knobs: VulnKnobs
) -> Coverage:
    if host.state in _STOPPED:
        return Coverage(host, "INACTIVE", "EC2_INSTANCE_STOPPED", None)
    registered = ssm.registered_at(host, online_after)
    if registered is None or now < registered:
        return Coverage(host, "INACTIVE", "UNMANAGED_EC2_INSTANCE", None)
    if host.profile is None:
        return Coverage(host, "INACTIVE", "UNSUPPORTED_OS", None)
    begin = max(registered, enabled_since)
    if knobs.scan_after_s is None or now < begin + knobs.scan_after_s:
        return Coverage(host, "INACTIVE", "PENDING_INITIAL_SCAN", None)
    if knobs.coverage_reason is not None:
        return Coverage(host, "INACTIVE", knobs.coverage_reason, None)
    return Coverage(host, "ACTIVE", "SUCCESSFUL", begin + knobs.scan_after_s)


def coverage_rows(ctx: Ctx, cov: Coverage, enabled_since: float) -> list[dict[str, Any]]:
    """The host's NETWORK and PACKAGE rows of ListCoverage."""
    host = cov.host
    metadata = {"ec2": {"amiId": host.image_id, "platform": "LINUX", "tags": dict(host.tags)}}
    base = {
        "resourceType": "AWS_EC2_INSTANCE",
        "resourceId": host.instance_id,
        "accountId": ctx.account_id,
        "resourceMetadata": metadata,
    }
    package: dict[str, Any] = {
        **base,
        "scanType": "PACKAGE",
        "scanStatus": {"statusCode": cov.code, "reason": cov.reason},
        "scanMode": SCAN_MODE,
    }
    if cov.scanned_at is not None:
        package["lastScannedAt"] = cov.scanned_at
    network: dict[str, Any] = {
        **base,
        "scanType": "NETWORK",
        "scanStatus": {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"},
        "lastScannedAt": max(host.launched_at, enabled_since),
    }
    return [network, package]


def architecture(account_id: str, host: Host) -> str:
    """The RPM architecture of the host's packages (x86_64 | aarch64): the AMI's
    ``cis-ami:architecture`` tag, else the seeded base AMI's, else x86_64."""
    tags = moto_state.image_tags(account_id, host.region, host.image_id) or {}
    arch = tags.get(ARCH_TAG)
    if arch is None:
        base = seed.base_image(host.region, host.image_id)
        arch = base.architecture if base else "x86_64"
    return "aarch64" if arch in ("arm64", "aarch64") else "x86_64"


def findings(ctx: Ctx, cov: Coverage, knobs: VulnKnobs) -> list[dict[str, Any]]:
    """Every finding of a scanned host (none before its first completed scan)."""
    host, profile = cov.host, cov.host.profile
    if cov.scanned_at is None or profile is None:
        return []
    table = vulntable.load()
    arch = architecture(ctx.account_id, host)
    tags = moto_state.image_tags(ctx.account_id, host.region, host.image_id) or {}
    flag = tags.get(UPDATES_TAG)
    updated = None if flag not in ("true", "false") else flag == "true"
    return [
        finding(ctx, host, profile, vuln, hits, cov.scanned_at, arch, table.commands, knobs)
        for vuln, hits in table.affecting(profile, knobs.publish, updated)
    ]


def finding_arn(ctx: Ctx, resource_id: str, vuln_id: str) -> str:
    digest = hashlib.sha256(f"{ctx.region}/{resource_id}/{vuln_id}".encode()).hexdigest()
    return f"arn:aws:inspector2:{ctx.region}:{ctx.account_id}:finding/{digest[:32]}"


def finding(
    ctx: Ctx,
    host: Host,
    profile: HostProfile,
    vuln: Vulnerability,
    hits: list[Affected],
    at: float,
    arch: str,
    commands: Any,
    knobs: VulnKnobs,
) -> dict[str, Any]:
    platform = profile.platform.value
    fixes = [hit.fixed_in is not None for hit in hits]
    fix_available = "YES" if all(fixes) else "PARTIAL" if any(fixes) else "NO"
    advisory = vuln.advisories.get(platform)
    source_url = f"https://alas.aws.amazon.com/cve/html/{vuln.id}.html"
    references = [source_url]
    if advisory:
        folder = "AL2023" if platform == "AMAZON_LINUX_2023" else "AL2"
        references.append(f"https://alas.aws.amazon.com/{folder}/{advisory}.html")
    details: dict[str, Any] = {
        "vulnerabilityId": vuln.id,
        "vulnerablePackages": [_package(hit, arch, commands.get(platform, "dnf")) for hit in hits],
        "source": "AMAZON_CVE",
        "cvss": [_cvss(vuln)],
        "sourceUrl": source_url,
        "vendorSeverity": _VENDOR.get(vuln.severity, vuln.severity.title()),
        "referenceUrls": references,
    }
    if advisory:
        details["relatedVulnerabilities"] = [advisory]
    ec2: dict[str, Any] = {
        "imageId": host.image_id,
        "platform": platform,
        "launchedAt": host.launched_at,
    }
    if host.private_ip:
        ec2["ipV4Addresses"] = [host.private_ip]
    return {
        "findingArn": finding_arn(ctx, host.instance_id, vuln.id),
        "awsAccountId": ctx.account_id,
        "type": "PACKAGE_VULNERABILITY",
        "description": vuln.description,
        "title": f"{vuln.id} - {', '.join(hit.package.name for hit in hits)}",
        "remediation": {"recommendation": {"text": "None Provided"}},
        "severity": vuln.severity,
        "firstObservedAt": at,
        "lastObservedAt": at,
        "updatedAt": at,
        "status": "SUPPRESSED" if vuln.id in knobs.suppressed else "ACTIVE",
        "resources": [
            {
                "type": "AWS_EC2_INSTANCE",
                "id": host.instance_id,
                "partition": "aws",
                "region": host.region,
                "tags": dict(host.tags),
                "details": {"awsEc2Instance": ec2},
            }
        ],
        "inspectorScore": vuln.score,
        "inspectorScoreDetails": {
            "adjustedCvss": {
                "scoreSource": "NVD",
                "cvssSource": "NVD",
                "version": "3.1",
                "score": vuln.score,
                "scoringVector": vuln.vector,
                "adjustments": [],
            }
        },
        "packageVulnerabilityDetails": details,
        "fixAvailable": fix_available,
        "exploitAvailable": "NO",
    }


def _cvss(vuln: Vulnerability) -> dict[str, Any]:
    score = {"baseScore": vuln.score, "scoringVector": vuln.vector}
    return {**score, "version": "3.1", "source": "NVD"}


def _package(hit: Affected, arch: str, command: str) -> dict[str, Any]:
    pkg = hit.package
    item: dict[str, Any] = {
        "name": pkg.name,
        "version": pkg.version,
        "release": pkg.release,
        "epoch": pkg.epoch,
        "arch": arch,
        "packageManager": "OS",
        "fixedInVersion": "NotAvailable",
    }
    if hit.fixed_in is not None:
        fixed = vulntable.Installed(pkg.name, hit.fixed_in)
        item["fixedInVersion"] = f"{fixed.epoch}:{fixed.version}-{fixed.release}"
        item["remediation"] = f"{command} update {pkg.name}"
    return item
