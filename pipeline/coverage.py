"""The hardening coverage manifest: where each automated CIS recommendation stands for a platform.

Every automated recommendation of a catalogue is in exactly one state: remediated by a named
hardening function, satisfied by the EKS-optimized base AMI, excepted (listed in the exceptions
policy), or not applicable (with a reason). A recommendation with no entry is a gap.
Data lives in ``pipeline/data/coverage/<platform>.yaml``; the local AWS derives its host
profiles from it, so a local scan fails exactly where the hardening leaves a gap.
Also owns the coverage report of ``invoke hardening-coverage`` (:func:`coverage_report`, pure).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, TypedDict

import yaml

from pipeline import catalog
from pipeline.catalog import Platform
from pipeline.errors import ConfigError


class CoverageState(StrEnum):
    REMEDIATED = "remediated"
    BASE = "base"
    EXCEPTED = "excepted"
    NOT_APPLICABLE = "not_applicable"
    GAP = "gap"  # never written in a manifest: the state of a recommendation with no entry


@dataclass(frozen=True, slots=True)
class CoverageEntry:
    check_id: str
    state: CoverageState
    # The hardening function: required for REMEDIATED; for BASE a build-time check, for EXCEPTED
    # the part of the recommendation applied outside the excepted (Kubernetes) paths.
    function: str | None = None
    reason: str | None = None  # why, for BASE / NOT_APPLICABLE


@dataclass(frozen=True, slots=True)
class CoverageManifest:
    platform: Platform
    benchmark_version: str
    entries: MappingProxyType[str, CoverageEntry]

    def state(self, check_id: str) -> CoverageState:
        entry = self.entries.get(check_id)
        return entry.state if entry else CoverageState.GAP

    def automated_in_scope(self, level: int) -> list[catalog.Recommendation]:
        cat = catalog.load(self.platform, self.benchmark_version)
        return [r for r in cat.in_scope(level) if r.automated]

    def counts(self, level: int) -> dict[CoverageState, int]:
        """How many automated recommendations in scope at ``level`` are in each state."""
        tally = Counter(self.state(r.id) for r in self.automated_in_scope(level))
        return {s: tally.get(s, 0) for s in CoverageState}

    def gaps(self, level: int) -> list[catalog.Recommendation]:
        return [r for r in self.automated_in_scope(level) if self.state(r.id) is CoverageState.GAP]

    def expected_failures(self, level: int) -> list[str]:
        """IDs that a level-``level`` scan of an image hardened at ``level`` reports FAILED: the
        excepted recommendations and the gaps, in benchmark order."""
        failing = (CoverageState.EXCEPTED, CoverageState.GAP)
        return [r.id for r in self.automated_in_scope(level) if self.state(r.id) in failing]


def manifest_path(platform: Platform) -> str:
    return f"data/coverage/{platform.short}.yaml"


@cache
def load_manifest(platform: Platform) -> CoverageManifest:
    """Read the shipped manifest of ``platform``; raise ConfigError if it is malformed."""
    name = manifest_path(platform)
    try:
        text = resources.files("pipeline").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"pipeline/{name}: no coverage manifest for {platform.value}") from exc
    return parse_manifest(yaml.safe_load(text), source=f"pipeline/{name}")


def parse_manifest(raw: Any, *, source: str) -> CoverageManifest:
    """Build a manifest from its YAML data, checking states and IDs against the catalogue."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: $: expected a mapping")
    platform = Platform.parse(str(raw.get("platform", "")))
    version = str(raw.get("benchmark_version", ""))
    cat = catalog.load(platform, version)
    entries: dict[str, CoverageEntry] = {}
    problems: list[str] = []
    for check_id, body in (raw.get("recommendations") or {}).items():
        key = str(check_id)
        path = f"{source}: $.recommendations['{key}']"
        if key not in cat:
            problems.append(f"{path}: not a recommendation of {cat.label}")
            continue
        if not isinstance(body, dict):
            problems.append(f"{path}: expected a mapping with 'state'")
            continue
        try:
            state = CoverageState(str(body.get("state")))
        except ValueError:
            problems.append(f"{path}.state: {body.get('state')!r} is not a coverage state")
            continue
        if state is CoverageState.GAP:
            problems.append(f"{path}.state: 'gap' is implied by a missing entry; remove the entry")
        if state is CoverageState.REMEDIATED and not body.get("function"):
            problems.append(f"{path}.function: a remediated recommendation names its function")
        if state is CoverageState.NOT_APPLICABLE and not body.get("reason"):
            problems.append(f"{path}.reason: a not-applicable recommendation gives its reason")
        if state is CoverageState.BASE and not body.get("reason"):
            problems.append(f"{path}.reason: say why the base AMI satisfies it")
        function = body.get("function")
        if function is not None and function != function_name(key):
            problems.append(f"{path}.function: {function!r} is not {function_name(key)!r}")
        entries[key] = CoverageEntry(key, state, body.get("function"), body.get("reason"))
    if problems:
        raise ConfigError(f"{source}: invalid coverage manifest", problems=problems)
    return CoverageManifest(platform, version, MappingProxyType(entries))


