"""Preflight: everything a run relies on is checked before anything is created (the AMIs, their
exceptions policies, the evidence store, Inspector, the instance profile, a resumed run).

Bad input raises ConfigError (exit 2); Inspector not enabled raises ScanError (exit 4).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pipeline import node, outputs, policy, support
from pipeline.aws import AwsClients, iam, inspector, is_aws_endpoint, network
from pipeline.aws.account import caller_account
from pipeline.aws.images import Image, describe_image
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError, ScanError
from pipeline.evidence import store as evidence_store
from pipeline.packer import check_level
from pipeline.runs import check_run_id, new_run_id
from pipeline.settings import NetworkSettings
from pipeline.setup import MANAGED_PROFILE, SetupSettings, run_setup
from pipeline.validate.resume import check_resumable, clear_previous_run
from pipeline.validate.settings import Runtime, ValidateSettings
from pipeline.validate.wait import poll


@dataclass(frozen=True)
class Run:
    """What preflight established for one run; nothing has been created yet."""

    settings: ValidateSettings  # ``local`` decided: the endpoint is not AWS's own
    run_id: str
    account: str
    out: Path
    images: list[Image]
    policies: dict[Platform, policy.ExceptionsPolicy]
    bucket: str  # the evidence bucket
    key_id: str  # the signing key's ARN
    profile: iam.InstanceProfile  # the test instances'
    network: network.Network  # the test instances' subnet, public IP, group; SSM reachable
    probe: tuple[str, str]  # the node probe shipped with the checkout: (script, its sha256)


def preflight(settings: ValidateSettings, clients: AwsClients, rt: Runtime) -> Run:
    """Check the run's input and what it relies on, in that order; clear ``--out``."""
    check_level(settings.level)
    if not settings.amis:
        raise ConfigError("--ami: give at least one AMI ID")
    out = outputs.ensure_dir(settings.out_dir)
    if settings.resume and not settings.run_id:
        raise ConfigError("--run-id: give the ID of the run to resume")
    run_id = check_run_id(settings.run_id) if settings.run_id else new_run_id(rt.now())
    # Reports and tags say when the endpoint is not AWS's own (the project's local AWS).
    local = settings.local or not is_aws_endpoint(clients.endpoint_url)
    settings = replace(settings, local=local)
    account = caller_account(clients)
    rt.echo(f"run {run_id}: account {account}, region {clients.region}")
    images = [_preflight_image(clients, ami) for ami in dict.fromkeys(settings.amis)]
    for image in images:  # Inspector's CIS scanning dropped AL2: refuse before creating anything
        if image.platform is not None:
            support.check_real_aws([image.platform], real_aws=not local, what=f"--ami {image.id}")
    policies = policy.load_all(policy.discover(settings.policy_dir))
    for image in images:
        if image.platform not in policies:
            raise ConfigError(f"{image.id}: no exceptions policy for {image.platform}")
    placed = _network(clients, settings, images, rt)  # before setup or Inspector change anything
    bucket, key_id, described = _evidence_store(clients, settings, account, rt)
    _ensure_inspector(clients, account, settings, rt)
    profile = _instance_profile(clients, settings, described)
    if settings.resume:
        check_resumable(clients, settings, run_id, images, rt)
    probe = node.probe_script()  # it ships with the checkout: refuse before launching
    clear_previous_run(out, rt)
    return Run(
        settings, run_id, account, out, images, policies, bucket, key_id, profile, placed, probe
    )


def _network(
    clients: AwsClients, settings: ValidateSettings, images: list[Image], rt: Runtime
) -> network.Network:
    """The test instances' subnet (in a zone offering their instance types), public IP and
    security group, checked before any tag changes, so a mistyped one costs nothing; refused when
    an instance there could not reach Systems Manager (pipeline.aws.network.prepare)."""
    types = [settings.instance_types[str(image.architecture)] for image in images]
    asked = NetworkSettings(settings.subnet_id, settings.security_group_id, settings.public_ip)
    placed = network.prepare(clients, asked, types)
    ip = "a public IP" if placed.public_ip else "no public IP"
    rt.echo(
        f"network: subnet {placed.subnet_id} ({placed.zone}, {placed.vpc_id}), {ip}; SSM through "
        f"{placed.route}"
    )
    return placed


def _preflight_image(clients: AwsClients, ami_id: str) -> Image:
    try:
        image = describe_image(clients, ami_id)
    except AwsError as exc:
        raise ConfigError(f"--ami {ami_id}: {exc}") from exc
    if image.state != "available":
        raise ConfigError(f"--ami {ami_id}: image is {image.state}, not available")
    if image.platform is None:
        raise ConfigError(
            f"--ami {ami_id}: platform unknown (tag cis-ami:platform or an EKS AL2/AL2023 name)"
        )
    if image.architecture not in ("x86_64", "arm64"):
        raise ConfigError(f"--ami {ami_id}: architecture {image.architecture} is not supported")
    return image


