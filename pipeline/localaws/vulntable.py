"""The local AWS's vulnerability table and what each host profile has installed.

Owns ``pipeline/data/localaws/vulnerabilities.json`` (invented CVE and advisory IDs, versions
shaped like Amazon Linux's), RPM version order, and the rule that decides which packages of a
host a vulnerability affects:

* a stock image runs the table's ``installed`` versions;
* a hardened image was built with security updates: each package is at the newest fixed version
  the *published* entries name (entries with ``published: false`` come out after the build and
  appear only when a scenario publishes them);
* a package is vulnerable when it is installed below the fixed version, or at any version when
  no fix exists (``null``: Inspector's ``fixedInVersion`` ``NotAvailable``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.localaws.profiles import HostProfile

SOURCE = "pipeline/data/localaws/vulnerabilities.json"
_SEGMENT = re.compile(r"[0-9]+|[A-Za-z]+")


def rpm_compare(left: str, right: str) -> int:
    """-1, 0 or 1 as ``epoch:version-release`` strings order the way rpm orders them.

    Numeric segments compare as numbers and sort after alphabetic ones; a version with more
    segments is the newer when the shared ones are equal (rpmvercmp, without ``~``/``^``).
    """
    a, b = _evr(left), _evr(right)
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    for x, y in ((a[1], b[1]), (a[2], b[2])):
        result = _vercmp(x, y)
        if result:
            return result
    return 0


def _evr(text: str) -> tuple[int, str, str]:
    epoch, _, rest = text.rpartition(":")
    version, _, release = rest.partition("-")
    return int(epoch or 0), version, release


def _vercmp(x: str, y: str) -> int:
    xs, ys = _SEGMENT.findall(x), _SEGMENT.findall(y)
    for p, q in zip(xs, ys, strict=False):
        if p.isdigit() != q.isdigit():
            return 1 if p.isdigit() else -1
        if p.isdigit():
            p_num, q_num = int(p), int(q)
            if p_num != q_num:
                return -1 if p_num < q_num else 1
        elif p != q:
            return -1 if p < q else 1
    return (len(xs) > len(ys)) - (len(xs) < len(ys))


@dataclass(frozen=True, slots=True)
class Installed:
    """One installed package: Inspector's ``vulnerablePackages`` fields come from it."""

    name: str
    evr: str  # epoch:version-release

    @property
    def epoch(self) -> int:
        return _evr(self.evr)[0]

    @property
    def version(self) -> str:
        return _evr(self.evr)[1]

    @property
    def release(self) -> str:
        return _evr(self.evr)[2]


@dataclass(frozen=True, slots=True)
class Vulnerability:
    id: str
    severity: str
    score: float
    vector: str
    description: str
    published: bool
    advisories: Mapping[str, str]  # platform -> ALAS ID
    fixes: Mapping[str, Mapping[str, str | None]]  # platform -> package -> fixed EVR (None: no fix)


@dataclass(frozen=True, slots=True)
class Affected:
    """One vulnerable package of one host: what is installed and what fixes it (None: nothing)."""

    package: Installed
    fixed_in: str | None


@dataclass(frozen=True)
class Table:
    installed: Mapping[str, Mapping[str, str]]  # platform -> package -> EVR on the stock image
    commands: Mapping[str, str]  # platform -> dnf | yum
    vulnerabilities: tuple[Vulnerability, ...]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(v.id for v in self.vulnerabilities)

    @property
    def unpublished(self) -> frozenset[str]:
        return frozenset(v.id for v in self.vulnerabilities if not v.published)

    def get(self, vuln_id: str) -> Vulnerability | None:
        return next((v for v in self.vulnerabilities if v.id == vuln_id), None)

    def packages(self, profile: HostProfile, updated: bool | None = None) -> dict[str, Installed]:
        """What ``profile`` has installed: with the published security updates when ``updated``
        (None: hardened images are, stock ones are not)."""
        platform = profile.platform.value
        versions = dict(self.installed.get(platform, {}))
        if updated is None:
            updated = profile.hardening_level is not None
        if updated:
            for vuln in self.vulnerabilities:
                if not vuln.published:
                    continue
                for name, fixed in vuln.fixes.get(platform, {}).items():
                    have = versions.get(name)
                    if fixed is not None and have is not None and rpm_compare(have, fixed) < 0:
                        versions[name] = fixed
        return {name: Installed(name, evr) for name, evr in versions.items()}

    def affecting(
        self, profile: HostProfile, published: Collection[str] = (), updated: bool | None = None
    ) -> list[tuple[Vulnerability, list[Affected]]]:
        """Every vulnerability (published, or named in ``published``) with its vulnerable
        packages on ``profile``, in table order (``updated`` as for ``packages``)."""
        installed = self.packages(profile, updated)
        found = []
        for vuln in self.vulnerabilities:
            if not vuln.published and vuln.id not in published:
                continue
            hits = []
            for name, fixed in vuln.fixes.get(profile.platform.value, {}).items():
                package = installed.get(name)
                if package is None:
                    continue
                if fixed is None or rpm_compare(package.evr, fixed) < 0:
                    hits.append(Affected(package, fixed))
            if hits:
                found.append((vuln, hits))
        return found


@functools.cache
def load() -> Table:
    """The shipped table; ConfigError naming the file and JSON path if it is malformed."""
    raw = json.loads(
        resources.files("pipeline")
        .joinpath("data/localaws/vulnerabilities.json")
        .read_text(encoding="utf-8")
    )
    return parse(raw, SOURCE)


def parse(raw: object, source: str) -> Table:
    if not isinstance(raw, dict) or not isinstance(raw.get("platforms"), dict):
        raise ConfigError(f"{source}: $.platforms: an object is required")
    known = {p.value for p in Platform}
    installed: dict[str, Mapping[str, str]] = {}
    commands: dict[str, str] = {}
    for platform, body in raw["platforms"].items():
        if platform not in known:
            raise ConfigError(f"{source}: $.platforms.{platform}: not a platform")
        installed[platform] = MappingProxyType(dict(body["installed"]))
        commands[platform] = str(body["package_manager_command"])
    vulns: list[Vulnerability] = []
    for index, item in enumerate(raw.get("vulnerabilities") or []):
        where = f"{source}: $.vulnerabilities[{index}]"
        try:
            vuln = Vulnerability(
                id=str(item["id"]),
                severity=str(item["severity"]),
                score=float(item["score"]),
                vector=str(item["vector"]),
                description=str(item["description"]),
                published=bool(item.get("published", True)),
                advisories=MappingProxyType(dict(item.get("advisories") or {})),
                fixes=MappingProxyType(
                    {p: MappingProxyType(dict(f)) for p, f in item["fixes"].items()}
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed entry ({exc!r})") from exc
        unknown = [p for p in vuln.fixes if p not in installed]
        if unknown or any(v.id == vuln.id for v in vulns):
            raise ConfigError(f"{where}: duplicate ID or unknown platform {unknown}")
        vulns.append(vuln)
    return Table(MappingProxyType(installed), MappingProxyType(commands), tuple(vulns))
