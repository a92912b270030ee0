"""The commands that act on the account's evidence and released images: ``setup``,
``verify``, ``promote``, ``revoke``, ``reap`` and ``catalogue.refresh``. Each takes the
``Invocation`` and the task's flags (same names, same order), chooses the AWS clients and
returns its exit code; errors are raised (``exits.exit_codes``)."""

from __future__ import annotations

import json as json_
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pipeline import channels, settings
from pipeline.aws import AwsClients, is_aws_endpoint, make_clients
from pipeline.aws.release import known_regions
from pipeline.catalog_refresh import run_refresh
from pipeline.cli.invocation import Invocation, echo, echo_for, jsonable, now, print_json
from pipeline.errors import ConfigError, ExitCode
from pipeline.evidence import verify as record
from pipeline.evidence.record import Verification
from pipeline.key_setup import ImageKeys, record_in_yaml, run_image_keys
from pipeline.reap import reap_regions
from pipeline.release import promote as release
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.release.status import channel_status, status_lines
from pipeline.setup import run_setup, setup_settings

Echo = Callable[[str], None]


def promote(
    inv: Invocation,
    ami: str,
    channel: str | None,
    regions: str | None,
    accounts: str | None,
    dry_run: bool,
    public_key: str | None,
    json: bool = False,
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
    done = release.run_promote(
        request, config, make_clients(), now(), echo_for(json), policy_dir=policies
    )
    if json:
        print_json(done)
    return ExitCode.OK


def setup(
    inv: Invocation,
    dry_run: bool,
    evidence_bucket: str | None,
    manage_instance_profile: bool,
    object_lock: bool,
    public_key_out: str | None,
    image_keys: bool = False,
    json: bool = False,
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
    result = run_setup(request, clients, echo_for(json))
    keys = setup_image_keys(inv, clients, dry_run, echo_for(json)) if image_keys else None
    if json:
        print_json({**jsonable(result), "image_keys": jsonable(keys)} if keys else result)
    return ExitCode.OK


def setup_image_keys(inv: Invocation, clients: AwsClients, dry_run: bool, say: Echo) -> ImageKeys:
    """``setup --image-keys``: make or check the image key of each release region for the
    release accounts, then record the pipeline's keys in invoke.yaml (pipeline.release.kms_keys),
    which build and promote read."""
    config = release.release_config(inv.config)
    regions = config.regions or (clients.region,)
    made = run_image_keys(
        clients, regions, config.accounts, config.kms_keys, dry_run=dry_run, echo=say
    )
    new = made.unrecorded(config.kms_keys)
    path = inv.root / "invoke.yaml"
    lines = [f"pipeline.release.kms_keys.{r}: {k}" for r, k in sorted(new.items())]
    if dry_run and (new or made.changes):
        say(f"setup: plan: record the keys in {path} (pipeline.release.kms_keys)")
        return made
    if dry_run or not new:
        return made
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        text = ""
    changed = record_in_yaml(text, new) if text else None
    if changed is None:
        say(
            f"setup: {path} has no pipeline.release.kms_keys line to update: set {'; '.join(lines)}"
        )
        return made
    path.write_text(changed, encoding="utf-8")
    say(f"setup: done: recorded in {path}: {'; '.join(lines)}")
    return made


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
    if not os.environ.get("AWS_ENDPOINT_URL") and made_by_a_stopped_local_aws(inv, ami):
        raise ConfigError(
            f"--ami {ami}: validated on the local AWS that `build-and-validate --local` started "
            "in its own process, which stopped with it (its images and records went too), and "
            "AWS_ENDPOINT_URL names no running one: start `.venv/bin/invoke local-aws` in another "
            "shell, paste its export lines here, run `build-and-validate --local` again and "
            "verify the AMI it prints"
        )
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


def made_by_a_stopped_local_aws(inv: Invocation, ami: str) -> bool:
    """Whether the last run's ``verdict.json`` (``pipeline.out``) names ``ami`` as validated on
    the local AWS: then, with no ``AWS_ENDPOINT_URL``, that local AWS is not running."""
    path = Path(str(inv.setting("out") or "out")) / "verdict.json"
    try:
        context = json_.loads(path.read_text(encoding="utf-8")).get("context") or {}
    except (OSError, ValueError, AttributeError):
        return False
    if not isinstance(context, dict) or context.get("local") is not True:
        return False
    amis = context.get("amis") or []
    return any(isinstance(a, dict) and a.get("ami") == ami for a in amis)


def revoke(
    inv: Invocation,
    ami: str,
    reason: str,
    channel: str | None,
    dry_run: bool,
    allow_stale_rollback: bool,
    json: bool = False,
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
    done = run_revoke(request, config, make_clients(), now(), echo_for(json), policy_dir=policies)
    if json:
        print_json(done)
    return ExitCode.OK


def reap(
    inv: Invocation, stale_minutes: str, dry_run: bool, images: bool, json: bool = False
) -> ExitCode:
    minutes = settings.as_number(stale_minutes, "--stale-minutes", maximum=7 * 24 * 60)
    config = release.release_config(inv.config)
    reports = reap_regions(
        make_clients(),
        config.regions,  # pipeline.release.regions: every region a run or a copy can be in
        now(),
        echo_for(json),
        stale_after=timedelta(minutes=minutes),
        dry_run=dry_run,
        retention=config if images else None,
    )
    if json:
        print_json(reports)
    failed = any(report.failures for report in reports.values())
    return ExitCode.UNEXPECTED if failed else ExitCode.OK


def catalogue_refresh(
    inv: Invocation, scan_arn: str, platform: str | None, write: bool, json: bool = False
) -> ExitCode:
    diff = run_refresh(
        make_clients(),
        scan_arn,
        platform=platform,
        write=write,
        policy_dir=inv.policy_dir,
        today=now().date(),
        echo=echo_for(json),
    )
    if json:
        print_json(diff)
    return ExitCode.OK


def show_channels(inv: Invocation, channel: str | None, json: bool = False) -> ExitCode:
    """``invoke channels``: each channel's image per region, verified now, with its history."""
    evidence = settings.evidence_settings(inv.config, os.environ)

    def verifier(clients: AwsClients, ami: str) -> Verification:
        return record.verify_ami(
            clients, ami, evidence_bucket=evidence.bucket, signing_key=evidence.signing_key
        )

    config = release.release_config(inv.config)
    found = channel_status(
        config,
        make_clients(),
        now=now(),
        channel=channel,
        verifier=verifier,
        policy_dir=inv.policy_dir,
    )
    if json:
        print_json({"parameter_prefix": config.parameter_prefix, "channels": found})
    else:
        for line in status_lines(found):
            echo(line)
    return ExitCode.OK
