"""The approved exceptions policy: loading, validation in stages, and the frozen model.

Stages (all problems reported at once, each ``FILE: $.path: message``): YAML parse, structure,
JSON Schema (``policies/exceptions.schema.json``, dates enforced), then semantics against the
CIS catalogue. An invalid policy raises PolicyError (exit 2); it is never "no exceptions".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pipeline import catalog, safeio, vulnpolicy
from pipeline.catalog import Catalogue, Platform
from pipeline.errors import ConfigError, PolicyError
from pipeline.schema import parse_document, schema_problems

SCHEMA = "exceptions.schema.json"
EXPIRY_WARNING_DAYS = 30
DEFAULT_DIR = Path("policies") / "exceptions"


@dataclass(frozen=True, slots=True)
class PolicyException:
    """One approved exception. It covers FAILED results of ``check_id`` until ``expires``."""

    check_id: str
    title: str
    reason: str
    category: str
    recommendation: str
    approved_by: str
    expires: date
    levels: frozenset[str] | None = None
    references: tuple[str, ...] = ()
    index: int = 0  # position in the file, for messages ($.exceptions[index])

    def active_on(self, today: date) -> bool:
        """True through the ``expires`` day itself."""
        return today <= self.expires

    def expires_within(self, today: date, days: int) -> bool:
        return self.active_on(today) and self.expires - today <= timedelta(days=days)

    def covers_level(self, level: str | None) -> bool:
        """An exception scoped to levels covers only results that report one of them."""
        return self.levels is None or (level is not None and level in self.levels)


@dataclass(frozen=True, slots=True)
class PolicySkip:
    """An automated recommendation a scan may report SKIPPED (not evaluated) until ``expires``.

    Without one, a SKIPPED automated check is not evidence and the scan is not trustworthy.
    """

    check_id: str
    title: str
    reason: str
    approved_by: str
    expires: date
    architectures: frozenset[str] | None = None
    levels: frozenset[str] | None = None
    references: tuple[str, ...] = ()
    index: int = 0  # position in the file, for messages ($.skips[index])

    def active_on(self, today: date) -> bool:
        return today <= self.expires

    def covers(self, architecture: str | None, level: str | None) -> bool:
        """Scoped entries cover only the architectures and levels they name (unknown: not)."""
        arch_ok = self.architectures is None or (
            architecture is not None and architecture in self.architectures
        )
        level_ok = self.levels is None or (level is not None and level in self.levels)
        return arch_ok and level_ok


@dataclass(frozen=True, slots=True)
class ExceptionsPolicy:
    """A validated policy for one (platform, benchmark version)."""

    source: str
    platform: Platform
    benchmark_version: str
    exceptions: tuple[PolicyException, ...]
    sha256: str
    by_check: Mapping[str, PolicyException] = field(default_factory=dict)
    skips: tuple[PolicySkip, ...] = ()
    skips_by_check: Mapping[str, PolicySkip] = field(default_factory=dict)
    vulnerabilities: vulnpolicy.VulnPolicy = field(default_factory=vulnpolicy.VulnPolicy)

    @property
    def catalogue(self) -> Catalogue:
        return catalog.load(self.platform, self.benchmark_version)


def parse(text: str, source: str) -> ExceptionsPolicy:
    """Validate policy text in stages and build the model. Raises PolicyError with every problem."""
    try:
        data = parse_document(text, source)
    except ConfigError as exc:
        raise PolicyError(str(exc), problems=exc.lines()) from exc
    problems = _structure_problems(data, source) or schema_problems(data, SCHEMA, source)
    if problems:
        raise PolicyError(f"{source}: invalid exceptions policy", problems=problems)
    platform = Platform(data["benchmark"]["platform"])
    version = data["benchmark"]["version"]
    try:
        cat = catalog.load(platform, version)
    except ConfigError as exc:
        raise PolicyError(f"{source}: $.benchmark.version: {exc}") from exc
    exceptions = tuple(_exception(i, raw) for i, raw in enumerate(data["exceptions"]))
    skips = tuple(_skip(i, raw) for i, raw in enumerate(data.get("skips", ())))
    problems = list(_semantic_problems(exceptions, cat, source))
    problems += _skip_problems(skips, cat, source)
    vulns, vuln_problems = vulnpolicy.parse(data.get("vulnerabilities"), source)
    problems += vuln_problems
    if problems:
        raise PolicyError(f"{source}: invalid exceptions policy", problems=problems)
    return ExceptionsPolicy(
        source=source,
        platform=platform,
        benchmark_version=version,
        exceptions=exceptions,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        by_check=MappingProxyType({e.check_id: e for e in exceptions}),
        skips=skips,
        skips_by_check=MappingProxyType({k.check_id: k for k in skips}),
        vulnerabilities=vulns,
    )


def load(path: str | Path) -> ExceptionsPolicy:
    """Read and validate one policy file. Unreadable → PolicyError (exit 2)."""
    source = str(path)
    try:
        text = safeio.read_text(path, limit=safeio.POLICY_MAX_BYTES, what="exceptions policy")
    except PolicyError:
        raise
    except ConfigError as exc:  # too big, unreadable, not UTF-8: one line naming the file
        raise PolicyError(str(exc), problems=exc.lines()) from exc
    return parse(text, source)


def discover(directory: str | Path = DEFAULT_DIR) -> list[Path]:
    """The policy files of a directory (``*.yaml``, ``*.yml``, ``*.json``), sorted."""
    folder = Path(directory)
    if not folder.is_dir():
        raise PolicyError(f"{folder}: no exceptions policy directory (pass --policy PATH)")
    files = sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml", ".json"})
    if not files:
        raise PolicyError(f"{folder}: no exceptions policy files in this directory")
    return files


def load_all(paths: Iterable[str | Path]) -> dict[Platform, ExceptionsPolicy]:
    """Load several policies, one per platform; every problem of every file is reported."""
    policies: dict[Platform, ExceptionsPolicy] = {}
    problems: list[str] = []
    for path in paths:
        try:
            policy = load(path)
        except PolicyError as exc:
            problems.extend(exc.lines())
            continue
        other = policies.get(policy.platform)
        if other is not None:
            problems.append(
                f"{policy.source}: $.benchmark.platform: {policy.platform.value} is already "
                f"covered by {other.source}; keep one policy per platform"
            )
            continue
        policies[policy.platform] = policy
    if problems:
        raise PolicyError(problems[0], problems=problems)
    return policies


def expiry_problems(policy: ExceptionsPolicy, today: date) -> tuple[list[str], list[str]]:
    """(errors, warnings): expired exceptions are errors; those expiring soon are warnings."""
    errors, warnings = [], []
    entries: list[tuple[str, PolicyException | PolicySkip]] = [
        *(("exceptions", e) for e in policy.exceptions),
        *(("skips", k) for k in policy.skips),
    ]
    for section, entry in entries:
        where = f"{policy.source}: $.{section}[{entry.index}].expires"
        kind = "exception" if section == "exceptions" else "skip"
        if not entry.active_on(today):
            errors.append(f"{where}: {kind} for {entry.check_id} expired on {entry.expires}")
        elif entry.expires - today <= timedelta(days=EXPIRY_WARNING_DAYS):
            days = (entry.expires - today).days
            warnings.append(f"{where}: {kind} for {entry.check_id} expires in {days} days")
    vuln_errors, vuln_warnings = vulnpolicy.expiry_problems(
        policy.vulnerabilities, policy.source, today, EXPIRY_WARNING_DAYS
    )
    return errors + vuln_errors, warnings + vuln_warnings


def _structure_problems(data: Any, source: str) -> list[str]:
    """Cheap first look with friendly messages, before the schema's precise ones."""
    if data is None:
        return [f"{source}: $: the policy is empty"]
    if not isinstance(data, dict):
        kind = type(data).__name__
        return [
            f"{source}: $: expected a mapping with version, benchmark and exceptions, got {kind}"
        ]
    return []


