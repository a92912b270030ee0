"""``invoke promote``: publish an AMI that this pipeline validated, and refuse anything else.

Promotion writes the AMI ID to an SSM parameter (data type ``aws:ec2:image``) that node groups
and launch templates resolve, optionally shares the AMI, and tags it ``cis:promoted-*``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipeline import policy
from pipeline.aws import AwsClients, boundary, ec2, is_aws_endpoint, ssm
from pipeline.aws.images import describe_image, tag_image
from pipeline.catalog import Platform
from pipeline.errors import ConfigError, GateBlocked

LOCAL_TAG = "cis-ami:local"


@dataclass(frozen=True)
class PromoteSettings:
    ami: str
    policy_dir: Path
    parameter_prefix: str = "/eks-cis-ami"
    share_with: tuple[str, ...] = ()
    max_age_days: int = 30


@dataclass(frozen=True)
class Promotion:
    ami: str
    parameter: str
    version: int
    shared_with: tuple[str, ...]


def parameter_name(prefix: str, platform: str, arch: str, k8s: str) -> str:
    return f"{prefix.rstrip('/')}/{platform}/{arch}/{k8s}/latest"


def refusals(
    tags: dict[str, str],
    *,
    now: datetime,
    max_age_days: int,
    policy_sha: str | None,
    real_account: bool,
) -> list[str]:
    """Every reason the AMI may not be promoted (pure; empty means promotable)."""
    out = []
    verdict = tags.get("cis:verdict")
    if verdict != "PASS":
        out.append(f"cis:verdict is {verdict or 'missing'}: only AMIs that passed the gate")
    validated = tags.get("cis:validated-at")
    try:
        when = datetime.fromisoformat(validated.replace("Z", "+00:00")) if validated else None
    except ValueError:
        when = None
    if when is None:
        out.append("cis:validated-at is missing or not a time: run invoke validate first")
    elif now - when > timedelta(days=max_age_days):
        out.append(f"validated {when:%Y-%m-%d}, more than {max_age_days} days ago: validate again")
    if policy_sha is None:
        out.append("no exceptions policy for the AMI's platform")
    elif tags.get("cis:policy-sha256") != policy_sha:
        out.append(
            "validated under another version of the exceptions policy: validate again "
            "so the current approvals apply"
        )
    if real_account and "true" in (tags.get(LOCAL_TAG), tags.get("cis:local")):
        out.append("built and validated on the local AWS: its results prove nothing here")
    return out


def run_promote(
    settings: PromoteSettings, clients: AwsClients, now: datetime, echo: Callable[[str], None]
) -> Promotion:
    """Check the AMI's validation record, then publish it. Refusal → GateBlocked (exit 3)."""
    with boundary("promote"):
        image = describe_image(clients, settings.ami)
        tags = dict(image.tags)
        platform = image.platform
        policies = policy.load_all(policy.discover(settings.policy_dir))
        pol = policies.get(platform) if isinstance(platform, Platform) else None
        problems = refusals(
            tags,
            now=now,
            max_age_days=settings.max_age_days,
            policy_sha=pol.sha256 if pol else None,
            real_account=is_aws_endpoint(clients.endpoint_url),
        )
        if problems:
            raise GateBlocked(
                f"--ami {settings.ami}: not promoted",
                problems=[f"--ami {settings.ami}: {p}" for p in problems],
            )
        k8s = tags.get("cis-ami:kubernetes-version")
        if not (platform and k8s and image.architecture):
            raise ConfigError(
                f"--ami {settings.ami}: not built by this pipeline (no cis-ami:* tags)"
            )
        name = parameter_name(settings.parameter_prefix, platform.short, image.architecture, k8s)
        version = ssm.put_image_parameter(
            clients, name, image.id, f"CIS-validated EKS node AMI, run {tags.get('cis:run-id')}"
        )
        ec2.share_image(clients, image.id, list(settings.share_with))
        tag_image(
            clients,
            image.id,
            {"cis:promoted-at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "cis:promoted-to": name},
        )
    echo(f"promoted {image.id}: {name} (version {version})")
    for account in settings.share_with:
        echo(f"shared {image.id} with {account}")
    return Promotion(image.id, name, version, tuple(settings.share_with))


def split_accounts(value: str | None) -> Sequence[str]:
    accounts = [a.strip() for a in (value or "").split(",") if a.strip()]
    bad = [a for a in accounts if not (a.isdigit() and len(a) == 12)]
    if bad:
        raise ConfigError(f"--share-with {bad[0]}: not a 12-digit account ID")
    return accounts
