"""The ``vulnerabilities:`` section of an exceptions policy (pure): which package findings block,
and the approved exceptions by vulnerability ID.

    vulnerabilities:
      block:                    # per severity: fixable (default for CRITICAL, HIGH), any, never
        CRITICAL: fixable
        HIGH: fixable
      exceptions:
        - vulnerability_id: CVE-2026-0001
          package: openssl-libs        # optional: only findings whose packages are all this one
          architectures: [x86_64]      # optional
          reason: ...
          approved_by: ...
          expires: 2027-01-31

``fixable``: Inspector's ``fixAvailable`` is YES or PARTIAL (a fix exists for at least one of the
finding's packages). A missing section means the defaults and no exceptions; the policy file's
digest covers the section either way, and ``digest`` gives the section's own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED")
FIXABLE = frozenset({"YES", "PARTIAL"})


class Block(StrEnum):
    ANY = "any"
    FIXABLE = "fixable"
    NEVER = "never"


DEFAULT_BLOCK: Mapping[str, Block] = MappingProxyType(
    {s: Block.FIXABLE if s in ("CRITICAL", "HIGH") else Block.NEVER for s in SEVERITIES}
)


@dataclass(frozen=True, slots=True)
class VulnException:
    vulnerability_id: str
    reason: str
    approved_by: str
    expires: date
    package: str | None = None
    architectures: frozenset[str] | None = None
    references: tuple[str, ...] = ()
    index: int = 0  # position in the file ($.vulnerabilities.exceptions[index])

    def active_on(self, today: date) -> bool:
        return today <= self.expires

    def expires_within(self, today: date, days: int) -> bool:
        return self.active_on(today) and self.expires - today <= timedelta(days=days)

    def covers(self, packages: frozenset[str], architecture: str | None) -> bool:
        """Scoped to a package: only findings whose vulnerable packages are all that package."""
        package_ok = self.package is None or (bool(packages) and packages == {self.package})
        arch_ok = self.architectures is None or (
            architecture is not None and architecture in self.architectures
        )
        return package_ok and arch_ok

    @property
    def scope(self) -> str:
        parts = [f"package {self.package}"] if self.package else []
        if self.architectures:
            parts.append("/".join(sorted(self.architectures)))
        return ", ".join(parts) or "any package"


@dataclass(frozen=True)
class VulnPolicy:
    block: Mapping[str, Block] = field(default_factory=lambda: DEFAULT_BLOCK)
    exceptions: tuple[VulnException, ...] = ()
    declared: bool = False  # the file has a vulnerabilities section
    by_id: Mapping[str, tuple[VulnException, ...]] = field(default_factory=dict)

    def blocks(self, severity: str, fix_available: str | None) -> bool:
        """Whether a finding of this severity and fixAvailable is at or above the threshold.

        An unknown severity blocks, and a finding that does not say whether a fix exists counts
        as fixable (fail closed): neither can be placed below the threshold."""
        rule = self.block.get(severity)
        if rule is None:
            return True
        fixable = fix_available is None or fix_available in FIXABLE
        return rule is Block.ANY or (rule is Block.FIXABLE and fixable)

    @property
    def threshold(self) -> str:
        """e.g. ``CRITICAL (fixable), HIGH (fixable)``."""
        shown = [
            f"{s} ({rule.value})" if rule is not Block.ANY else s
            for s in SEVERITIES
            if (rule := self.block[s]) is not Block.NEVER
        ]
        return ", ".join(shown) or "nothing"

    def as_json(self) -> dict[str, Any]:
        return {
            "block": {s: self.block[s].value for s in SEVERITIES},
            "exceptions": [
                {
                    "vulnerability_id": e.vulnerability_id,
                    "package": e.package,
                    "architectures": sorted(e.architectures) if e.architectures else None,
                    "reason": e.reason,
                    "approved_by": e.approved_by,
                    "expires": e.expires.isoformat(),
                    "references": list(e.references),
                }
                for e in self.exceptions
            ],
        }

    @property
    def digest(self) -> str:
        """sha256 of the section's canonical JSON (defaults included): what the record signs."""
        body = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(body).hexdigest()


def parse(raw: Any, source: str) -> tuple[VulnPolicy, list[str]]:
    """The section from schema-valid data (``None``: absent), and its semantic problems."""
    if raw is None:
        return VulnPolicy(), []
    block = dict(DEFAULT_BLOCK)
    block.update({s: Block(v) for s, v in (raw.get("block") or {}).items()})
    exceptions = tuple(_exception(i, e) for i, e in enumerate(raw.get("exceptions") or ()))
    grouped: dict[str, list[VulnException]] = {}
    for exc in exceptions:
        grouped.setdefault(exc.vulnerability_id, []).append(exc)
    policy = VulnPolicy(
        block=MappingProxyType(block),
        exceptions=exceptions,
        declared=True,
        by_id=MappingProxyType({k: tuple(v) for k, v in grouped.items()}),
    )
    return policy, _problems(exceptions, source)


def _exception(index: int, raw: Mapping[str, Any]) -> VulnException:
    archs = raw.get("architectures")
    return VulnException(
        vulnerability_id=raw["vulnerability_id"],
        reason=raw["reason"],
        approved_by=raw["approved_by"],
        expires=date.fromisoformat(raw["expires"]),
        package=raw.get("package"),
        architectures=frozenset(archs) if archs else None,
        references=tuple(raw.get("references", ())),
        index=index,
    )


def _problems(exceptions: tuple[VulnException, ...], source: str) -> list[str]:
    problems: list[str] = []
    for number, exc in enumerate(exceptions):
        at = f"{source}: $.vulnerabilities.exceptions[{exc.index}]"
        for name in ("reason", "approved_by"):
            if not getattr(exc, name).strip():
                problems.append(f"{at}.{name}: must not be blank")
        first = next((e for e in exceptions[:number] if _overlap(e, exc)), None)
        if first is not None:
            problems.append(
                f"{at}.vulnerability_id: {exc.vulnerability_id} is already excepted for an "
                f"overlapping scope at $.vulnerabilities.exceptions[{first.index}]"
            )
    return problems


def _overlap(a: VulnException, b: VulnException) -> bool:
    """Two entries that could both cover one finding: which one approved it would be unclear."""
    if a.vulnerability_id != b.vulnerability_id:
        return False
    packages = a.package is None or b.package is None or a.package == b.package
    archs = (
        a.architectures is None
        or b.architectures is None
        or bool(a.architectures & b.architectures)
    )
    return packages and archs


def expiry_problems(
    policy: VulnPolicy, source: str, today: date, warn_days: int
) -> tuple[list[str], list[str]]:
    """(errors, warnings), like the CIS exceptions': expired is an error, soon a warning."""
    errors, warnings = [], []
    for exc in policy.exceptions:
        where = f"{source}: $.vulnerabilities.exceptions[{exc.index}].expires"
        if not exc.active_on(today):
            errors.append(f"{where}: exception for {exc.vulnerability_id} expired on {exc.expires}")
        elif exc.expires_within(today, warn_days):
            days = (exc.expires - today).days
            warnings.append(f"{where}: exception for {exc.vulnerability_id} expires in {days} days")
    return errors, warnings
