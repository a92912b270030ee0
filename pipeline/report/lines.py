"""The texts every renderer shares, per section: its counts, its one-line summary and its
blocking lines (the console prints them, verdict.json and summary.md carry them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline import sections, vulns
from pipeline.gate import Finding, Outcome, Verdict
from pipeline.node import NodeResult, NodeVerdict
from pipeline.report.common import NOT_JUDGED, section_line, target_label
from pipeline.vulnpolicy import SEVERITIES
from pipeline.vulns import Judged, VulnVerdict

SECTION_NAMES = {
    sections.CIS: "CIS",
    sections.NODE: "Node readiness",
    sections.VULNERABILITIES: "Vulnerabilities",
}

# ---------------------------------------------------------------- CIS


def counts(verdict: Verdict) -> dict[str, int]:
    """The CIS section's counts (verdict.json's top-level ``counts``)."""
    return {
        "targets": len(verdict.targets),
        "checks": verdict.total,
        "passed": len(verdict.passed),
        "failed": len(verdict.failed_excepted) + len(verdict.failed_unexcepted),
        "failed_unexcepted": len(verdict.failed_unexcepted),
        "failed_excepted": len(verdict.failed_excepted),
        "skipped": len(verdict.skipped),
        "expired_exceptions": len(verdict.expired_exceptions),
        "unused_exceptions": len(verdict.unused_exceptions),
        "expiring_soon": len(verdict.expiring_soon),
    }


def cis_summary(verdict: Verdict) -> str:
    c = counts(verdict)
    return (
        f"{c['checks']} checks on {c['targets']} target(s): {c['passed']} passed, "
        f"{c['failed_unexcepted']} blocking, {c['failed_excepted']} excepted, "
        f"{c['skipped']} skipped"
    )


def cis_line(status: str, finding: Finding, verdict: Verdict) -> str:
    """Prowler-style: status, check, title, target, and why."""
    row = finding.result
    title = row.title or (finding.exception.title if finding.exception else "(no title)")
    target = target_label(verdict, row.target)
    return f"{status:<8} {row.check_id:<10} {title} ({target}): {finding.message}"


# ---------------------------------------------------------------- node


def node_counts(node: NodeVerdict) -> dict[str, int]:
    return {
        "targets": len(node.targets),
        "checks": len(node.passed) + len(node.failed),
        "passed": len(node.passed),
        "failed": len(node.failed),
        "not_run": sum(t.verdict is Outcome.ERROR for t in node.targets),
        "errors": len(node.errors),
    }


def node_summary(node: NodeVerdict) -> str:
    c = node_counts(node)
    text = (
        f"{c['checks']} checks on {c['targets']} instance(s): {c['passed']} passed, "
        f"{c['failed']} failed"
    )
    if c["not_run"]:
        text += f", {c['not_run']} instance(s) without a complete probe"
    return text + (f", {c['errors']} error(s)" if c["errors"] else "")


def node_line(result: NodeResult) -> str:
    """``NODE FAIL <instance> <check id>: <title>: saw <observed>`` (observed: untrusted)."""
    return section_line(
        f"NODE FAIL {result.target} {result.check_id}: {result.title}: saw {result.observed}"
    )


# ---------------------------------------------------------------- vulnerabilities


def vuln_counts(v: VulnVerdict) -> dict[str, int]:
    """Findings per severity (lower case, as Inspector counts them), then the judgement."""
    by_severity = severity_counts(t.counts for t in v.targets)
    return {
        "findings": sum(by_severity.values()),
        **by_severity,
        "suppressed": v.suppressed,
        "blocking": len(v.blocking),
        "excepted": len(v.excepted),
        "below_threshold": len(v.below),
        "expired_exceptions": len(v.expired_exceptions),
        "unused_exceptions": len(v.unused_exceptions),
        "expiring_soon": len(v.expiring_soon),
        "errors": len(v.errors),
    }


def severity_counts(per_target: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Every severity Inspector defines (zero when none), and ``other`` for any it does not."""
    out = {s.lower(): 0 for s in SEVERITIES}
    for found in per_target:
        for severity, n in found.items():
            key = severity.lower() if severity in SEVERITIES else "other"
            out[key] = out.get(key, 0) + n
    return out


def thresholds(v: VulnVerdict) -> str:
    """What blocks, per distinct policy threshold of the instances."""
    return "; ".join(dict.fromkeys(t.threshold for t in v.targets)) or "unknown"


def vuln_summary(v: VulnVerdict) -> str:
    c = vuln_counts(v)
    found = ", ".join(f"{s} {c[s.lower()]}" for s in SEVERITIES if c[s.lower()])
    found += f", other {c['other']}" if c.get("other") else ""
    return (
        f"{c['findings']} findings on {len(v.targets)} instance(s)"
        f"{f' ({found})' if found else ''}: {c['blocking']} blocking, {c['excepted']} excepted, "
        f"{c['suppressed']} suppressed; blocks {thresholds(v)}"
    )


def vuln_line(judged: Judged, status: str = "FAIL") -> str:
    """``VULN FAIL`` and ``vulns.blocking_line`` (vulnerability, package, installed and fixed
    version, severity, Inspector's score, why), as one line."""
    return section_line(f"VULN {status} {vulns.blocking_line(judged)}")


# ---------------------------------------------------------------- all three


def summaries(verdict: Verdict) -> dict[str, str]:
    """Each section's one-line counts; ``not judged`` for a section this run did not judge."""
    return {
        sections.CIS: cis_summary(verdict),
        sections.NODE: node_summary(verdict.node) if verdict.node else NOT_JUDGED,
        sections.VULNERABILITIES: vuln_summary(verdict.vulnerabilities)
        if verdict.vulnerabilities
        else NOT_JUDGED,
    }


def blocking_counts(verdict: Verdict) -> dict[str, int | None]:
    """How many lines block, per section; None: not judged."""
    return {
        sections.CIS: len(verdict.failed_unexcepted),
        sections.NODE: len(verdict.node.failed) if verdict.node else None,
        sections.VULNERABILITIES: len(verdict.vulnerabilities.blocking)
        if verdict.vulnerabilities
        else None,
    }


def outcome_text(outcome: Outcome | None) -> str:
    return outcome.value if outcome is not None else NOT_JUDGED
