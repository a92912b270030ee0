"""The commands that make and judge images: ``policy.validate``, ``gate``, ``validate``,
``build`` and ``build-and-validate``. Each takes the ``Invocation`` and the task's flags (same
names, same order) and returns its exit code; errors are raised (``exits.exit_codes``).

With ``--json`` the result is one JSON document on stdout and the progress goes to stderr."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pipeline import commands, report, settings
from pipeline import policy as policies
from pipeline.aws import make_clients
from pipeline.build import run_build
from pipeline.build.variables import packer_vars
from pipeline.cli.invocation import Invocation, echo_for, now, print_json
from pipeline.errors import ConfigError, ExitCode
from pipeline.gate import Verdict
from pipeline.orchestration.chain import local_endpoint, run_chain, split
from pipeline.orchestration.settings import ChainSettings
from pipeline.release.promote import release_config
from pipeline.validate import Runtime, run_settings, run_validate, validate_settings


def policy_validate(
    inv: Invocation, policy: list[str], today: str | None, json: bool = False
) -> ExitCode:
    paths = commands.policy_paths(policy, inv.policy_dir)
    day = commands.parse_today(today, now().date())
    count = commands.validate_policies(paths, day, echo_for(json))
    if json:
        loaded = policies.load_all(paths).values()
        print_json(
            {
                "today": day,
                "exceptions": count,
                "policies": [
                    {
                        "source": p.source,
                        "benchmark": p.catalogue.label,
                        "exceptions": len(p.exceptions),
                        "sha256": p.sha256,
                        "warnings": policies.expiry_problems(p, day)[1],
                    }
                    for p in loaded
                ],
            }
        )
    return ExitCode.OK


def _verdict(verdict: Verdict, json: bool) -> ExitCode:
    if json:
        print_json(report.to_json(verdict))
    return verdict.exit_code


def gate(
    inv: Invocation,
    results: str,
    policy: list[str],
    today: str | None,
    out: str | None,
    level: str | None,
    json: bool = False,
) -> ExitCode:
    verdict = commands.run_gate(
        results,
        policy,
        commands.parse_today(today, now().date()),
        str(settings.writable_dir(str(inv.setting("out", out)))),
        inv.policy_dir,
        echo_for(json),
        level=settings.as_level(level) if level is not None else None,
    )
    return _verdict(verdict, json)


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
    security_group_id: str | None = None,
    public_ip: str | None = None,
    json: bool = False,
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
        security_group_id=security_group_id,
        public_ip=public_ip,
    )
    verdict = run_validate(cfg, make_clients(), Runtime(echo=echo_for(json)))
    return _verdict(verdict, json)


def build(
    inv: Invocation,
    platform: str | None,
    arch: str | None,
    k8s_version: str | None,
    level: str | None,
    local: bool,
    out: str | None,
    var: list[str] | None,
    subnet_id: str | None = None,
    security_group_id: str | None = None,
    public_ip: str | None = None,
    json: bool = False,
) -> ExitCode:
    extra_vars = build_vars(inv, var)
    release = release_config(inv.config)  # the image keys (kms_keys) and who they serve
    network = settings.network_settings(
        inv.config,
        subnet_id=subnet_id,
        security_group_id=security_group_id,
        public_ip=public_ip,
    )
    out_line = echo_for(json)
    with local_endpoint(local, None, out_line):
        builds = run_build(
            split(platform, [str(inv.setting("platform"))]),
            split(arch, [str(inv.setting("arch"))]),
            k8s_version,
            settings.as_level(inv.setting("level", level)),
            local,
            settings.writable_dir(out or f"{inv.setting('out')}/build"),
            out_line,
            extra_vars=extra_vars,
            release_accounts=release.accounts,
            kms_keys=release.kms_keys,
            network=network,
        )
    if json:
        print_json({"amis": builds})
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
    var: list[str] | None,
    subnet_id: str | None = None,
    security_group_id: str | None = None,
    public_ip: str | None = None,
    json: bool = False,
) -> ExitCode:
    network = {
        "subnet_id": subnet_id,
        "security_group_id": security_group_id,
        "public_ip": public_ip,
    }
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
        # the settings `invoke validate` uses; its network is the build's too
        validate=run_settings(inv.config, inv.root, **network),
        skip_unchanged=skip_unchanged,
        build_vars=tuple(sorted(build_vars(inv, var).items())),
        release=release_config(inv.config),
        evidence=settings.evidence_settings(inv.config, os.environ, trusting=skip_unchanged),
    )
    return _verdict(run_chain(cfg, Runtime(echo=echo_for(json))), json)


def build_vars(inv: Invocation, given: list[str] | None) -> dict[str, str]:
    """Packer variables: ``pipeline.build.vars`` of ``invoke.yaml``, then each ``--var``."""
    section = inv.setting("build")
    if section is not None and not isinstance(section, Mapping):
        raise ConfigError(f"invoke.yaml: $.pipeline.build: expected a map, got {section!r}")
    return packer_vars(given, (section or {}).get("vars"))
