"""Amazon Inspector's package scan of the test instances, read defensively (pure).

Three stored documents, the API's response pages as it returned them: ``evidence/coverage.json``
(``ListCoverage`` of all the run's instances: a list of pages), and, each as ``{instance ID:
[pages]}``, ``evidence/findings.json`` (``ListFindings``,
ACTIVE and SUPPRESSED ``PACKAGE_VULNERABILITY`` findings of the instance) and
``evidence/finding-counts.json`` (``ListFindingAggregations`` of type ``AWS_EC2_INSTANCE``).

The same fail-closed rules as the CIS rows: a last page with a token left over, a finding or
coverage entry about another resource, two different findings under one ARN, counts that do not
reconcile with the listed findings, a package scan not completed after the instance launched:
each is a problem, and any problem makes the vulnerability verdict ERROR (exit 4).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import one_line

COVERAGE_FILE = "coverage.json"
FINDINGS_FILE = "findings.json"
COUNTS_FILE = "finding-counts.json"
LAUNCHED_FILE = "launched.json"  # instance → when it launched (ec2:DescribeInstances)
PACKAGE_VULNERABILITY = "PACKAGE_VULNERABILITY"
# What the AWS_EC2_INSTANCE aggregation counts apart (older models: the first three only);
# every one the response gives is reconciled.
COUNTED = ("critical", "high", "medium", "low", "informational", "untriaged")
MAX_TEXT = 300


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    release: str
    arch: str
    fixed_in: str | None

    @property
    def installed(self) -> str:
        release = f"-{self.release}" if self.release else ""
        arch = f".{self.arch}" if self.arch else ""
        return f"{self.name}-{self.version}{release}{arch}"


@dataclass(frozen=True, slots=True)
class VulnFinding:
    target: str
    arn: str
    vulnerability_id: str
    severity: str
    status: str  # ACTIVE or SUPPRESSED (by an account's suppression rule)
    fix_available: str | None  # YES, NO, PARTIAL; None: not reported
    score: float | None
    packages: tuple[Package, ...]
    title: str

    @property
    def package_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.packages)

    @property
    def installed(self) -> str:
        return ", ".join(p.installed for p in self.packages) or "(no package named)"

    @property
    def fixed_in(self) -> str:
        fixed = [p.fixed_in for p in self.packages if p.fixed_in and p.fixed_in != "NotAvailable"]
        return ", ".join(fixed) or "no fix"


@dataclass
class Scanned:
    """One instance's package scan: its findings and every reason not to trust them."""

    target: str
    findings: list[VulnFinding] = field(default_factory=list)
    scanned_at: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read(
    coverage: Any,
    findings: Any,
    counts: Any,
    launched: Mapping[str, str],
    targets: list[str],
) -> list[Scanned]:
    """Each target's scan from the three stored documents; ``launched``: instance → ISO time."""
    out = []
    covered, foreign = _covered(coverage, targets)
    for target in targets:
        scanned = Scanned(target)
        _coverage(scanned, covered.get(target, []), launched.get(target))
        _findings(scanned, _pages(findings, target, FINDINGS_FILE, scanned))
        _reconcile(scanned, _pages(counts, target, COUNTS_FILE, scanned))
        out.append(scanned)
    if out:
        out[0].problems += foreign
        for other in findings if isinstance(findings, dict) else {}:
            if other not in targets:
                out[0].problems.append(
                    f"evidence/{FINDINGS_FILE}: ${_key(other)}: not a test instance of the run"
                )
    return out