def _exception(index: int, raw: Mapping[str, Any]) -> PolicyException:
    levels = raw.get("levels")
    return PolicyException(
        check_id=raw["check_id"],
        title=raw["title"],
        reason=raw["reason"],
        category=raw["category"],
        recommendation=raw["recommendation"],
        approved_by=raw["approved_by"],
        expires=date.fromisoformat(raw["expires"]),
        levels=frozenset(levels) if levels else None,
        references=tuple(raw.get("references", ())),
        index=index,
    )


def _skip(index: int, raw: Mapping[str, Any]) -> PolicySkip:
    archs, levels = raw.get("architectures"), raw.get("levels")
    return PolicySkip(
        check_id=raw["check_id"],
        title=raw["title"],
        reason=raw["reason"],
        approved_by=raw["approved_by"],
        expires=date.fromisoformat(raw["expires"]),
        architectures=frozenset(archs) if archs else None,
        levels=frozenset(levels) if levels else None,
        references=tuple(raw.get("references", ())),
        index=index,
    )


def _skip_problems(skips: tuple[PolicySkip, ...], cat: Catalogue, source: str) -> list[str]:
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    for skip in skips:
        at = f"{source}: $.skips[{skip.index}]"
        if skip.check_id in first_seen:
            problems.append(
                f"{at}.check_id: duplicate skip for {skip.check_id} "
                f"(first at $.skips[{first_seen[skip.check_id]}])"
            )
        else:
            first_seen[skip.check_id] = skip.index
        for name in ("reason", "approved_by", "title"):
            if not getattr(skip, name).strip():
                problems.append(f"{at}.{name}: must not be blank")
        rec = cat.get(skip.check_id)
        if rec is None:
            problems.append(
                f"{at}.check_id: {skip.check_id!r} is not a recommendation of {cat.label}"
            )
            continue
        if not rec.automated:
            problems.append(
                f"{at}.check_id: {skip.check_id} is a manual recommendation: a scan always reports "
                "it SKIPPED, so it needs no skip entry"
            )
        if catalog.normalise_title(skip.title) != catalog.normalise_title(rec.title):
            problems.append(
                f"{at}.title: {skip.title!r} differs from the {cat.label} title of "
                f"{skip.check_id}: {rec.title!r}"
            )
        if skip.levels is not None and rec.level_name not in skip.levels:
            problems.append(
                f"{at}.levels: {skip.check_id} is a {rec.level_name} recommendation, so a skip "
                f"scoped to {sorted(skip.levels)} could never cover it"
            )
    return problems


