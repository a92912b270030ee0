"""The CIS benchmark catalogues shipped with the package, by (platform, version, check ID).

Data comes from ``pipeline/data/cis/`` (see ``SOURCES.md`` there for provenance and doubts).
Also owns the two normalisations every consumer must share: check IDs and titles.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from pipeline.errors import ConfigError


class Platform(StrEnum):
    """Inspector's ``platform`` values for the operating systems this project hardens."""

    AMAZON_LINUX_2 = "AMAZON_LINUX_2"
    AMAZON_LINUX_2023 = "AMAZON_LINUX_2023"

    @property
    def short(self) -> str:
        """The name used on command lines, in file names and Packer variables: al2 / al2023."""
        return _SHORT[self]

    @classmethod
    def parse(cls, value: str) -> Platform:
        """Accept ``al2023``, ``AL2023`` or ``AMAZON_LINUX_2023``; raise ConfigError otherwise."""
        key = value.strip()
        for platform in cls:
            if key.upper() == platform.value or key.lower() == platform.short:
                return platform
        choices = ", ".join(p.short for p in cls)
        raise ConfigError(f"unknown platform {value!r} (choose one of: {choices})")


_SHORT = {Platform.AMAZON_LINUX_2: "al2", Platform.AMAZON_LINUX_2023: "al2023"}

# The benchmark version this project implements for each platform (what Inspector scans with).
DEFAULT_VERSION: dict[Platform, str] = {
    Platform.AMAZON_LINUX_2: "2.0.0",
    Platform.AMAZON_LINUX_2023: "1.0.0",
}
_FILES = {
    (Platform.AMAZON_LINUX_2, "2.0.0"): "amazon_linux_2-v2.0.0.json",
    (Platform.AMAZON_LINUX_2023, "1.0.0"): "amazon_linux_2023-v1.0.0.json",
}


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One CIS recommendation: its ID, title, profile level (1 or 2) and assessment type."""

    id: str
    title: str
    level: int
    automated: bool

    @property
    def level_name(self) -> str:
        """Inspector's spelling of the level: LEVEL_1 or LEVEL_2."""
        return f"LEVEL_{self.level}"


@dataclass(frozen=True, slots=True)
class Catalogue:
    """All recommendations of one benchmark version, in benchmark order."""

    benchmark: str
    platform: Platform
    version: str
    recommendations: MappingProxyType[str, Recommendation]

    def __contains__(self, check_id: object) -> bool:
        return check_id in self.recommendations

    def get(self, check_id: str) -> Recommendation | None:
        return self.recommendations.get(check_id)

    @property
    def label(self) -> str:
        """e.g. ``CIS Amazon Linux 2023 Benchmark v1.0.0``."""
        return f"{self.benchmark} v{self.version}"

    def in_scope(self, level: int) -> list[Recommendation]:
        """Recommendations a scan at ``level`` evaluates (Level 2 includes Level 1)."""
        return [r for r in self.recommendations.values() if r.level <= level]


def supported() -> list[tuple[Platform, str]]:
    """Every (platform, benchmark version) pair that has a catalogue."""
    return sorted(_FILES)


@cache
def load(platform: Platform | str, version: str | None = None) -> Catalogue:
    """Return the catalogue for ``platform`` at ``version`` (default: the implemented version).

    Raises ConfigError when no catalogue exists for that pair.
    """
    plat = platform if isinstance(platform, Platform) else Platform.parse(platform)
    ver = version or DEFAULT_VERSION[plat]
    name = _FILES.get((plat, ver))
    if name is None:
        have = ", ".join(f"{p.value} {v}" for p, v in supported())
        raise ConfigError(
            f"no CIS catalogue for {plat.value} benchmark version {ver} (have: {have})"
        )
    raw: dict[str, Any] = json.loads(
        resources.files("pipeline").joinpath("data", "cis", name).read_text(encoding="utf-8")
    )
    recs = {
        r["id"]: Recommendation(
            id=r["id"],
            title=r["title"],
            level=int(r["level"]),
            automated=r["assessment"] == "automated",
        )
        for r in raw["recommendations"]
    }
    return Catalogue(
        benchmark=raw["benchmark"],
        platform=plat,
        version=raw["version"],
        recommendations=MappingProxyType(recs),
    )


_XCCDF_ID = re.compile(
    r"^(?:xccdf_org\.cisecurity\.benchmarks_rule_)?([0-9]+(?:\.[0-9]+)*)(?:_.*)?$"
)


def normalise_check_id(raw: str) -> str | None:
    """``1.1.22`` and ``xccdf_org.cisecurity.benchmarks_rule_1.1.22_Ensure_...`` give ``1.1.22``.

    Returns None when the value is not a CIS recommendation number in either form.
    """
    match = _XCCDF_ID.match(raw.strip())
    return match.group(1) if match else None


_SUFFIX = re.compile(r"\((?:automated|manual|scored|not scored)\)\s*$", re.IGNORECASE)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise_title(title: str) -> str:
    """Title for comparison: no case, white space, punctuation or trailing (Automated)/(Manual)."""
    stripped = _SUFFIX.sub("", title.strip())
    return _NON_WORD.sub(" ", stripped.lower()).strip()