def _covered(
    document: Any, targets: list[str]
) -> tuple[dict[str, list[Mapping[str, Any]]], list[str]]:
    """Each target's PACKAGE coverage entries, and the problems of the pages as a whole."""
    where = f"evidence/{COVERAGE_FILE}: $"
    if (
        not isinstance(document, list)
        or not document
        or not all(isinstance(p, dict) for p in document)
    ):
        return {}, [f"{where}: Inspector's coverage was not collected"]
    problems = []
    if document[-1].get("nextToken"):
        problems.append(f"{where}[{len(document) - 1}].nextToken: coverage pages were left unread")
    entries: dict[str, list[Mapping[str, Any]]] = {}
    for page in document:
        for item in page.get("coveredResources") or []:
            if not isinstance(item, dict) or item.get("scanType") != "PACKAGE":
                continue
            resource = item.get("resourceId")
            if resource not in targets:
                problems.append(
                    f"{where}: package coverage of {one_line(str(resource), 40)}, which is not a "
                    "test instance of the run, answers a request for the run's instances"
                )
                continue
            entries.setdefault(str(resource), []).append(item)
    return entries, problems


def _key(value: object) -> str:
    return f".{one_line(str(value), 40)}"


def _pages(document: Any, target: str, name: str, scanned: Scanned) -> list[Mapping[str, Any]]:
    where = f"evidence/{name}: ${_key(target)}"
    pages = document.get(target) if isinstance(document, dict) else None
    if not isinstance(pages, list) or not pages or not all(isinstance(p, dict) for p in pages):
        scanned.problems.append(f"{where}: no response pages were collected for {target}")
        return []
    if pages[-1].get("nextToken"):
        scanned.problems.append(
            f"{where}[{len(pages) - 1}].nextToken: the last page still has a token: "
            "pages were left unread"
        )
    return pages


