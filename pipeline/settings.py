"""Resolve settings: command-line flag, else ``invoke.yaml`` (``pipeline:``), else the default."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.validate import DEFAULT_INSTANCE_TYPES, ValidateSettings


def pick(flag: Any, config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The flag if given, else ``config[key]``, else ``default``."""
    if flag not in (None, "", ()):
        return flag
    value = config.get(key)
    return default if value in (None, "") else value


def as_level(value: Any, flag: str = "--level") -> int:
    text = str(value).upper().removeprefix("LEVEL_")
    if text not in {"1", "2"}:
        raise ConfigError(f"{flag} {value}: choose 1 or 2")
    return int(text)


def as_platform(value: Any, flag: str = "--platform") -> Platform:
    try:
        return Platform.parse(str(value))
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def as_seconds(value: Any, flag: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{flag} {value!r}: not a number of seconds") from exc
    if seconds <= 0:
        raise ConfigError(f"{flag} {value!r}: must be positive")
    return seconds


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
    section: Mapping[str, Any] = config.get("validate", {}) or {}
    types = {**DEFAULT_INSTANCE_TYPES, **(section.get("instance_types", {}) or {})}
    return ValidateSettings(
        amis=amis,
        level=as_level(pick(flags.get("level"), config, "level", 2)),
        out_dir=Path(str(pick(flags.get("out"), config, "out", "out"))),
        policy_dir=root / str(config.get("policy_dir", "policies/exceptions")),
        run_id=flags.get("run_id") or None,
        instance_profile=pick(flags.get("instance_profile"), section, "instance_profile"),
        subnet_id=pick(flags.get("subnet_id"), section, "subnet_id"),
        security_group_id=pick(None, section, "security_group_id"),
        public_ip=bool(pick(None, section, "public_ip", False)),
        enable_inspector=bool(flags.get("enable_inspector")),
        keep=bool(flags.get("keep")),
        instance_types=types,
        ssm_timeout_s=as_seconds(
            pick(flags.get("ssm_timeout"), section, "ssm_timeout_s", 900), "--ssm-timeout"
        ),
        scan_timeout_s=as_seconds(
            pick(flags.get("scan_timeout"), section, "scan_timeout_s", 2700), "--scan-timeout"
        ),
        ttl_minutes=int(pick(None, section, "ttl_minutes", 120)),
    )
