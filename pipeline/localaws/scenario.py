"""Scenarios: the file (YAML or JSON) that makes the local AWS rehearse a failure.

Owns the scenario format, its strict validation (structure with JSON Schema, then semantics:
check IDs that exist in a CIS catalogue, fault operations that exist in botocore's models) and
the fault plan, which counts down how often each fault still fires. Errors name the file and
the JSON path: ``bad.yaml: $.scan.final_status: 'DONE' is not one of [...]``. The ``node:`` and
``vulnerabilities:`` sections (SSM Run Command, Inspector's package scan) are in
``scenario_sections``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

from pipeline import catalog, safeio, safeyaml
from pipeline.errors import ConfigError
from pipeline.localaws import model, scenario_sections
from pipeline.localaws.scenario_sections import NodeKnobs, VulnKnobs

NEVER = "never"
# A fault without ``service`` must name an operation of one of these (others: give ``service``).
FAULT_SERVICES = ("inspector2", "ssm", "ec2", "iam", "sts", "kms")
CHECK_STATUSES = model.enum("inspector2", "CisFindingStatus")
FINAL_SCAN_STATUSES = tuple(
    s for s in model.enum("inspector2", "CisScanStatus") if s != "IN_PROGRESS"
)

_SECONDS = {"type": "number", "minimum": 0}
_CHECK_ID = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)*$"}
_CHECK_IDS = {"type": "array", "items": _CHECK_ID, "uniqueItems": True}
_DELTA = {"type": "integer", "minimum": -100_000, "maximum": 100_000}
_CHECK_STATUS_MAP = {
    "type": "object",
    "propertyNames": _CHECK_ID,
    "additionalProperties": {"enum": list(CHECK_STATUSES)},
}
LEVELS = ("LEVEL_1", "LEVEL_2")
# Bounds of a scenario file (issue 9: no input may exhaust the machine).
MAX_BYTES = 256 * 1024
MAX_DEPTH = 16
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "checks": {
            "type": "object",
            "propertyNames": {"pattern": r"^[0-9]+(\.[0-9]+)*$"},
            "additionalProperties": {"enum": list(CHECK_STATUSES)},
        },
        "scan": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "final_status": {"enum": list(FINAL_SCAN_STATUSES)},
                "duration_s": _SECONDS,
                "report_after_s": _SECONDS,
                "zero_checks": {"type": "boolean"},
                "unreported_target": {"enum": ["TIMED_OUT", "SCAN_IN_PROGRESS"]},
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
        "results": {  # make the results API lie: the gate must notice every one of these
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "drop_status": {
                    "type": "array",
                    "items": {"enum": list(CHECK_STATUSES)},
                    "uniqueItems": True,
                },
                "max_pages": {"type": "integer", "minimum": 1},
                "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
                "duplicate": _CHECK_IDS,
                "conflicting_duplicate": _CHECK_STATUS_MAP,
                "status_counts_delta": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"passed": _DELTA, "failed": _DELTA, "skipped": _DELTA},
                },
                "scan_counts_delta": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"total_checks": _DELTA, "failed_checks": _DELTA},
                },
                "scan_level": {"enum": list(LEVELS)},
                "title_overrides": {
                    "type": "object",
                    "propertyNames": _CHECK_ID,
                    "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 1024},
                },
                "benchmark": {"enum": [p.value for p in catalog.Platform]},
                "skip_automated": {"anyOf": [{"const": "all"}, _CHECK_IDS]},
                "all_skipped": {"type": "boolean"},
                # Inspector's views disagree with one another (the gate's cross-check).
                "swap_status": {
                    "type": "object",
                    "propertyNames": _CHECK_ID,
                    "additionalProperties": _CHECK_ID,
                },
                "aggregated_status": _CHECK_STATUS_MAP,
                "report_status": _CHECK_STATUS_MAP,
            },
        },
        "iam": {  # EC2's tag authorization under a job policy (pipeline/localaws/iam_gate.py)
            "type": "object",
            "additionalProperties": False,
            "properties": {"ec2_policy": {"type": "string", "minLength": 1}},
        },
        "pipeline": {  # hints for the pipeline run that rehearses this scenario (chain --local)
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ssm_timeout_s": {"type": "number", "minimum": 1, "maximum": 3600},
                "scan_timeout_s": {"type": "number", "minimum": 1, "maximum": 7200},
            },
        },
        # issue 17: SSM Run Command / the node probe, Inspector's package scan (scenario_sections)
        **scenario_sections.SCHEMA,
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
class Results:
    """How the results API lies (README "Scenarios", ``results:``); the defaults tell the truth.

    What Inspector *evaluated* (changes rows and every count alike): ``scan_level``,
    ``benchmark``, ``title_overrides``, ``skip_automated``, ``all_skipped``. What one API
    *reports* against its own counts: ``drop_status``, ``max_pages`` (``page_size``), ``duplicate``,
    ``conflicting_duplicate`` (GetCisScanResultDetails), ``status_counts_delta``
    (ListCisScanResultsAggregatedByTargetResource), ``scan_counts_delta`` (ListCisScans). What
    one view reports against the others, every count kept: ``swap_status``
    (GetCisScanResultDetails), ``aggregated_status`` (ListCisScanResultsAggregatedByChecks),
    ``report_status`` (the CIS report's CSV).
    """

    drop_status: frozenset[str] = frozenset()
    max_pages: int | None = None
    page_size: int | None = None  # GetCisScanResultDetails' most rows a page, whatever is asked
    duplicate: tuple[str, ...] = ()
    conflicting_duplicate: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    status_counts_delta: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    scan_counts_delta: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    scan_level: str | None = None
    title_overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    benchmark: str | None = None
    skip_automated: frozenset[str] | None = None  # None: none; empty set never happens
    skip_all_automated: bool = False
    all_skipped: bool = False
    # Each pair of checks exchanges statuses on every target, in GetCisScanResultDetails only.
    swap_status: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    aggregated_status: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    report_status: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def swapped_with(self, check_id: str) -> str | None:
        """The check whose status ``check_id``'s rows carry (``swap_status``, both ways)."""
        for one, other in self.swap_status.items():
            if check_id in (one, other):
                return other if check_id == one else one
        return None

    def skips(self, check_id: str, automated: bool) -> bool:
        """Whether an evaluated check is reported SKIPPED by the scenario."""
        if self.all_skipped:
            return True
        if not automated:
            return False
        return self.skip_all_automated or check_id in (self.skip_automated or frozenset())


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a scenario can change; the defaults are realistic but fast."""

    checks: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    final_status: str = "COMPLETED"
    scan_duration_s: float = 3.0
    # GetCisScanReport answers IN_PROGRESS this long after the scan COMPLETED (AWS makes the
    # report asynchronously); 0: ready with the scan.
    report_after_s: float = 0.0
    zero_checks: bool = False
    # A target nothing reported on (no CIS actions / EC2 scanning off): TIMED_OUT or
    # SCAN_IN_PROGRESS (never completes); users report both.
    unreported_target: str = "TIMED_OUT"
    ssm_online_after_s: float | None = 1.0  # None: never registers
    enable_after_s: float = 1.0
    inspector_initially_enabled: bool = False
    faults: tuple[Fault, ...] = ()
    results: Results = field(default_factory=Results)
    ssm_timeout_s: float | None = None  # pipeline hint: the SSM wait of a rehearsal (chain)
    scan_timeout_s: float | None = None  # pipeline hint: the scan (and coverage) wait
    node: NodeKnobs = field(default_factory=NodeKnobs)
    vulnerabilities: VulnKnobs = field(default_factory=VulnKnobs)
    ec2_policy: str | None = None  # judge EC2's create and tag calls under this policy file
    source: str = "<default scenario>"


DEFAULT = Scenario()


def parse(raw: Any, *, source: str) -> Scenario:
    """Validate parsed scenario data; raise ConfigError listing every problem."""
    if raw is None:
        raw = {}
    shape = _shape_problem(raw)
    if shape:
        raise ConfigError(f"{source}: {shape}", problems=[f"{source}: {shape}"])
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
    text = safeio.read_text(file, limit=MAX_BYTES, what="scenario")
    raw = safeyaml.load_yaml(text, str(file), limit=MAX_BYTES)
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


def _shape_problem(raw: Any, depth: int = 0, path: str = "$") -> str | None:
    """Nesting deeper than MAX_DEPTH, or a non-finite number (NaN, Infinity): one line."""
    if depth > MAX_DEPTH:
        return f"{path}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(raw, float) and not math.isfinite(raw):
        return f"{path}: {raw!r} is not a finite number"
    if isinstance(raw, Mapping):
        children: Iterable[tuple[str, Any]] = ((f"{path}.{k}", v) for k, v in raw.items())
    elif isinstance(raw, list):
        children = ((f"{path}[{i}]", v) for i, v in enumerate(raw))
    else:
        return None
    for child_path, value in children:
        problem = _shape_problem(value, depth + 1, child_path)
        if problem:
            return problem
    return None


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
    results = raw.get("results") or {}
    skip = results.get("skip_automated")
    swap = results.get("swap_status") or {}
    paired = [*swap, *swap.values()]
    twice = sorted({c for c in paired if paired.count(c) > 1})
    if twice:  # a check swapped with itself, or with two others: which status would it carry?
        problems.append(
            f"{source}: $.results.swap_status: {', '.join(twice)} named more than once (each "
            "check can be in one pair only)"
        )
    named = {
        "duplicate": list(results.get("duplicate") or []),
        "conflicting_duplicate": list(results.get("conflicting_duplicate") or {}),
        "title_overrides": list(results.get("title_overrides") or {}),
        "skip_automated": list(skip) if isinstance(skip, list) else [],
        "swap_status": paired,
        "aggregated_status": list(results.get("aggregated_status") or {}),
        "report_status": list(results.get("report_status") or {}),
    }
    for key, check_ids in named.items():
        for check_id in check_ids:
            if check_id not in known:
                problems.append(
                    f"{source}: $.results.{key}: {check_id!r} is not a recommendation of any"
                    " CIS catalogue"
                )
    problems += scenario_sections.problems(raw, source)
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
        report_after_s=float(scan.get("report_after_s", DEFAULT.report_after_s)),
        zero_checks=bool(scan.get("zero_checks", DEFAULT.zero_checks)),
        unreported_target=scan.get("unreported_target", DEFAULT.unreported_target),
        ssm_online_after_s=None if online in (NEVER, None) else float(online),
        enable_after_s=float(inspector.get("enable_after_s", DEFAULT.enable_after_s)),
        inspector_initially_enabled=bool(
            inspector.get("initially_enabled", DEFAULT.inspector_initially_enabled)
        ),
        faults=tuple(Fault(**fault) for fault in raw.get("faults") or []),
        results=_results(raw.get("results") or {}),
        ssm_timeout_s=_optional_float((raw.get("pipeline") or {}).get("ssm_timeout_s")),
        scan_timeout_s=_optional_float((raw.get("pipeline") or {}).get("scan_timeout_s")),
        node=scenario_sections.node_knobs(raw),
        vulnerabilities=scenario_sections.vuln_knobs(raw),
        ec2_policy=(raw.get("iam") or {}).get("ec2_policy"),
        source=source,
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _results(raw: Mapping[str, Any]) -> Results:
    skip = raw.get("skip_automated")
    return Results(
        drop_status=frozenset(raw.get("drop_status") or ()),
        max_pages=raw.get("max_pages"),
        page_size=raw.get("page_size"),
        duplicate=tuple(raw.get("duplicate") or ()),
        conflicting_duplicate=MappingProxyType(dict(raw.get("conflicting_duplicate") or {})),
        status_counts_delta=MappingProxyType(dict(raw.get("status_counts_delta") or {})),
        scan_counts_delta=MappingProxyType(dict(raw.get("scan_counts_delta") or {})),
        scan_level=raw.get("scan_level"),
        title_overrides=MappingProxyType(dict(raw.get("title_overrides") or {})),
        benchmark=raw.get("benchmark"),
        skip_automated=frozenset(skip) if isinstance(skip, list) and skip else None,
        skip_all_automated=skip == "all",
        all_skipped=bool(raw.get("all_skipped", False)),
        swap_status=MappingProxyType(dict(raw.get("swap_status") or {})),
        aggregated_status=MappingProxyType(dict(raw.get("aggregated_status") or {})),
        report_status=MappingProxyType(dict(raw.get("report_status") or {})),
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