def function_name(check_id: str) -> str:
    """The hardening function of a recommendation: ``1.1.2.3`` -> ``cis_1_1_2_3``."""
    return "cis_" + check_id.replace(".", "_")


# --- The coverage report (invoke hardening-coverage) ------------------------------------------


class ReportedCheck(TypedDict):
    id: str
    title: str
    level: int
    reason: str | None


class CoverageReport(TypedDict):
    platform: str
    benchmark: str
    level: int
    automated: int  # automated recommendations in scope at ``level``
    manual: int  # manual ones (scans report them SKIPPED; no entry needed)
    counts: dict[str, int]  # CoverageState value -> how many automated recommendations
    gaps: list[ReportedCheck]
    excepted: list[ReportedCheck]
    not_applicable: list[ReportedCheck]


def coverage_report(
    platform: Platform | str, level: int, manifest: CoverageManifest | None = None
) -> CoverageReport:
    """Where the hardening of ``platform`` at CIS ``level`` stands: counts per state, the gaps,
    the excepted and the not-applicable recommendations (IDs and titles). No I/O beyond the
    packaged catalogue and manifest (``manifest`` replaces the shipped one).

    Raises ConfigError for an unknown platform, a level other than 1 or 2, or a malformed manifest.
    """
    plat = platform if isinstance(platform, Platform) else Platform.parse(platform)
    if level not in (1, 2):
        raise ConfigError(f"unknown CIS level {level!r} (choose 1 or 2)")
    cov = manifest if manifest is not None else load_manifest(plat)
    cat = catalog.load(plat, cov.benchmark_version)
    in_scope = cat.in_scope(level)

    def listed(state: CoverageState) -> list[ReportedCheck]:
        out: list[ReportedCheck] = []
        for rec in in_scope:
            if rec.automated and cov.state(rec.id) is state:
                entry = cov.entries.get(rec.id)
                out.append(
                    ReportedCheck(
                        id=rec.id,
                        title=rec.title,
                        level=rec.level,
                        reason=entry.reason if entry else None,
                    )
                )
        return out

    return CoverageReport(
        platform=plat.value,
        benchmark=cat.label,
        level=level,
        automated=sum(1 for r in in_scope if r.automated),
        manual=sum(1 for r in in_scope if not r.automated),
        counts={state.value: n for state, n in cov.counts(level).items()},
        gaps=listed(CoverageState.GAP),
        excepted=listed(CoverageState.EXCEPTED),
        not_applicable=listed(CoverageState.NOT_APPLICABLE),
    )


_STATE_LABELS = {
    CoverageState.REMEDIATED: "remediated by the hardening scripts",
    CoverageState.BASE: "satisfied by the EKS-optimized base AMI",
    CoverageState.EXCEPTED: "excepted (approved exceptions policy)",
    CoverageState.NOT_APPLICABLE: "not applicable",
    CoverageState.GAP: "gaps (no coverage)",
}


def render_coverage_text(report: CoverageReport) -> str:
    """The report for a terminal: counts per state, then every gap, exception and N/A by ID."""
    lines = [
        f"Hardening coverage: {report['benchmark']}, Level {report['level']} "
        f"({report['platform']})",
        f"  {report['automated']} automated recommendations in scope "
        f"({report['manual']} manual ones are not scanned automatically)",
    ]
    width = max(len(str(n)) for n in report["counts"].values())
    for state in CoverageState:
        lines.append(f"  {report['counts'][state.value]:>{width}}  {_STATE_LABELS[state]}")
    sections: list[tuple[str, list[ReportedCheck]]] = [
        ("Gaps", report["gaps"]),
        ("Excepted", report["excepted"]),
        ("Not applicable", report["not_applicable"]),
    ]
    for heading, checks in sections:
        if not checks:
            continue
        lines.append("")
        lines.append(f"{heading}:")
        for check in checks:
            reason = f" - {check['reason']}" if check["reason"] else ""
            lines.append(f"  {check['id']:<10} {check['title']} (L{check['level']}){reason}")
    if not report["gaps"]:
        lines.append("")
        lines.append("No gaps: every automated recommendation in scope is accounted for.")
    return "\n".join(lines) + "\n"


def render_coverage_json(report: CoverageReport) -> str:
    """The report as JSON (stable key order, for ``--json``)."""
    return json.dumps(report, indent=2) + "\n"
