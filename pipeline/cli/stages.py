"""The commands that make and judge images: ``policy.validate``, ``gate``, ``validate``,
``build`` and ``build-and-validate``. Each takes the ``Invocation`` and the task's flags (same
names, same order) and returns its exit code; errors are raised (``exits.exit_codes``)."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline import commands, settings
from pipeline.aws import make_clients
from pipeline.build import run_build
from pipeline.cli.invocation import Invocation, echo, now
from pipeline.errors import ExitCode
from pipeline.orchestration.chain import local_endpoint, run_chain, split
from pipeline.orchestration.settings import ChainSettings
from pipeline.release.promote import release_config
from pipeline.validate import Runtime, run_validate, validate_settings


def policy_validate(inv: Invocation, policy: list[str], today: str | None) -> ExitCode:
    paths = commands.policy_paths(policy, inv.policy_dir)
    day = commands.parse_today(today, now().date())
    commands.validate_policies(paths, day, echo)
    return ExitCode.OK


def gate(
    inv: Invocation,
    results: str,
    policy: list[str],
    today: str | None,
    out: str | None,
    level: str | None,
) -> ExitCode:
    verdict = commands.run_gate(
        results,
        policy,
        commands.parse_today(today, now().date()),
        str(settings.writable_dir(str(inv.setting("out", out)))),
        inv.policy_dir,
        echo,
        level=settings.as_level(level) if level is not None else None,
    )
    return verdict.exit_code


def validate(
    inv: Invocation,
    ami: str,
    level: str | None,
    out: str | None,
    run_id: str | None,
    instance_profile: str | None,
    subnet_id: str | None,
    enable_inspector: bool,
    keep: bool,
    ssm_timeout: str | None,
    scan_timeout: str | None,
    evidence_bucket: str | None,
) -> ExitCode:
    cfg = validate_settings(
        inv.config,
        inv.root,
        ami=ami,
        level=level,
        out=out,
        run_id=run_id,
        instance_profile=instance_profile,
        subnet_id=subnet_id,
        enable_inspector=enable_inspector,
        keep=keep,
        ssm_timeout=ssm_timeout,
        scan_timeout=scan_timeout,
        evidence_bucket=evidence_bucket,
    )
    return run_validate(cfg, make_clients(), Runtime(echo=echo)).exit_code


def build(
    inv: Invocation,
    platform: str | None,
    arch: str | None,
    k8s_version: str | None,
    level: str | None,
    local: bool,
    out: str | None,
) -> ExitCode:
    with local_endpoint(local, None, echo):
        run_build(
            split(platform, [str(inv.setting("platform"))]),
            split(arch, [str(inv.setting("arch"))]),
            k8s_version,
            settings.as_level(inv.setting("level", level)),
            local,
            settings.writable_dir(out or f"{inv.setting('out')}/build"),
            echo,
        )
    return ExitCode.OK


def build_and_validate(
    inv: Invocation,
    platform: str | None,
    arch: str | None,
    k8s_version: str | None,
    level: str | None,
    out: str | None,
    local: bool,
    scenario: str | None,
    enable_inspector: bool,
    skip_unchanged: bool,
) -> ExitCode:
    cfg = ChainSettings(
        platforms=split(platform, [str(inv.setting("platform"))]),
        archs=split(arch, [str(inv.setting("arch"))]),
        k8s_version=k8s_version,
        level=settings.as_level(inv.setting("level", level)),
        out_dir=settings.writable_dir(str(inv.setting("out", out))),
        policy_dir=inv.policy_dir,
        local=local,
        scenario=Path(scenario) if scenario else None,
        enable_inspector=enable_inspector,
        instance_types=dict(inv.setting("validate") or {}).get("instance_types"),
        skip_unchanged=skip_unchanged,
        release=release_config(inv.config),
        evidence=settings.evidence_settings(inv.config, os.environ, trusting=skip_unchanged),
    )
    return run_chain(cfg, Runtime(echo=echo)).exit_code