def _semantic_problems(
    exceptions: tuple[PolicyException, ...], cat: Catalogue, source: str
) -> Iterable[str]:
    first_seen: dict[str, int] = {}
    for exc in exceptions:
        at = f"{source}: $.exceptions[{exc.index}]"
        if exc.check_id in first_seen:
            yield (
                f"{at}.check_id: duplicate exception for {exc.check_id} "
                f"(first at $.exceptions[{first_seen[exc.check_id]}])"
            )
        else:
            first_seen[exc.check_id] = exc.index
        for name in ("reason", "approved_by", "recommendation", "title"):
            if not getattr(exc, name).strip():
                yield f"{at}.{name}: must not be blank"
        rec = cat.get(exc.check_id)
        if rec is None:
            yield f"{at}.check_id: {exc.check_id!r} is not a recommendation of {cat.label}"
            continue
        if catalog.normalise_title(exc.title) != catalog.normalise_title(rec.title):
            yield (
                f"{at}.title: {exc.title!r} differs from the {cat.label} title of "
                f"{exc.check_id}: {rec.title!r}"
            )
        if exc.levels is not None and rec.level_name not in exc.levels:
            yield (
                f"{at}.levels: {exc.check_id} is a {rec.level_name} recommendation, so an "
                f"exception scoped to {sorted(exc.levels)} could never cover it"
            )
