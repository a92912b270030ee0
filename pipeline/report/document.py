"""verdict.json: the machine-readable verdict, its three sections and every line that blocks.

Its schema is ``pipeline/schemas/verdict.schema.json``. The top-level keys other than
``sections`` are the CIS section's, as they were before the node and vulnerability gates.
"""

from __future__ import annotations

from typing import Any

from pipeline import USER_AGENT, sections
from pipeline.findings import VulnFinding
from pipeline.gate import ExceptionNote, Finding, Verdict
from pipeline.node import NodeResult, NodeVerdict
from pipeline.report.common import SCHEMA_VERSION, display_path, exit_code, target_label
from pipeline.report.lines import (
    cis_line,
    counts,
    node_counts,
    node_line,
    severity_counts,
    vuln_counts,
    vuln_line,
)
from pipeline.vulns import Judged, VulnNote, VulnVerdict


def to_json(verdict: Verdict) -> dict[str, Any]:
    """The machine-readable verdict; its schema is ``pipeline/schemas/verdict.schema.json``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": USER_AGENT,
        "verdict": verdict.verdict.value,
        "exit_code": exit_code(verdict),
        "date": verdict.today.isoformat(),
        "level": f"LEVEL_{verdict.level}" if verdict.level else None,
        "totals_reconciled_as": verdict.reconciled_as,
        "counts": counts(verdict),
        "sections": {
            sections.CIS: _cis_section(verdict),
            sections.NODE: _node_section(verdict.node, verdict),
            sections.VULNERABILITIES: _vuln_section(verdict.vulnerabilities, verdict),
        },
        "policies": [
            {
                "source": display_path(p.source),
                "platform": p.platform.value,
                "benchmark": p.catalogue.label,
                "benchmarkVersion": p.benchmark_version,
                "sha256": p.sha256,
            }
            for p in verdict.policies
        ],
        "targets": [
            {
                "targetResourceId": t.target,
                "label": target_label(verdict, t.target),
                "platform": t.platform,
                "verdict": t.verdict.value,
                "counts": {
                    "passed": t.passed,
                    "failed": t.failed,
                    "blocking": t.blocking,
                    "skipped": t.skipped,
                },
                "errors": list(t.errors),
            }
            for t in verdict.targets
        ],
        "failed_unexcepted": [_finding(f) for f in verdict.failed_unexcepted],
        "failed_excepted": [_finding(f) for f in verdict.failed_excepted],
        "expired_exceptions": [_note(n) for n in verdict.expired_exceptions],
        "unused_exceptions": [_note(n) for n in verdict.unused_exceptions],
        "expiring_soon": [_note(n) for n in verdict.expiring_soon],
        "skipped": [_finding(f) for f in verdict.skipped],
        "errors": all_errors(verdict),
        "warnings": list(verdict.warnings),
        "context": dict(verdict.context),
    }


def all_errors(verdict: Verdict) -> list[str]:
    """Every section's reasons the run proves nothing, the node's and the package scan's named
    (each section's own are under ``sections``): an ERROR verdict always says why here."""
    found = list(verdict.errors)
    if verdict.node is not None:
        found += [f"node: {e}" for e in verdict.node.errors]
    if verdict.vulnerabilities is not None:
        found += [f"vulnerabilities: {e}" for e in verdict.vulnerabilities.errors]
    return found


# ---------------------------------------------------------------- CIS


def _cis_section(verdict: Verdict) -> dict[str, Any]:
    own = sections.section_outcomes(verdict)[sections.CIS]
    return {
        "verdict": own.value if own else None,
        "judged": True,
        "counts": counts(verdict),
        "blocking": [cis_line("FAIL", f, verdict) for f in verdict.failed_unexcepted],
        "errors": list(verdict.errors),
        "warnings": list(verdict.warnings),
    }


def _finding(finding: Finding) -> dict[str, Any]:
    row = finding.result
    item: dict[str, Any] = {
        "checkId": row.check_id,
        "title": row.title,
        "targetResourceId": row.target,
        "status": row.status.value,
        "level": row.level,
        "platform": row.platform,
        "message": finding.message,
    }
    if row.status_reason:
        item["statusReason"] = row.status_reason
    if row.finding_arn:
        item["findingArn"] = row.finding_arn
    if finding.exception is not None:
        exc = finding.exception
        item["exception"] = {
            "title": exc.title,
            "reason": exc.reason,
            "category": exc.category,
            "recommendation": exc.recommendation,
            "approved_by": exc.approved_by,
            "expires": exc.expires.isoformat(),
        }
    return item


def _note(note: ExceptionNote) -> dict[str, Any]:
    exc = note.exception
    return {
        "checkId": exc.check_id,
        "title": exc.title,
        "targetResourceId": note.target,
        "platform": note.policy.platform.value,
        "policy": display_path(note.policy.source),
        "path": f"$.exceptions[{exc.index}]",
        "expires": exc.expires.isoformat(),
        "approved_by": exc.approved_by,
        "reason": exc.reason,
    }


# ---------------------------------------------------------------- not judged


def _not_judged() -> dict[str, Any]:
    """A section this run did not judge (``invoke gate`` on a results file, or a run that
    stopped before the probe and the package scan): no verdict, nothing counted."""
    return {"verdict": None, "judged": False, "counts": {}, "blocking": [], "errors": []}


# ---------------------------------------------------------------- node


def _node_section(node: NodeVerdict | None, verdict: Verdict) -> dict[str, Any]:
    if node is None:
        return _not_judged()
    return {
        "verdict": node.verdict.value,
        "judged": True,
        "counts": node_counts(node),
        "blocking": [node_line(r) for r in node.failed],
        "errors": list(node.errors),
        "probe_sha256": node.probe_sha256,
        "catalogue_sha256": node.catalogue_sha256,
        "targets": [
            {
                "targetResourceId": t.target,
                "label": target_label(verdict, t.target),
                "verdict": t.verdict.value,
                "counts": {"passed": t.passed, "failed": t.failed},
                "errors": list(t.errors),
            }
            for t in node.targets
        ],
        "failed": [_node_result(r) for r in node.failed],
    }


def _node_result(result: NodeResult) -> dict[str, Any]:
    return {
        "targetResourceId": result.target,
        "checkId": result.check_id,
        "title": result.title,
        "observed": result.observed,
    }


# ---------------------------------------------------------------- vulnerabilities


def _vuln_section(v: VulnVerdict | None, verdict: Verdict) -> dict[str, Any]:
    if v is None:
        return _not_judged()
    return {
        "verdict": v.verdict.value,
        "judged": True,
        "counts": vuln_counts(v),
        "blocking": [vuln_line(j) for j in v.blocking],
        "errors": list(v.errors),
        "warnings": list(v.warnings),
        "targets": [
            {
                "targetResourceId": t.target,
                "label": target_label(verdict, t.target),
                "verdict": t.verdict.value,
                "threshold": t.threshold,
                "scannedAt": t.scanned_at,
                "counts": {
                    **severity_counts([t.counts]),
                    "suppressed": t.suppressed,
                    "blocking": t.blocking,
                },
                "errors": list(t.errors),
            }
            for t in v.targets
        ],
        "blocking_findings": [_judged(j) for j in v.blocking],
        "excepted": [_judged(j) for j in v.excepted],
        "expired_exceptions": [_vuln_note(n) for n in v.expired_exceptions],
        "unused_exceptions": [_vuln_note(n) for n in v.unused_exceptions],
        "expiring_soon": [_vuln_note(n) for n in v.expiring_soon],
        "policies": [{"source": display_path(s), "sha256": d} for s, d in v.policy_digests.items()],
    }


def _vuln_finding(f: VulnFinding) -> dict[str, Any]:
    return {
        "targetResourceId": f.target,
        "vulnerabilityId": f.vulnerability_id,
        "severity": f.severity,
        "inspectorScore": f.score,
        "fixAvailable": f.fix_available,
        "status": f.status,
        "title": f.title,
        "installed": f.installed,
        "fixedIn": f.fixed_in,
        "packages": [
            {"name": p.name, "installed": p.installed, "fixedInVersion": p.fixed_in}
            for p in f.packages
        ],
        "findingArn": f.arn,
    }


def _judged(judged: Judged) -> dict[str, Any]:
    item = {**_vuln_finding(judged.finding), "message": judged.message}
    if judged.exception is not None:
        exc = judged.exception
        item["exception"] = {
            "reason": exc.reason,
            "approved_by": exc.approved_by,
            "expires": exc.expires.isoformat(),
            "scope": exc.scope,
            "policy": display_path(judged.source or ""),
            "path": f"$.vulnerabilities.exceptions[{exc.index}]",
        }
    return item


def _vuln_note(note: VulnNote) -> dict[str, Any]:
    exc = note.exception
    return {
        "vulnerabilityId": exc.vulnerability_id,
        "scope": exc.scope,
        "policy": display_path(note.source),
        "path": f"$.vulnerabilities.exceptions[{exc.index}]",
        "expires": exc.expires.isoformat(),
        "approved_by": exc.approved_by,
        "reason": exc.reason,
    }
