"""The hardening coverage manifest: where each automated CIS recommendation stands for a platform.

Every automated recommendation of a catalogue is in exactly one state: remediated by a named
hardening function, satisfied by the EKS-optimized base AMI, excepted (listed in the exceptions
policy), or not applicable (with a reason). A recommendation with no entry is a gap.
Data lives in ``pipeline/data/coverage/<platform>.yaml``; the local AWS derives its host
profiles from it, so a local scan fails exactly where the hardening leaves a gap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

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
    function: str | None = None  # the hardening function, for REMEDIATED
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
        entries[key] = CoverageEntry(key, state, body.get("function"), body.get("reason"))
    if problems:
        raise ConfigError(f"{source}: invalid coverage manifest", problems=problems)
    return CoverageManifest(platform, version, MappingProxyType(entries))
