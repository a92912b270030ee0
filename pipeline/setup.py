"""``invoke setup``: the evidence bucket, the KMS signing key and (when asked) the test-instance
role and instance profile, created once per account and region; idempotent; ``dry_run`` plans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.aws import AwsClients, boundary, iam, kms, s3
from pipeline.aws.account import caller_account
from pipeline.errors import ConfigError
from pipeline.evidence import dsse, store
from pipeline.settings import as_count, evidence_settings, pick
from pipeline.tags import MANAGED_TAG, MANAGED_VALUE, PIPELINE_TAG

PIPELINE_NAME = "eks-cis-ami-pipeline"
MANAGED_PROFILE = "eks-cis-ami-pipeline-scan"  # role and instance profile of the test instances
# Packer's build instance (packer/variables.pkr.hcl iam_instance_profile): Session Manager only.
PACKER_PROFILE = "eks-cis-ami-pipeline-packer"
TAGS = {MANAGED_TAG: MANAGED_VALUE, PIPELINE_TAG: PIPELINE_NAME}


@dataclass(frozen=True)
class SetupSettings:
    evidence_bucket: str | None = None  # default: store.default_bucket(account, region)
    signing_key: str | None = None  # an alias, key ID or ARN; default store.DEFAULT_KEY_ALIAS
    manage_instance_profile: bool = False
    object_lock: bool = False
    # The default retention object-locked evidence gets (``pipeline.object_lock_mode`` /
    # ``object_lock_days``): GOVERNANCE can be lifted by s3:BypassGovernanceRetention,
    # COMPLIANCE by nobody, the root user included, until it ends.
    object_lock_mode: str = "GOVERNANCE"
    object_lock_days: int = 365
    dry_run: bool = False
    public_key_out: Path | None = None
    account: str | None = None  # the caller's account when known (saves sts:GetCallerIdentity)
    # What a validate run relies on, read only when the bucket exists: that it is the account's
    # and versioned (s3:HeadBucket, GetBucketVersioning), the signing key, the test-instance
    # profile. Encryption, public access block, TLS-only policy and object lock are this
    # command's guarantee at creation; a full `invoke setup` (or `--dry-run`) audits them.
    run_checks_only: bool = False


@dataclass(frozen=True)
class SetupResult:
    bucket: str
    key_arn: str | None  # None only in a dry run that would create the key
    instance_profile: str | None
    changes: tuple[str, ...]  # done, or planned in a dry run
    # The test-instance profile as read (every policy document), when it needed no change.
    scan_profile: iam.InstanceProfile | None = None


def run_setup(
    settings: SetupSettings, clients: AwsClients, echo: Callable[[str], None] = print
) -> SetupResult:
    """Create what is missing (nothing when all exists); report each change or the plan."""
    with boundary("setup"):
        return _setup(settings, clients, echo)


def _setup(
    settings: SetupSettings, clients: AwsClients, echo: Callable[[str], None]
) -> SetupResult:
    account = settings.account or caller_account(clients)
    bucket = settings.evidence_bucket or store.default_bucket(account, clients.region)
    alias = settings.signing_key or store.DEFAULT_KEY_ALIAS
    verb = "plan" if settings.dry_run else "done"
    changes: list[str] = []

    # A TLS-only policy denies every request over plain HTTP, the local AWS's only transport.
    tls = not (clients.endpoint_url or "https:").startswith("http:")
    blank = s3.BucketState(bucket, False, False, False, False, False)
    if settings.run_checks_only:  # existence, ownership and versioning only (see SetupSettings)
        versioned = s3.bucket_versioned(clients, bucket, account)
        exists, locked = versioned is not None, False
        missing = ([] if versioned else ["versioning"]) if exists else blank.missing(tls=tls)
    else:
        state = s3.bucket_state(clients, bucket, account)
        exists, locked = state is not None, state is not None and state.object_lock
        want = (settings.object_lock_mode, settings.object_lock_days)
        locking = settings.object_lock if state is None else state.object_lock
        missing = (state or blank).missing(tls=tls, retention=want if locking else None)
        if state is None and settings.object_lock:
            missing.append(s3.RETENTION)
    if not tls and not exists:
        echo(
            f"setup: plain-HTTP endpoint: s3://{bucket} gets no TLS-only policy (it would deny us)"
        )
    if not exists:
        lock = " with object lock" if settings.object_lock else ""
        changes.append(f"create evidence bucket s3://{bucket}{lock}")
        if not settings.dry_run:
            s3.create_bucket(clients, bucket, object_lock=settings.object_lock)
            s3.tag_bucket(clients, bucket, account, TAGS)
    elif settings.object_lock and not locked:
        echo(f"WARNING  s3://{bucket} has no object lock; S3 allows it only at creation")
    if missing:
        changes.append(f"s3://{bucket}: {', '.join(missing)}")
        if not settings.dry_run:
            retention = (settings.object_lock_mode, settings.object_lock_days)
            s3.protect_bucket(clients, bucket, account, missing, retention)

    key = kms.describe_key(clients, alias)
    if key is None:
        if not alias.startswith("alias/"):
            raise ConfigError(f"signing key {alias}: no such KMS key (give an alias to create)")
        changes.append(f"create KMS signing key {alias} ({kms.KEY_SPEC}, SIGN_VERIFY)")
        if not settings.dry_run:
            key = kms.create_signing_key(clients, alias, TAGS)
    elif key.problems():
        raise ConfigError(f"signing key {alias}: " + "; ".join(key.problems()))

    profile = None
    described = None
    if settings.manage_instance_profile:
        profile = MANAGED_PROFILE
        try:
            have = iam.describe_profile(clients, MANAGED_PROFILE)
            absent = have.missing if have.role else list(iam.REQUIRED_POLICIES)
        except ConfigError:  # no such instance profile
            absent = ["role", "instance profile", *iam.REQUIRED_POLICIES]
        if absent:
            changes.append(f"test-instance role/profile {MANAGED_PROFILE}: {', '.join(absent)}")
            if not settings.dry_run:
                iam.ensure_scan_profile(clients, MANAGED_PROFILE, TAGS)
        else:
            described = have
        # A validate run launches no Packer build: it checks Packer's profile only along with
        # creating the test-instance profile (a first run in the account), else leaves it be.
        packer_too = absent or not settings.run_checks_only
        if packer_too and not iam.profile_exists(clients, PACKER_PROFILE):
            changes.append(f"Packer build role/profile {PACKER_PROFILE}: {iam.SSM_CORE}")
            if not settings.dry_run:
                iam.ensure_instance_profile(
                    clients,
                    PACKER_PROFILE,
                    (iam.SSM_CORE,),
                    "EKS CIS AMI pipeline: Packer build instance (Session Manager)",
                    TAGS,
                )

    for change in changes:
        echo(f"setup: {verb}: {change}")
    if not changes:
        echo(
            f"setup: nothing to change: s3://{bucket}, {alias}"
            + (f", {profile}" if profile else "")
        )
    if settings.public_key_out is not None and key is not None:
        der = kms.public_key_der(clients, key.arn, settle_s=kms.SETTLE_S, echo=echo)
        pem = dsse.der_to_pem(der)
        if not settings.dry_run:
            settings.public_key_out.write_bytes(pem)
            echo(f"setup: public key of {key.arn} written to {settings.public_key_out}")
    return SetupResult(bucket, key.arn if key else None, profile, tuple(changes), described)


def setup_settings(
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    local: bool,
    evidence_bucket: str | None = None,
    manage_instance_profile: bool | None = None,
    object_lock: bool = False,
    dry_run: bool = False,
    public_key_out: str | None = None,
) -> SetupSettings:
    """``invoke setup``'s settings; the project manages the test-instance role when asked
    (flag, else ``pipeline.manage_instance_profile``), by default only on the local AWS."""
    evidence = evidence_settings(config, environ, evidence_bucket=evidence_bucket)
    manage = pick(manage_instance_profile, config, "manage_instance_profile", local)
    mode = str(pick(None, config, "object_lock_mode", "GOVERNANCE")).upper()
    if mode not in s3.LOCK_MODES:
        raise ConfigError(
            f"invoke.yaml: $.pipeline.object_lock_mode: {mode!r} is not one of "
            f"{', '.join(s3.LOCK_MODES)}"
        )
    days = as_count(
        pick(None, config, "object_lock_days", 365),
        "invoke.yaml: $.pipeline.object_lock_days",
        maximum=36500,  # S3: at most 100 years
    )
    return SetupSettings(
        evidence_bucket=evidence.bucket,
        signing_key=evidence.signing_key,
        manage_instance_profile=bool(manage),
        object_lock=bool(pick(object_lock or None, config, "object_lock", False)),
        object_lock_mode=mode,
        object_lock_days=days,
        dry_run=dry_run,
        public_key_out=Path(public_key_out) if public_key_out else None,
    )
