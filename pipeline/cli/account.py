"""The commands that act on the account's evidence and released images: ``setup``,
``verify``, ``promote``, ``revoke``, ``reap`` and ``catalogue.refresh``. Each takes the
``Invocation`` and the task's flags (same names, same order), chooses the AWS clients and
returns its exit code; errors are raised (``exits.exit_codes``)."""

from __future__ import annotations

import os
from datetime import timedelta

from pipeline import channels, settings
from pipeline.aws import is_aws_endpoint, make_clients
from pipeline.aws.release import known_regions
from pipeline.catalog_refresh import run_refresh
from pipeline.cli.invocation import Invocation, echo, now
from pipeline.errors import ConfigError, ExitCode
from pipeline.evidence import verify as record
from pipeline.reap import run_reap
from pipeline.release import promote as release
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.setup import run_setup, setup_settings


def promote(
    inv: Invocation,
    ami: str,
    channel: str | None,
    regions: str | None,
    accounts: str | None,
    dry_run: bool,
    public_key: str | None,
) -> ExitCode:
    evidence = settings.evidence_settings(inv.config, os.environ, trusting=True)
    request = release.PromoteRequest(
        ami=ami,
        channel=channel,
        regions=channels.split_regions(regions, known_regions()),
        accounts=channels.split_accounts(accounts),
        dry_run=dry_run,
        evidence_bucket=evidence.bucket,
        public_key_pem=release.read_public_key(public_key),
        signing_key=evidence.signing_key,
        pinned_key=inv.config.get("signing_key_sha256"),
    )
    config = release.release_config(inv.config)
    policies = inv.policy_dir
    release.run_promote(request, config, make_clients(), now(), echo, policy_dir=policies)
    return ExitCode.OK


def setup(
    inv: Invocation,
    dry_run: bool,
    evidence_bucket: str | None,
    manage_instance_profile: bool,
    object_lock: bool,
    public_key_out: str | None,
) -> ExitCode:
    clients = make_clients()
    request = setup_settings(
        inv.config,
        os.environ,
        local=not is_aws_endpoint(clients.endpoint_url),
        evidence_bucket=evidence_bucket,
        manage_instance_profile=manage_instance_profile or None,  # None: config, local
        object_lock=object_lock,
        dry_run=dry_run,
        public_key_out=public_key_out,
    )
    run_setup(request, clients, echo)
    return ExitCode.OK


def verify(
    inv: Invocation,
    ami: str | None,
    public_key: str | None,
    json: bool,
    regate: bool,
    level: str | None,
    evidence_bucket: str | None,
    export_public_key: str | None,
) -> ExitCode:
    config = inv.config
    ev = settings.evidence_settings(
        config, os.environ, evidence_bucket=evidence_bucket, trusting=True
    )
    if export_public_key:
        record.export_public_key_file(make_clients(), export_public_key, ev.signing_key, echo)
        return ExitCode.OK
    if not ami:
        raise ConfigError("--ami: give the AMI ID to verify")
    record.run_verify(
        make_clients(),
        ami,
        public_key=public_key,
        as_json=json,
        rerun_gate=regate,
        evidence_bucket=ev.bucket,
        signing_key=ev.signing_key,
        expected_level=settings.as_level(inv.setting("level", level) or 2),
        policy_dir=inv.policy_dir,
        echo=echo,
        parameter_prefix=release.release_config(config).parameter_prefix,
        pinned_key=config.get("signing_key_sha256"),
    )
    return ExitCode.OK


def revoke(
    inv: Invocation,
    ami: str,
    reason: str,
    channel: str | None,
    dry_run: bool,
    allow_stale_rollback: bool,
) -> ExitCode:
    config = release.release_config(inv.config)
    evidence = settings.evidence_settings(inv.config, os.environ, trusting=True)
    request = RevokeRequest(
        ami=ami,
        reason=reason,
        channel=channel,
        dry_run=dry_run,
        allow_stale_rollback=allow_stale_rollback,
        evidence_bucket=evidence.bucket,
        signing_key=evidence.signing_key,
    )
    policies = inv.policy_dir
    run_revoke(request, config, make_clients(), now(), echo, policy_dir=policies)
    return ExitCode.OK


def reap(inv: Invocation, stale_minutes: str, dry_run: bool, images: bool) -> ExitCode:
    minutes = settings.as_number(stale_minutes, "--stale-minutes", maximum=7 * 24 * 60)
    report = run_reap(
        make_clients(),
        now(),
        echo,
        stale_after=timedelta(minutes=minutes),
        dry_run=dry_run,
        retention=release.release_config(inv.config) if images else None,
    )
    return ExitCode.UNEXPECTED if report.failures else ExitCode.OK


def catalogue_refresh(
    inv: Invocation, scan_arn: str, platform: str | None, write: bool
) -> ExitCode:
    run_refresh(
        make_clients(),
        scan_arn,
        platform=platform,
        write=write,
        policy_dir=inv.policy_dir,
        today=now().date(),
        echo=echo,
    )
    return ExitCode.OK
