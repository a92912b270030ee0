"""The ``node:`` and ``vulnerabilities:`` sections of a scenario: schema, semantics, knobs.

``node:`` scripts SSM Run Command and the node probe's answer; ``vulnerabilities:`` scripts
Inspector's package scan of EC2 instances (coverage, published CVEs, and findings APIs that lie).
Semantic rules: node check IDs must be checks of the node catalogue (``pipeline.node``),
vulnerability IDs entries of the local AWS's table (``vulntable``), ``publish`` only entries
the table marks unpublished. See README "Scenarios".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline import node
from pipeline.localaws import model, vulntable

NEVER = "never"
# What the command does on the instance (README "SSM Run Command").
OUTCOMES = ("Success", "Failed", "TimedOut", "Undeliverable", "DeliveryTimedOut")
SEVERITIES = model.enum("inspector2", "Severity")
# ScanStatusReason values a scenario may leave a package scan in (not the two normal ones).
COVERAGE_REASONS = tuple(
    r
    for r in model.enum("inspector2", "ScanStatusReason")
    if r not in ("SUCCESSFUL", "PENDING_INITIAL_SCAN")
)

_SECONDS = {"type": "number", "minimum": 0}
_NODE_ID = {"type": "string", "pattern": r"^node\.[a-z0-9_.]+$"}
_VULN_ID = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"}
_VULN_IDS = {"type": "array", "items": _VULN_ID, "uniqueItems": True}

SCHEMA: dict[str, Any] = {
    "node": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "fail": {  # check ID -> what the probe saw
                "type": "object",
                "propertyNames": _NODE_ID,
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200},
            },
            "drop_lines": {"type": "array", "items": _NODE_ID, "uniqueItems": True},
            "drop_trailer": {"type": "boolean"},
            "miscount_trailer": {"type": "boolean"},
            "padding": {"type": "integer", "minimum": 0, "maximum": 100_000},
            "command": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "outcome": {"enum": list(OUTCOMES)},
                    "duration_s": _SECONDS,
                    "visible_after_s": _SECONDS,
                    "exit_code": {"type": "integer", "minimum": 1, "maximum": 255},
                },
            },
        },
    },
    "vulnerabilities": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "publish": _VULN_IDS,
            "coverage": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "scan_after_s": {"anyOf": [_SECONDS, {"const": NEVER}]},
                    "reason": {"enum": list(COVERAGE_REASONS)},
                },
            },
            "suppressed": _VULN_IDS,
            "drop": _VULN_IDS,
            "conflicting_duplicate": {
                "type": "object",
                "propertyNames": _VULN_ID,
                "additionalProperties": {"enum": list(SEVERITIES)},
            },
            "other_resource": _VULN_IDS,
            "max_pages": {"type": "integer", "minimum": 1},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 100},
            "leftover_token": {"type": "boolean"},
        },
    },
}


@dataclass(frozen=True, slots=True)
class NodeKnobs:
    """How SSM Run Command and the probe behave; the defaults: every check passes."""

    fail: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    drop_lines: frozenset[str] = frozenset()
    drop_trailer: bool = False
    miscount_trailer: bool = False  # the end line counts one line more than was printed
    padding: int = 0  # characters of non-NODE output before the probe's header
    outcome: str = "Success"
    duration_s: float = 2.0
    visible_after_s: float = 0.5  # InvocationDoesNotExist until then, after SendCommand
    exit_code: int = 1  # of a Failed command


@dataclass(frozen=True, slots=True)
class VulnKnobs:
    """How Inspector's package scan behaves; the defaults tell the truth."""

    publish: frozenset[str] = frozenset()
    scan_after_s: float | None = 3.0  # None: the initial scan never completes
    coverage_reason: str | None = None  # INACTIVE with this reason instead of a completed scan
    suppressed: frozenset[str] = frozenset()
    drop: frozenset[str] = frozenset()
    conflicting_duplicate: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    other_resource: frozenset[str] = frozenset()
    max_pages: int | None = None
    page_size: int | None = None
    leftover_token: bool = False


def problems(raw: Mapping[str, Any], source: str) -> list[str]:
    """Semantic problems of the two sections (after the schema passed)."""
    found: list[str] = []
    section = raw.get("node") or {}
    catalogue = node.load_catalogue()
    named = {"fail": list(section.get("fail") or {}), "drop_lines": section.get("drop_lines") or []}
    for key, ids in named.items():
        for check_id in ids:
            if check_id not in catalogue.ids:
                found.append(
                    f"{source}: $.node.{key}: {check_id!r} is not a check of the node catalogue"
                    f" ({catalogue.platform})"
                )
    vulns = raw.get("vulnerabilities") or {}
    table = vulntable.load()
    for vuln_id in vulns.get("publish") or []:
        if vuln_id not in table.unpublished:
            found.append(
                f"{source}: $.vulnerabilities.publish: {vuln_id!r} is not an unpublished entry of"
                f" {vulntable.SOURCE} ({', '.join(sorted(table.unpublished))})"
            )
    for key in ("suppressed", "drop", "conflicting_duplicate", "other_resource"):
        for vuln_id in vulns.get(key) or []:
            if vuln_id not in table.ids:
                found.append(
                    f"{source}: $.vulnerabilities.{key}: {vuln_id!r} is not in {vulntable.SOURCE}"
                )
    return found


def node_knobs(raw: Mapping[str, Any]) -> NodeKnobs:
    section = raw.get("node") or {}
    command = section.get("command") or {}
    default = NodeKnobs()
    return NodeKnobs(
        fail=MappingProxyType(dict(section.get("fail") or {})),
        drop_lines=frozenset(section.get("drop_lines") or ()),
        drop_trailer=bool(section.get("drop_trailer", False)),
        miscount_trailer=bool(section.get("miscount_trailer", False)),
        padding=int(section.get("padding", 0)),
        outcome=command.get("outcome", default.outcome),
        duration_s=float(command.get("duration_s", default.duration_s)),
        visible_after_s=float(command.get("visible_after_s", default.visible_after_s)),
        exit_code=int(command.get("exit_code", default.exit_code)),
    )


def vuln_knobs(raw: Mapping[str, Any]) -> VulnKnobs:
    section = raw.get("vulnerabilities") or {}
    coverage = section.get("coverage") or {}
    after: Any = coverage.get("scan_after_s", VulnKnobs().scan_after_s)
    return VulnKnobs(
        publish=frozenset(section.get("publish") or ()),
        scan_after_s=None if after == NEVER else float(after),
        coverage_reason=coverage.get("reason"),
        suppressed=frozenset(section.get("suppressed") or ()),
        drop=frozenset(section.get("drop") or ()),
        conflicting_duplicate=MappingProxyType(dict(section.get("conflicting_duplicate") or {})),
        other_resource=frozenset(section.get("other_resource") or ()),
        max_pages=section.get("max_pages"),
        page_size=section.get("page_size"),
        leftover_token=bool(section.get("leftover_token", False)),
    )
