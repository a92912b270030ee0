"""What a validate run is asked to do (ValidateSettings, built from flags and ``invoke.yaml`` by
``validate_settings``) and the outside world it runs in (Runtime: time, sleeping, output)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.settings import (
    as_count,
    as_level,
    as_seconds,
    evidence_settings,
    network_settings,
    pick,
    writable_dir,
)

DEFAULT_INSTANCE_TYPES = {"x86_64": "m6i.large", "arm64": "m7g.large"}


@dataclass(frozen=True)
class ValidateSettings:
    amis: tuple[str, ...]
    level: int = 2
    out_dir: Path = Path("out")
    policy_dir: Path = Path("policies/exceptions")
    run_id: str | None = None  # None: a new ID; else this run's ID (build's, in the chain)
    resume: bool = False  # ``--run-id``: continue an earlier run that must exist
    instance_profile: str | None = None
    subnet_id: str | None = None
    security_group_id: str | None = None  # default: a per-run group with no ingress
    enable_inspector: bool = False
    keep: bool = False
    public_ip: bool | None = None  # None: the subnet's own choice (pipeline.aws.network)
    local: bool = False  # the endpoint is the project's local AWS: reports and tags say so
    instance_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INSTANCE_TYPES))
    ssm_timeout_s: float = 900
    scan_timeout_s: float = 2700
    enable_timeout_s: float = 300
    poll_max_s: float = 30
    ttl_minutes: int = 120
    evidence_bucket: str | None = None  # default: the bucket ``invoke setup`` creates
    signing_key: str | None = None  # KMS alias/ID/ARN; default: the alias setup creates
    # Poll SSM and the scan on real AWS's schedules (SSM_WAIT, SCAN_WAIT); None: on real AWS
    # only (the local AWS's scans take seconds unless a scenario scripts real latencies).
    real_aws_polling: bool | None = None
    # The caller made ``run_id`` just now (as the chain does): no earlier validate used it.
    run_id_is_new: bool = False


@dataclass(frozen=True)
class Runtime:
    """The outside world, injectable: time, sleeping and output."""

    echo: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def fresh_run(settings: ValidateSettings) -> bool:
    """Whether no earlier validate can have used this run's ID (made by this run, or new from the
    caller; never with --run-id): then nothing of the run is looked up before it is created."""
    return not settings.resume and (settings.run_id is None or settings.run_id_is_new)


def validate_settings(
    config: Mapping[str, Any], root: Path, *, ami: str, **flags: Any
) -> ValidateSettings:
    """Build ValidateSettings from flags and the ``pipeline`` section of ``invoke.yaml``."""
    amis = tuple(a.strip() for a in (ami or "").split(",") if a.strip())
    if not amis:
        raise ConfigError("--ami: give one or more AMI IDs, comma-separated")
    bad = [a for a in amis if not a.startswith("ami-")]
    if bad:
        raise ConfigError(f"--ami {bad[0]}: not an AMI ID (ami-...)")
    return replace(run_settings(config, root, **flags), amis=amis)


def run_settings(config: Mapping[str, Any], root: Path, **flags: Any) -> ValidateSettings:
    """Every validate setting but the AMIs, from flags and ``invoke.yaml`` (``pipeline`` and its
    ``validate`` section): what ``validate`` and ``build-and-validate`` both run with."""
    section: Mapping[str, Any] = config.get("validate", {}) or {}
    types = {**DEFAULT_INSTANCE_TYPES, **(section.get("instance_types", {}) or {})}
    out_dir = Path(str(pick(flags.get("out"), config, "out", "out")))
    evidence = evidence_settings(config, os.environ, evidence_bucket=flags.get("evidence_bucket"))
    network = network_settings(
        config,
        subnet_id=flags.get("subnet_id"),
        security_group_id=flags.get("security_group_id"),
        public_ip=flags.get("public_ip"),
    )
    return ValidateSettings(
        amis=(),
        level=as_level(pick(flags.get("level"), config, "level", 2)),
        out_dir=writable_dir(out_dir),
        policy_dir=root / str(config.get("policy_dir", "policies/exceptions")),
        run_id=flags.get("run_id") or None,
        resume=bool(flags.get("run_id")),
        instance_profile=pick(flags.get("instance_profile"), section, "instance_profile"),
        subnet_id=network.subnet_id,
        security_group_id=network.security_group_id,
        public_ip=network.public_ip,
        enable_inspector=bool(flags.get("enable_inspector")),
        keep=bool(flags.get("keep")),
        instance_types=types,
        ssm_timeout_s=as_seconds(
            pick(flags.get("ssm_timeout"), section, "ssm_timeout_s", 900), "--ssm-timeout"
        ),
        scan_timeout_s=as_seconds(
            pick(flags.get("scan_timeout"), section, "scan_timeout_s", 2700), "--scan-timeout"
        ),
        ttl_minutes=as_count(pick(None, section, "ttl_minutes", 120), "validate.ttl_minutes"),
        evidence_bucket=evidence.bucket,
        signing_key=evidence.signing_key,
    )
