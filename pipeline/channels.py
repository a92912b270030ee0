"""Release channels (pure): the SSM parameter naming scheme, strict checks of every name
component, and the release settings (``pipeline.release`` in invoke.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline.catalog import Platform
from pipeline.errors import ConfigError

K8S_VERSION = re.compile(r"^1\.[0-9]{2}$")
CHANNEL = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
PREFIX = re.compile(r"^(/[a-z0-9][a-z0-9_.-]{0,63}){1,4}$")
ARCHS = ("x86_64", "arm64")
LEAF = "image-id"
DEFAULT_PREFIX = "/eks-cis-ami"
DEFAULT_CHANNELS = ("stable",)


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel and the lowest CIS level (1 or 2) an image needs to enter it."""

    name: str
    min_level: int


@dataclass(frozen=True, slots=True)
class ReleaseSettings:
    """``pipeline.release`` of ``invoke.yaml``, checked."""

    channels: Mapping[str, Channel]
    default_channel: str = "stable"
    parameter_prefix: str = DEFAULT_PREFIX
    max_age_days: int = 30
    regions: tuple[str, ...] = ()  # default target regions (empty: the home region only)
    kms_keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    accounts: tuple[str, ...] = ()  # default --accounts: who the images are shared with
    retention_days: int = 14
    retention_keep: int = 3
    drift_channel: str = "stable"

    def channel(self, name: str | None, flag: str = "--channel") -> Channel:
        """The configured channel ``name`` (default: ``default_channel``), else ConfigError."""
        chosen = name or self.default_channel
        check_channel(chosen, flag)
        if chosen not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none"
            raise ConfigError(
                f"{flag} {chosen}: not a configured channel (invoke.yaml pipeline.release."
                f"channels: {known})"
            )
        return self.channels[chosen]


def check_channel(name: str, flag: str = "--channel") -> str:
    if not CHANNEL.fullmatch(name):
        raise ConfigError(f"{flag} {name!r}: a channel is 1-32 of a-z, 0-9, '-' starting a-z")
    return name


def check_k8s(version: str, where: str = "Kubernetes version") -> str:
    if not K8S_VERSION.fullmatch(version):
        raise ConfigError(f"{where} {version!r}: expected 1.NN")
    return version


def check_ami(ami: str, flag: str = "--ami") -> str:
    if not AMI_ID.fullmatch(ami):
        raise ConfigError(f"{flag} {ami!r}: not an AMI ID (ami- and 8 or 17 hex digits)")
    return ami


def parameter_name(prefix: str, platform: Platform, arch: str, k8s: str, channel: str) -> str:
    """``<prefix>/<platform>/<arch>/<k8s-version>/<channel>/image-id``, e.g.
    ``/eks-cis-ami/al2023/x86_64/1.33/stable/image-id`` (data type ``aws:ec2:image``, one per
    target region); ConfigError for any component that fails its pattern."""
    if not PREFIX.fullmatch(prefix):
        raise ConfigError(f"parameter_prefix {prefix!r}: expected /name[/name…] (a-z, 0-9, _.-)")
    if arch not in ARCHS:
        raise ConfigError(f"architecture {arch!r}: expected one of {', '.join(ARCHS)}")
    check_k8s(k8s)
    check_channel(channel)
    return f"{prefix}/{platform.short}/{arch}/{k8s}/{channel}/{LEAF}"


def revocation_parameter(prefix: str, ami: str) -> str:
    """Where a revocation is recorded in the home region: ``<prefix>/revoked/<ami-id>``."""
    return f"{prefix}/revoked/{check_ami(ami)}"


def split_accounts(value: str | Iterable[str] | None, flag: str = "--accounts") -> tuple[str, ...]:
    """``"111122223333,444455556666"`` → the account IDs, each exactly 12 digits, deduplicated."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    accounts = tuple(dict.fromkeys(a.strip() for a in items if a.strip()))
    for account in accounts:
        if not ACCOUNT.fullmatch(account):
            raise ConfigError(f"{flag} {account}: not a 12-digit AWS account ID")
    return accounts


def split_regions(
    value: str | Iterable[str] | None, known: Iterable[str], flag: str = "--regions"
) -> tuple[str, ...]:
    """The region names, each one botocore knows for EC2 (``known``), deduplicated in order."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    regions = tuple(dict.fromkeys(r.strip() for r in items if r.strip()))
    known_set = set(known)
    for region in regions:
        if region not in known_set:
            raise ConfigError(f"{flag} {region}: not an AWS region botocore knows for EC2")
    return regions


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"invoke.yaml: {where}: expected a whole number")
    try:
        number = int(str(value).upper().removeprefix("LEVEL_"))
    except ValueError:
        raise ConfigError(f"invoke.yaml: {where}: {value!r} is not a whole number") from None
    if not low <= number <= high:
        raise ConfigError(f"invoke.yaml: {where}: {number} is outside {low}..{high}")
    return number


