"""Resolve settings: command-line flag, else ``invoke.yaml`` (``pipeline:``), else the default.

Also the one set of parsers for numeric flags (finite, range-checked) and for the few facts of
the environment that can be checked before any AWS call (endpoint URL, output folder).
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.catalog import Platform
from pipeline.errors import ConfigError

MAX_PORT = 65535
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3 bucket naming rules


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


def as_number(
    value: Any,
    flag: str,
    *,
    unit: str = "a number",
    minimum: float = 0.0,
    maximum: float = math.inf,
    allow_minimum: bool = False,
    integer: bool = False,
) -> float:
    """Parse a flag's or setting's number: finite, within range, and whole if ``integer``.

    ``abc``, ``nan``, ``inf``, ``1e999``, ``True`` and numbers outside
    ``(minimum, maximum]`` (``[minimum, maximum]`` with ``allow_minimum``) are a ConfigError
    naming the flag, never a traceback and never a silent default.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{flag} {value!r}: not {unit}")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{flag} {value!r}: not {unit}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{flag} {value!r}: not a finite number")
    if integer and not number.is_integer():
        raise ConfigError(f"{flag} {value!r}: not a whole number")
    low_ok = number >= minimum if allow_minimum else number > minimum
    if not low_ok or number > maximum:
        high = "" if math.isinf(maximum) else f" and at most {maximum:g}"
        if allow_minimum and high:
            rule = f"must be between {minimum:g} and {maximum:g}"
        elif minimum == 0 and not allow_minimum:
            rule = f"must be positive{high}"
        else:
            rule = f"must be {'at least' if allow_minimum else 'more than'} {minimum:g}{high}"
        raise ConfigError(f"{flag} {value!r}: {rule}")
    return number


def as_seconds(value: Any, flag: str) -> float:
    """A positive, finite number of seconds (at most a week)."""
    return as_number(value, flag, unit="a number of seconds", maximum=7 * 24 * 3600)


def as_count(value: Any, flag: str, *, maximum: int = 10**6, allow_zero: bool = False) -> int:
    """A positive whole number (zero too with ``allow_zero``)."""
    return int(as_number(value, flag, maximum=maximum, allow_minimum=allow_zero, integer=True))


def as_port(value: Any, flag: str = "--port") -> int:
    """A TCP port, 0 (a free one) to 65535."""
    return int(
        as_number(value, flag, unit="a port", maximum=MAX_PORT, allow_minimum=True, integer=True)
    )


def writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` if needed and prove a file can be written there (fail before any work)."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{flag} {out}: cannot write there: {reason}") from None
    except ValueError:  # a NUL byte (from invoke.yaml or -f: flags are checked in tasks.py)
        raise ConfigError(f"{flag} {str(out)!r}: not a usable path (NUL byte)") from None
    return out


@dataclass(frozen=True)
class EvidenceSettings:
    bucket: str | None
    signing_key: str | None


def evidence_settings(
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    evidence_bucket: str | None = None,
    signing_key: str | None = None,
    trusting: bool = False,
) -> EvidenceSettings:
    """``evidence_bucket`` and ``signing_key``: the flag, else ``pipeline.evidence_bucket`` /
    ``pipeline.signing_key`` in invoke.yaml, else ``CIS_EVIDENCE_BUCKET`` / ``CIS_SIGNING_KEY``,
    else None (the names ``invoke setup`` creates).

    ``trusting`` (verify, promote, revoke, the nightly's reuse decision): the key and bucket
    decide what verifies, and an earlier CI step can set environment variables, so a value that
    would come from the environment is refused (ConfigError, exit 2, one line per variable)."""
    found: dict[str, str | None] = {}
    refused: list[str] = []
    for key, flag, env in (
        ("evidence_bucket", evidence_bucket, "CIS_EVIDENCE_BUCKET"),
        ("signing_key", signing_key, "CIS_SIGNING_KEY"),
    ):
        from_env = environ.get(env) or None
        value = pick(flag, config, key, from_env)
        if trusting and from_env is not None and pick(flag, config, key) is None:
            refused.append(
                f"{env}: sets {key}, which decides what is trusted: set pipeline.{key} in "
                "invoke.yaml or give the flag, not the environment"
            )
        found[key] = str(value).strip() if value is not None else None
    if refused:
        raise ConfigError(refused[0], problems=refused)
    bucket = found["evidence_bucket"]
    if bucket is not None and not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"--evidence-bucket {bucket!r}: not a valid S3 bucket name")
    return EvidenceSettings(bucket, found["signing_key"])


# flag -> its invoke.yaml setting: the network of every command that launches (build, validate)
NETWORK_FLAGS = {
    "--subnet-id": "pipeline.network.subnet_id",
    "--security-group-id": "pipeline.network.security_group_id",
    "--public-ip": "pipeline.network.public_ip",
}
_NETWORK_KEYS = ("subnet_id", "security_group_id", "public_ip")


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """Where instances are launched, as asked (None: ``pipeline.aws.network.prepare`` chooses)."""

    subnet_id: str | None = None
    security_group_id: str | None = None  # None: the run's own group (validate) or Packer's
    public_ip: bool | None = None  # None: what the subnet does on launch (MapPublicIpOnLaunch)


def as_bool(value: Any, flag: str) -> bool:
    """true/false (yes/no, 1/0) from a flag's text or a YAML boolean; else ConfigError."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1"}:
        return True
    if text in {"false", "no", "0"}:
        return False
    raise ConfigError(f"{flag} {value!r}: choose true or false")


def network_settings(
    config: Mapping[str, Any],
    *,
    subnet_id: str | None = None,
    security_group_id: str | None = None,
    public_ip: Any = None,
) -> NetworkSettings:
    """The flags, else ``pipeline.network`` of invoke.yaml (one section: build and validate read
    it alike), else ``pipeline.validate``'s keys of the same names (where they were before)."""
    section = config.get("network") or {}
    legacy = config.get("validate") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"invoke.yaml: $.pipeline.network: expected a map, got {section!r}")
    both = [k for k in _NETWORK_KEYS if section.get(k) is not None and k in legacy]
    if both:
        raise ConfigError(
            f"invoke.yaml: $.pipeline.validate.{both[0]}: also set in $.pipeline.network; "
            "keep it in pipeline.network only"
        )
    merged = {**{k: legacy.get(k) for k in _NETWORK_KEYS}, **section}
    flags = dict(zip(_NETWORK_KEYS, NETWORK_FLAGS, strict=True))
    raw_ip = pick(public_ip, merged, "public_ip")
    raw_ip = None if str(raw_ip).strip().lower() in {"none", "auto"} else raw_ip
    given = {"subnet_id": subnet_id, "security_group_id": security_group_id}
    values = {k: pick(v, merged, k) for k, v in given.items()}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{flags[key]} {value!r}: expected an ID (text)")
    return NetworkSettings(
        subnet_id=values["subnet_id"] or None,
        security_group_id=values["security_group_id"] or None,
        public_ip=None if raw_ip is None else as_bool(raw_ip, flags["public_ip"]),
    )