def _evidence_store(
    clients: AwsClients, settings: ValidateSettings, account: str, rt: Runtime
) -> tuple[str, str, iam.InstanceProfile | None]:
    """The evidence bucket, the signing key ARN and, when setup read it, the test-instance
    profile; on the local AWS ``invoke setup`` runs first.

    A run checks what it relies on (the bucket exists and is the account's, it is versioned, the
    key can sign); the other protections are ``invoke setup``'s (``--dry-run`` audits them).
    Raises ConfigError (exit 2) when the bucket or key is missing, before anything is created.
    """
    if settings.local:
        done = run_setup(
            SetupSettings(
                evidence_bucket=settings.evidence_bucket,
                signing_key=settings.signing_key,
                manage_instance_profile=settings.instance_profile is None,
                account=account,
                run_checks_only=True,
            ),
            clients,
            rt.echo,
        )
        assert done.key_arn is not None  # not a dry run
        return done.bucket, done.key_arn, done.scan_profile
    bucket = settings.evidence_bucket or evidence_store.default_bucket(account, clients.region)
    key = settings.signing_key or evidence_store.DEFAULT_KEY_ALIAS
    check = SetupSettings(
        evidence_bucket=bucket, signing_key=key, dry_run=True, account=account, run_checks_only=True
    )
    planned = run_setup(check, clients, lambda _: None)
    absent = [c for c in planned.changes if c.startswith("create ")]
    if absent or planned.key_arn is None:
        raise ConfigError(
            f"evidence store not ready ({'; '.join(absent)}): run `invoke setup` "
            "(or set pipeline.evidence_bucket / pipeline.signing_key)"
        )
    for change in planned.changes:  # protections missing: worth fixing, not worth a refusal
        rt.echo(f"WARNING  evidence store: `invoke setup` would fix: {change}")
    return bucket, planned.key_arn, None


def _ensure_inspector(
    clients: AwsClients, account: str, settings: ValidateSettings, rt: Runtime
) -> None:
    status = inspector.ec2_scanning_status(clients, account)
    if status == "ENABLED":
        return
    if not settings.enable_inspector and status != "ENABLING":
        raise ScanError(
            f"Amazon Inspector EC2 scanning is {status} in {account}/{clients.region}: run "
            f"`aws inspector2 enable --resource-types EC2 --region {clients.region}` or pass "
            "--enable-inspector"
        )
    if status != "ENABLING":
        rt.echo("enabling Amazon Inspector EC2 scanning")
        inspector.enable_ec2_scanning(clients, account)
    final = poll(
        lambda: inspector.ec2_scanning_status(clients, account),
        lambda s: s == "ENABLED",
        settings.enable_timeout_s,
        lambda s: f"Inspector EC2 scanning {s}",
        settings,
        rt,
    )
    if final != "ENABLED":
        raise ScanError(f"Amazon Inspector EC2 scanning still {final} after waiting")


def _instance_profile(
    clients: AwsClients, settings: ValidateSettings, described: iam.InstanceProfile | None = None
) -> iam.InstanceProfile:
    """The test instances' profile, judged by what its role's policy documents grant.

    ``described``: what setup read of the project-managed profile moments ago (every policy
    document, as ``iam.describe_profile`` reads them); it is used instead of reading it again.
    """
    name = settings.instance_profile or MANAGED_PROFILE
    try:
        if described is not None and described.name == name and described.by_documents:
            profile = described
        else:
            profile = iam.describe_profile(clients, name)
    except ConfigError:
        if settings.instance_profile:
            raise
        raise ConfigError(
            f"--instance-profile: none given and the project-managed {MANAGED_PROFILE} does not "
            "exist: run `invoke setup --manage-instance-profile` or pass --instance-profile"
        ) from None
    if profile.missing:
        holder = f"role {profile.role}" if profile.role else "it has no role, so it"
        raise ConfigError(
            f"--instance-profile {profile.name}: {holder} does not grant "
            f"{', '.join(profile.missing)} (by any managed or inline policy); without the SSM "
            "core actions the instance never registers and without the inspector2 CIS session "
            "actions Inspector reports zero checks in silence (AWS grants both in "
            f"{iam.SSM_CORE} and {iam.CIS_POLICY}), so the pipeline refuses to scan with it"
        )
    return profile
