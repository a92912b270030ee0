"""Scenarios: the file (YAML or JSON) that makes the local AWS rehearse a failure.

Owns the scenario format, its strict validation (structure with JSON Schema, then semantics:
check IDs that exist in a CIS catalogue, fault operations that exist in botocore's models) and
the fault plan, which counts down how often each fault still fires. Errors name the file and
the JSON path: ``bad.yaml: $.scan.final_status: 'DONE' is not one of [...]``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import yaml

from pipeline import catalog
from pipeline.errors import ConfigError
from pipeline.localaws import model

NEVER = "never"
# A fault without ``service`` must name an operation of one of these (others: give ``service``).
FAULT_SERVICES = ("inspector2", "ssm", "ec2", "iam", "sts", "kms")
CHECK_STATUSES = model.enum("inspector2", "CisFindingStatus")
FINAL_SCAN_STATUSES = tuple(
    s for s in model.enum("inspector2", "CisScanStatus") if s != "IN_PROGRESS"
)

_SECONDS = {"type": "number", "minimum": 0}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "checks": {
            "type": "object",
            "propertyNames": {"pattern": r"^\d+(\.\d+)*$"},
            "additionalProperties": {"enum": list(CHECK_STATUSES)},
        },
        "scan": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "final_status": {"enum": list(FINAL_SCAN_STATUSES)},
                "duration_s": _SECONDS,
                "zero_checks": {"type": "boolean"},
            },
        },
        "ssm": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"online_after_s": {"anyOf": [_SECONDS, {"const": NEVER}]}},
        },
        "inspector": {  # an extension: how Inspector's Enable behaves
            "type": "object",
            "additionalProperties": False,
            "properties": {"enable_after_s": _SECONDS, "initially_enabled": {"type": "boolean"}},
        },
        "faults": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["operation", "error"],
                "properties": {
                    "operation": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"},
                    "error": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9.]*$"},
                    "times": {"type": "integer", "minimum": 1},
                    "service": {"type": "string", "minLength": 1},
                    "message": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


@dataclass(frozen=True, slots=True)
class Fault:
    """Answer the next ``times`` calls of ``operation`` with error ``error``."""

    operation: str
    error: str
    times: int = 1
    service: str | None = None  # signing name; None = any service
    message: str | None = None

    def matches(self, service: str | None, operation: str | None) -> bool:
        return operation == self.operation and self.service in (None, service)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a scenario can change; the defaults are realistic but fast."""

    checks: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    final_status: str = "COMPLETED"
    scan_duration_s: float = 3.0
    zero_checks: bool = False
    ssm_online_after_s: float | None = 1.0  # None: never registers
    enable_after_s: float = 1.0
    inspector_initially_enabled: bool = False
    faults: tuple[Fault, ...] = ()
    source: str = "<default scenario>"


DEFAULT = Scenario()


def parse(raw: Any, *, source: str) -> Scenario:
    """Validate parsed scenario data; raise ConfigError listing every problem."""
    if raw is None:
        raw = {}
    errors = sorted(_validator().iter_errors(raw), key=lambda e: (e.json_path, e.message))
    problems = [_schema_problem(source, err) for err in errors]
    if not problems:
        problems = _semantic_problems(raw, source)
    if problems:
        raise ConfigError("\n".join(problems), problems=problems)
    return _build(raw, source)


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file (YAML, of which JSON is a subset)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read scenario: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: $: not valid YAML/JSON: {exc}") from exc
    return parse(raw, source=str(file))


def coerce(value: Scenario | Mapping[str, Any] | str | Path | None) -> Scenario:
    """A Scenario from a Scenario, a mapping, a file path, or None (the defaults)."""
    if value is None:
        return DEFAULT
    if isinstance(value, Scenario):
        return value
    if isinstance(value, Mapping):
        return parse(dict(value), source="<scenario>")
    return load(value)


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA)


def _schema_problem(source: str, err: jsonschema.ValidationError) -> str:
    return f"{source}: {err.json_path}: {err.message}"


def _semantic_problems(raw: Mapping[str, Any], source: str) -> list[str]:
    problems: list[str] = []
    known = _known_check_ids()
    for check_id in raw.get("checks") or {}:
        if check_id not in known:
            labels = ", ".join(catalog.load(p, v).label for p, v in catalog.supported())
            problems.append(
                f"{source}: $.checks['{check_id}']: not a recommendation of any CIS catalogue"
                f" ({labels})"
            )
    for index, fault in enumerate(raw.get("faults") or []):
        problem = _fault_problem(fault)
        if problem:
            problems.append(f"{source}: $.faults[{index}]: {problem}")
    return problems


def _known_check_ids() -> frozenset[str]:
    ids: set[str] = set()
    for platform, version in catalog.supported():
        ids.update(catalog.load(platform, version).recommendations)
    return frozenset(ids)


def _fault_problem(fault: Mapping[str, Any]) -> str | None:
    operation = fault["operation"]
    service = fault.get("service")
    if service is not None:
        if model.service(service) is None:
            return f"service {service!r} is not a botocore service"
        if not model.has_operation(service, operation):
            return f"{service} has no operation {operation!r}"
        return None
    if any(model.has_operation(name, operation) for name in FAULT_SERVICES):
        return None
    return f"no operation {operation!r} in {', '.join(FAULT_SERVICES)} (set 'service' for others)"


def _build(raw: Mapping[str, Any], source: str) -> Scenario:
    scan = raw.get("scan") or {}
    ssm = raw.get("ssm") or {}
    inspector = raw.get("inspector") or {}
    online: Any = ssm.get("online_after_s", DEFAULT.ssm_online_after_s)
    return Scenario(
        checks=MappingProxyType(dict(raw.get("checks") or {})),
        final_status=scan.get("final_status", DEFAULT.final_status),
        scan_duration_s=float(scan.get("duration_s", DEFAULT.scan_duration_s)),
        zero_checks=bool(scan.get("zero_checks", DEFAULT.zero_checks)),
        ssm_online_after_s=None if online in (NEVER, None) else float(online),
        enable_after_s=float(inspector.get("enable_after_s", DEFAULT.enable_after_s)),
        inspector_initially_enabled=bool(
            inspector.get("initially_enabled", DEFAULT.inspector_initially_enabled)
        ),
        faults=tuple(Fault(**fault) for fault in raw.get("faults") or []),
        source=source,
    )


@dataclass(slots=True)
class _Pending:
    fault: Fault
    left: int


class FaultPlan:
    """The faults still to fire, consumed in file order; thread-safe."""

    def __init__(self, faults: tuple[Fault, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._pending = [_Pending(fault, fault.times) for fault in faults]

    def take(self, service: str | None, operation: str | None) -> Fault | None:
        """The fault to answer this call with (and count it), or None."""
        with self._lock:
            for entry in self._pending:
                if entry.left > 0 and entry.fault.matches(service, operation):
                    entry.left -= 1
                    return entry.fault
        return None

    def pending(self) -> int:
        """How many faulty answers are still to come."""
        with self._lock:
            return sum(entry.left for entry in self._pending)
