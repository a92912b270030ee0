"""summary.md's node readiness and vulnerabilities sections: the probe's and Inspector's text is
untrusted, so every value goes through ``common.md`` and every table is capped."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.findings import VulnFinding
from pipeline.gate import Verdict
from pipeline.report.common import (
    MARK,
    MAX_MARKDOWN_ROWS,
    NOT_JUDGED,
    capped,
    display_path,
    md,
    md_list,
    target_label,
)
from pipeline.report.lines import node_summary, vuln_summary
from pipeline.vulns import Judged, VulnNote


def node_markdown(verdict: Verdict) -> list[str]:
    node = verdict.node
    if node is None:
        return [
            "### Node readiness: not judged",
            "",
            f"Node readiness was {NOT_JUDGED} in this "
            "run: no node probe ran (a results file, or a run that stopped before it).",
            "",
        ]
    lines = [
        f"### Node readiness: {MARK[node.verdict]} {node.verdict.value}",
        "",
        f"{md(node_summary(node))}.",
        "",
    ]
    if node.errors:
        lines += ["#### Node probe not trustworthy", ""]
        lines += md_list(node.errors, len(node.errors))
    if len(node.targets) > 1 or verdict.context.get("target_labels"):
        lines += ["| Instance | Verdict | Passed | Failed |", "|---|---|---|---|"]
        lines += [
            f"| {md(target_label(verdict, t.target))} | {MARK[t.verdict]} {t.verdict.value} "
            f"| {t.passed} | {t.failed} |"
            for t in node.targets
        ]
        lines.append("")
    if node.failed:
        lines += [
            "#### Node checks that failed",
            "",
            "| Check | Title | Instance | Saw |",
            "|---|---|---|---|",
        ]
        lines += capped(
            (
                f"| {md(r.check_id)} | {md(r.title)} | {md(target_label(verdict, r.target))} "
                f"| {md(r.observed)} |"
                for r in node.failed
            ),
            len(node.failed),
        )
    return lines


def vuln_markdown(verdict: Verdict) -> list[str]:
    v = verdict.vulnerabilities
    if v is None:
        return [
            "### Vulnerabilities: not judged",
            "",
            f"Package vulnerabilities were {NOT_JUDGED} "
            "in this run: no package scan was collected.",
            "",
        ]
    lines = [
        f"### Vulnerabilities: {MARK[v.verdict]} {v.verdict.value}",
        "",
        f"{md(vuln_summary(v))}.",
        "",
    ]
    if v.errors:
        lines += ["#### Package scan not trustworthy", ""]
        lines += md_list(v.errors, len(v.errors))
    if len(v.targets) > 1 or verdict.context.get("target_labels"):
        lines += [
            "| Instance | Verdict | Findings (blocking, suppressed) | Blocks |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {md(target_label(verdict, t.target))} | {MARK[t.verdict]} {t.verdict.value} "
            f"| {sum(t.counts.values())} ({t.blocking}, {t.suppressed}) | {md(t.threshold)} |"
            for t in v.targets
        ]
        lines.append("")
    if v.blocking:
        lines += [
            "#### Blocking vulnerabilities",
            "",
            "| Vulnerability | Severity (score) | Installed → fixed in | Instance | Why |",
            "|---|---|---|---|---|",
        ]
        lines += capped((_blocking_row(j, verdict) for j in v.blocking), len(v.blocking))
    lines += _notes("Expired vulnerability exceptions (they cover nothing)", v.expired_exceptions)
    if v.excepted:
        lines += [
            "#### Vulnerabilities covered by an approved exception",
            "",
            "| Vulnerability | Installed | Instance | Reason | Approved by | Expires |",
            "|---|---|---|---|---|---|",
        ]
        lines += capped((_excepted_row(j, verdict) for j in v.excepted), len(v.excepted))
    lines += _notes("Vulnerability exceptions expiring within 30 days", v.expiring_soon)
    lines += _notes("Unused vulnerability exceptions (candidates for removal)", v.unused_exceptions)
    if v.warnings:
        lines += ["#### Vulnerability warnings", ""]
        lines += md_list(v.warnings, len(v.warnings), limit=50)
    return lines


def _severity(f: VulnFinding) -> str:
    return md(f"{f.severity} {f.score:g}" if f.score is not None else f.severity)


def _blocking_row(j: Judged, verdict: Verdict) -> str:
    f = j.finding
    suppressed = " (suppressed by an account rule)" if f.status == "SUPPRESSED" else ""
    return (
        f"| {md(f.vulnerability_id)} | {_severity(f)} | {md(f'{f.installed} → {f.fixed_in}')} "
        f"| {md(target_label(verdict, f.target))} | {md(j.message + suppressed)} |"
    )


def _excepted_row(j: Judged, verdict: Verdict) -> str:
    f, exc = j.finding, j.exception
    approver, expires = (exc.approved_by, exc.expires.isoformat()) if exc else ("", "")
    return (
        f"| {md(f.vulnerability_id)} | {md(f.installed)} | {md(target_label(verdict, f.target))} "
        f"| {md(j.message)} | {md(approver)} | {expires} |"
    )


def _notes(heading: str, notes: Sequence[VulnNote]) -> list[str]:
    if not notes:
        return []
    shown = [
        f"{n.exception.vulnerability_id} ({n.exception.scope}): expires {n.exception.expires}, "
        f"approved by {n.exception.approved_by} ({display_path(n.source)})"
        for n in notes
    ]
    return [f"#### {heading}", ""] + md_list(shown, len(shown), MAX_MARKDOWN_ROWS)