def _when(value: Any) -> datetime | None:
    """A time as the API gave it (boto3: a datetime), or as stored (JSON: text or epoch)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _coverage(scanned: Scanned, entries: list[Mapping[str, Any]], launched: str | None) -> None:
    target = scanned.target
    if not entries:
        scanned.problems.append(
            f"{target}: Inspector reports no package-scan coverage for this instance (EC2 "
            "scanning not enabled, or the instance is not SSM-managed)"
        )
        return
    if any(e != entries[0] for e in entries[1:]):
        scanned.problems.append(
            f"{target}: Inspector lists its package coverage twice, differently"
        )
        return
    entry = entries[0]
    status = _obj(entry.get("scanStatus"))
    code, reason = status.get("statusCode"), status.get("reason")
    when = _when(entry.get("lastScannedAt"))
    start = _when(launched)
    if code != "ACTIVE" or reason != "SUCCESSFUL":
        scanned.problems.append(
            f"{target}: package scan not completed: {one_line(str(code), 20)} "
            f"({one_line(str(reason), 60)})"
        )
    elif when is None or start is None or when <= start:
        scanned.problems.append(
            f"{target}: Inspector's last package scan ({when.isoformat() if when else 'none'}) "
            f"is not after the instance launched ({launched}): it is not this instance's scan"
        )
    else:
        scanned.scanned_at = when.isoformat()


def _findings(scanned: Scanned, pages: list[Mapping[str, Any]]) -> None:
    by_arn: dict[str, tuple[VulnFinding, Mapping[str, Any]]] = {}
    for index, page in enumerate(pages):
        for raw in page.get("findings") or []:
            where = f"evidence/{FINDINGS_FILE}: ${_key(scanned.target)}[{index}]"
            finding = _finding(scanned.target, raw, where, scanned.problems)
            if finding is None:
                continue
            seen = by_arn.get(finding.arn)
            if seen is None:
                by_arn[finding.arn] = (finding, raw)
            elif seen[1] != raw:
                scanned.problems.append(
                    f"{scanned.target}: Inspector lists finding {one_line(finding.arn, 120)} "
                    f"twice, differently ({seen[0].severity} and {finding.severity})"
                )
            else:
                scanned.warnings.append(
                    f"{scanned.target}: finding {one_line(finding.arn, 120)} listed twice"
                )
    scanned.findings = [f for f, _ in by_arn.values()]


def _finding(target: str, raw: Any, where: str, problems: list[str]) -> VulnFinding | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a finding that is not an object")
        return None
    arn, kind, status = raw.get("findingArn"), raw.get("type"), raw.get("status")
    details = _obj(raw.get("packageVulnerabilityDetails"))
    vid = details.get("vulnerabilityId")
    if not isinstance(arn, str) or not isinstance(vid, str) or not vid:
        problems.append(f"{where}: a finding without findingArn or vulnerabilityId")
        return None
    shown = one_line(vid, 64)
    if kind != PACKAGE_VULNERABILITY:
        problems.append(f"{target}: finding {shown} is {one_line(str(kind), 40)}, not asked for")
        return None
    if status not in ("ACTIVE", "SUPPRESSED"):
        problems.append(f"{target}: finding {shown} is {one_line(str(status), 20)}, not asked for")
        return None
    resources = [r for r in raw.get("resources") or [] if isinstance(r, dict)]
    ids = {r.get("id") for r in resources}
    if ids != {target} or any(r.get("type") != "AWS_EC2_INSTANCE" for r in resources):
        problems.append(
            f"{target}: finding {shown} is about another resource "
            f"({one_line(', '.join(sorted(str(i) for i in ids)), 80) or 'none'})"
        )
        return None
    score = raw.get("inspectorScore")
    return VulnFinding(
        target=target,
        arn=sys.intern(arn),
        vulnerability_id=vid,
        severity=str(raw.get("severity")),
        status=status,
        fix_available=raw.get("fixAvailable") if isinstance(raw.get("fixAvailable"), str) else None,
        score=float(score)
        if isinstance(score, int | float) and not isinstance(score, bool)
        else None,
        packages=tuple(
            _package(p) for p in details.get("vulnerablePackages") or [] if isinstance(p, dict)
        ),
        title=one_line(str(raw.get("title") or ""), MAX_TEXT),
    )


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _package(raw: Mapping[str, Any]) -> Package:
    def text(key: str) -> str:
        return one_line(str(raw.get(key) or ""), 128)

    fixed = raw.get("fixedInVersion")
    return Package(
        text("name"),
        text("version"),
        text("release"),
        text("arch"),
        one_line(fixed, 128) if isinstance(fixed, str) else None,
    )


def _reconcile(scanned: Scanned, pages: list[Mapping[str, Any]]) -> None:
    """The listed ACTIVE findings must be the ones Inspector counts for the instance."""
    target = scanned.target
    rows = [
        r.get("ec2InstanceAggregation")
        for p in pages
        for r in p.get("responses") or []
        if isinstance(r, dict)
    ]
    mine = [_obj(r) for r in rows if _obj(r).get("instanceId") == target]
    if any(_obj(r).get("instanceId") != target for r in rows):
        scanned.problems.append(f"{target}: Inspector's finding counts include other instances")
    active = [f for f in scanned.findings if f.status == "ACTIVE"]
    listed = {s: sum(f.severity.lower() == s for f in active) for s in COUNTED}
    if not mine:
        if active and pages:
            scanned.problems.append(
                f"{target}: {len(active)} active findings listed but Inspector counts none"
            )
        return
    if len(mine) > 1 and any(m != mine[0] for m in mine[1:]):
        scanned.problems.append(f"{target}: Inspector counts this instance twice, differently")
        return
    counts = _obj(mine[0].get("severityCounts"))
    network = mine[0].get("networkFindings") or 0
    total = counts.get("all")
    if not isinstance(total, int) or not isinstance(network, int):
        scanned.problems.append(f"{target}: Inspector's finding counts are not numbers")
        return
    said = {s: counts[s] for s in COUNTED if s in counts}
    listed = {s: listed[s] for s in said}
    if total - network != len(active) or said != listed:
        scanned.problems.append(
            f"{target}: Inspector counts {total - network} package findings "
            f"({_shown(said)}) but {len(active)} were listed ({_shown(listed)}): findings are "
            "missing or extra"
        )


def _shown(counts: Mapping[str, object]) -> str:
    return ", ".join(f"{k} {one_line(str(v), 12)}" for k, v in counts.items())