def level_of(value: Any) -> int:
    """The project's build level (``pipeline.level``): 1 or 2."""
    return _int(value, "$.pipeline.level", 1, 2)


def release_settings(
    config: Mapping[str, Any], *, build_level: int, known_regions: Iterable[str]
) -> ReleaseSettings:
    """Read ``pipeline.release`` (``config`` is that mapping; missing keys take defaults).

    A channel without ``min_level`` requires the project's build level. Regions and KMS key
    regions are checked against ``known_regions``. Raises ConfigError naming the path.
    """
    where = "$.pipeline.release"
    raw = config.get("channels") or {name: {} for name in DEFAULT_CHANNELS}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"invoke.yaml: {where}.channels: expected a mapping name -> settings")
    channels: dict[str, Channel] = {}
    for name, spec in raw.items():
        check_channel(str(name), f"invoke.yaml: {where}.channels:")
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"invoke.yaml: {where}.channels.{name}: expected a mapping")
        level = _int(spec.get("min_level", build_level), f"{where}.channels.{name}.min_level", 1, 2)
        channels[str(name)] = Channel(str(name), level)
    default = str(config.get("default_channel") or "stable")
    if default not in channels:
        raise ConfigError(f"invoke.yaml: {where}.default_channel: {default!r} is not a channel")
    prefix = str(config.get("parameter_prefix") or DEFAULT_PREFIX).rstrip("/")
    if not PREFIX.fullmatch(prefix):
        raise ConfigError(f"invoke.yaml: {where}.parameter_prefix: {prefix!r} is not a valid path")
    known = tuple(known_regions)
    kms = config.get("kms_keys") or {}
    if not isinstance(kms, Mapping):
        raise ConfigError(f"invoke.yaml: {where}.kms_keys: expected a mapping region -> key")
    split_regions(list(kms), known, f"invoke.yaml: {where}.kms_keys:")
    regions = config.get("regions") or ()
    accounts = config.get("accounts") or ()
    if not isinstance(accounts, list | tuple):
        raise ConfigError(f"invoke.yaml: {where}.accounts: expected a list of account IDs")
    retention = config.get("retention") or {}
    if not isinstance(retention, Mapping):
        raise ConfigError(f"invoke.yaml: {where}.retention: expected a mapping")
    drift = str(config.get("drift_channel") or default)
    check_channel(drift, f"invoke.yaml: {where}.drift_channel:")
    return ReleaseSettings(
        channels=MappingProxyType(channels),
        default_channel=default,
        parameter_prefix=prefix,
        max_age_days=_int(config.get("max_age_days", 30), f"{where}.max_age_days", 1, 3650),
        regions=split_regions(regions, known, f"invoke.yaml: {where}.regions:"),
        kms_keys=MappingProxyType({str(k): str(v) for k, v in kms.items()}),
        accounts=split_accounts([str(a) for a in accounts], f"invoke.yaml: {where}.accounts:"),
        retention_days=_int(
            retention.get("max_age_days", 14), f"{where}.retention.max_age_days", 0, 3650
        ),
        retention_keep=_int(retention.get("keep", 3), f"{where}.retention.keep", 0, 1000),
        drift_channel=drift,
    )


def channel_of(prefix: str, name: str) -> str | None:
    """The channel of a parameter named by the scheme under ``prefix``, else None (pure)."""
    parts = name.removeprefix(prefix + "/").split("/")
    if not name.startswith(prefix + "/") or len(parts) != 5 or parts[4] != LEAF:
        return None
    platform, arch, k8s, channel = parts[:4]
    known = {p.short for p in Platform}
    ok = (
        platform in known
        and arch in ARCHS
        and K8S_VERSION.fullmatch(k8s)
        and CHANNEL.fullmatch(channel)
    )
    return channel if ok else None


def parameter_path(prefix: str, name: str) -> tuple[str, str, str, str] | None:
    """(platform short name, architecture, Kubernetes version, channel) of a channel parameter
    named by the scheme, else None (pure)."""
    channel = channel_of(prefix, name)
    if channel is None:
        return None
    platform, arch, k8s = name.removeprefix(prefix + "/").split("/")[:3]
    return platform, arch, k8s, channel


@dataclass(frozen=True, slots=True)
class Published:
    """A channel parameter named by the scheme and the image it serves."""

    channel: str
    platform: str  # short name (al2023)
    arch: str
    k8s_version: str
    parameter: str
    image: str


def published(
    parameters: Mapping[str, str], prefix: str, channel: str | None = None
) -> list[Published]:
    """The channel parameters among ``parameters`` (name → value, as read under ``prefix``),
    only ``channel``'s when given, sorted by channel, platform, architecture and version."""
    found = []
    for name, value in parameters.items():
        path = parameter_path(prefix, name)
        if path is None or (channel is not None and path[3] != channel):
            continue
        platform, arch, k8s, chan = path
        found.append(Published(chan, platform, arch, k8s, name, value))
    return sorted(found, key=lambda c: (c.channel, c.platform, c.arch, c.k8s_version))
