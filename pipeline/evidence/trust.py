"""The release trust rules, pure: when a verified record allows an image to be served. promote
applies all of them; revoke's rollback applies them to the image it would roll back to."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from pipeline import policy
from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.evidence import statement, verdicts
from pipeline.evidence.record import Verification

K8S_TAG = "cis-ami:kubernetes-version"
_CLOCK_SKEW = timedelta(minutes=5)
# packer/eks-cis.pkr.hcl's ami_name: eks-cis-<platform>-<arch>-k8s<version>-l<level>-<run-id>
BUILT_NAME = re.compile(r"^eks-cis-[a-z0-9]+-(?:x86_64|arm64)-k8s(1\.[0-9]{2})-l[12]-")


def level_number(level: str | None) -> int | None:
    """``LEVEL_2`` → 2; anything else → None."""
    text = (level or "").upper().removeprefix("LEVEL_")
    return int(text) if text in {"1", "2"} else None


def refusals(
    verification: Verification,
    *,
    ami: str,
    region: str,
    now: datetime,
    max_age_days: int,
    policy_sha: str | None,
    min_level: int,
    real_endpoint: bool,
    revoked: str | None,
) -> list[str]:
    """Every reason the verified record does not allow promotion (pure; [] means promotable)."""
    return trust_refusals(
        verification,
        ami=ami,
        region=region,
        now=now,
        min_level=min_level,
        real_endpoint=real_endpoint,
        revoked=revoked,
    ) + freshness_refusals(verification, now=now, max_age_days=max_age_days, policy_sha=policy_sha)


def trust_refusals(
    verification: Verification,
    *,
    ami: str,
    region: str,
    now: datetime,
    min_level: int,
    real_endpoint: bool,
    revoked: str | None,
) -> list[str]:
    """Why the record cannot be trusted for this image and level at all (pure): not verified,
    a section (CIS, node, vulnerabilities) missing or not PASS, about another image, no or a
    future verification time, too low a level, local against a real account, revoked. Nothing
    relaxes these, a rollback included."""
    out: list[str] = []
    if not verification.ok:
        out += [f"record does not verify: {r}" for r in verification.reasons] or [
            "record does not verify"
        ]
    out += section_refusals(verification)
    if verification.ami_id != ami or verification.region != region:
        out.append(f"record is for {verification.region}/{verification.ami_id}, not {region}/{ami}")
    when = verification.time_verified
    if when is None:
        out.append("record has no verification time")
    elif when - now > _CLOCK_SKEW:
        out.append(f"record claims a verification time in the future ({when:%Y-%m-%dT%H:%M}Z)")
    level = level_number(verification.level)
    if level is None or level < min_level:
        out.append(
            f"validated at {verification.level or 'no level'}, the channel requires "
            f"LEVEL_{min_level}"
        )
    if real_endpoint and verification.local:
        out.append("validated on the local AWS: its record proves nothing in a real account")
    if revoked is not None:
        out.append(f"revoked: {revoked}")
    return out


def section_refusals(verification: Verification) -> list[str]:
    """Every section of the signed record that is missing or not PASS (pure): an image whose
    node cannot run Kubernetes, or that ships a blocking vulnerability, is never released."""
    if verification.statement is None:
        return []  # no statement: ``record does not verify`` already says why
    claims, _ = statement.read(verification.statement)
    return verdicts.refusals(claims.sections)


def freshness_refusals(
    verification: Verification, *, now: datetime, max_age_days: int, policy_sha: str | None
) -> list[str]:
    """Why a trusted record is out of date (pure): validated under another exceptions policy
    than the current one, or longer ago than ``max_age_days``. ``revoke
    --allow-stale-rollback`` relaxes only these."""
    out: list[str] = []
    if policy_sha is None:
        out.append("no exceptions policy for the AMI's platform")
    elif policy_sha not in verification.policy_sha256:
        got = ", ".join(s[:12] for s in verification.policy_sha256) or "none"
        out.append(
            f"validated under policy sha256 {got}, the current policy is {policy_sha[:12]}: "
            "validate again so the current approvals apply"
        )
    when = verification.time_verified
    if when is not None and now - when > timedelta(days=max_age_days):
        out.append(f"validated {when:%Y-%m-%d}, more than {max_age_days} days ago: validate again")
    return out


def signed_platform(verification: Verification) -> Platform | None:
    """The platform the signed statement names (None when absent or unknown)."""

    claims, _ = statement.read(verification.statement or {})
    try:
        return Platform.parse(claims.platform) if claims.platform else None
    except ConfigError:
        return None


def signed_kubernetes_version(verification: Verification) -> str | None:
    """The Kubernetes version the signed statement names (None for records made before it)."""

    claims, _ = statement.read(verification.statement or {})
    return claims.kubernetes_version


def policy_sha(policy_dir: Path, platform: Platform | None) -> str | None:
    """The SHA-256 of the current exceptions policy of ``platform`` (None: none)."""
    if not isinstance(platform, Platform):
        return None
    found = policy.load_all(policy.discover(policy_dir)).get(platform)
    return found.sha256 if found else None
