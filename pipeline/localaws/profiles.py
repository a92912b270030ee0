"""Host profiles: which CIS checks a scanned instance passes, derived from the coverage manifest.

Owns the AMI tag contract (``cis-ami:platform``, ``cis-ami:hardening-level``) that picks a
profile, and the rule that turns (catalogue, coverage manifest, hardening level, scan level)
into one PASSED / FAILED / SKIPPED outcome per recommendation in scope:

============================  ===========================  ==============================
recommendation                hardened image (level n)     stock EKS-optimized image
============================  ===========================  ==============================
manual                        SKIPPED                      SKIPPED
``base``                      PASSED                       PASSED
``not_applicable``            PASSED (reason given)        PASSED (reason given)
``remediated``                PASSED if n >= its level,    FAILED
                              else FAILED
``excepted`` / gap            FAILED                       FAILED
============================  ===========================  ==============================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from pipeline import catalog, coverage
from pipeline.catalog import Platform, Recommendation
from pipeline.coverage import CoverageManifest, CoverageState

PLATFORM_TAG = "cis-ami:platform"
HARDENING_TAG = "cis-ami:hardening-level"
HARDENING_LEVELS = {"1": 1, "2": 2}

PASSED, FAILED, SKIPPED = "PASSED", "FAILED", "SKIPPED"

ManifestSource = Callable[[Platform], CoverageManifest]


@dataclass(frozen=True, slots=True)
class HostProfile:
    """What runs on an instance: its platform and, if hardened, the CIS level it was hardened to."""

    platform: Platform
    hardening_level: int | None = None  # None: stock (unhardened) EKS-optimized image

    @property
    def label(self) -> str:
        kind = f"hardened L{self.hardening_level}" if self.hardening_level else "stock"
        return f"{kind} {self.platform.value}"


def from_image(tags: Mapping[str, str], base_platform: Platform | None) -> HostProfile | None:
    """The profile of an AMI from its tags, else from the seeded base AMI it is; None: unknown OS.

    ``cis-ami:platform`` wins over the base AMI's platform; ``cis-ami:hardening-level`` is only
    read when the platform is known, and any value but ``1``/``2`` means stock.
    """
    platform = base_platform
    tagged = tags.get(PLATFORM_TAG)
    if tagged is not None:
        platform = Platform(tagged) if tagged in Platform.__members__ else None
    if platform is None:
        return None
    return HostProfile(platform, HARDENING_LEVELS.get(tags.get(HARDENING_TAG, "")))


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check's result on one host, before it is dressed as an API row."""

    recommendation: Recommendation
    status: str
    reason: str


def evaluate(
    profile: HostProfile,
    manifest: CoverageManifest,
    scan_level: int,
    overrides: Mapping[str, str] = MappingProxyType({}),
) -> list[CheckOutcome]:
    """Outcome of every recommendation a ``scan_level`` scan evaluates (LEVEL_2 includes LEVEL_1).

    ``overrides`` (a scenario's ``checks``) replace the derived status of the IDs it names.
    """
    if manifest.platform is not profile.platform:
        raise ValueError(f"manifest for {manifest.platform.value} used for {profile.label}")
    cat = catalog.load(profile.platform, manifest.benchmark_version)
    outcomes = []
    for rec in cat.in_scope(scan_level):
        status, reason = _derive(profile, manifest, rec)
        forced = overrides.get(rec.id)
        if forced is not None:
            status, reason = forced, f"Outcome set by the local AWS scenario (derived: {status})"
        outcomes.append(CheckOutcome(rec, status, reason))
    return outcomes


def _derive(
    profile: HostProfile, manifest: CoverageManifest, rec: Recommendation
) -> tuple[str, str]:
    if not rec.automated:
        return SKIPPED, "Manual recommendation: not assessed by an automated scan"
    entry = manifest.entries.get(rec.id)
    state = entry.state if entry else CoverageState.GAP
    if state is CoverageState.BASE:
        return PASSED, "Compliant"
    if state is CoverageState.NOT_APPLICABLE:
        # The workshop's hardened AL2 node (13 failed / 20 skipped / 207 passed) shows the
        # service passing the alternative-firewall recommendations the hardening leaves aside:
        # only manual recommendations are SKIPPED.
        reason = entry.reason if entry and entry.reason else "not applicable"
        return PASSED, f"Not applicable: {reason}"
    if state is CoverageState.REMEDIATED:
        level = profile.hardening_level
        if level is not None and level >= rec.level:
            return PASSED, "Compliant"
        return FAILED, "Non-compliant: the image is not hardened for this recommendation"
    return FAILED, "Non-compliant"


def empty_manifest(platform: Platform) -> CoverageManifest:
    """A manifest with no entries: every automated recommendation is a gap."""
    return CoverageManifest(platform, catalog.DEFAULT_VERSION[platform], MappingProxyType({}))


def shipped_manifest(platform: Platform) -> CoverageManifest:
    """The manifest in ``pipeline/data/coverage/``; while that file does not exist, an empty one.

    A file that exists but is invalid still raises ConfigError (fail closed, never guess).
    """
    path = coverage.manifest_path(platform)
    if not resources.files("pipeline").joinpath(path).is_file():
        return empty_manifest(platform)
    return coverage.load_manifest(platform)
