"""summary.md (the GitHub step summary): a table of the three sections, then each section's
details, what blocks first; every untrusted text made inert (``common.md``) and every list
capped (the full lists are in verdict.json)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline import sections
from pipeline.drift import summary_sections
from pipeline.gate import ExceptionNote, Finding, Verdict
from pipeline.report.common import (
    MARK,
    MAX_MARKDOWN_ROWS,
    NOT_JUDGED,
    capped,
    context_title,
    dedupe,
    display_path,
    group_by_check,
    md,
    target_label,
)
from pipeline.report.lines import SECTION_NAMES, blocking_counts, counts, summaries
from pipeline.report.markdown_sections import node_markdown, vuln_markdown


def to_markdown(verdict: Verdict) -> str:
    """GitHub step summary: the sections, then counts, blocking failures first, excepted with
    reasons, expiry; then node readiness and vulnerabilities."""
    c = counts(verdict)
    title = context_title(verdict)
    lines = [f"## {MARK[verdict.verdict]} CIS gate: {verdict.verdict.value}{md(title)}", ""]
    lines += section_table(verdict)
    lines += [
        f"{c['checks']} checks on {c['targets']} target(s): {c['passed']} passed, "
        f"{c['failed_unexcepted']} failed without exception, {c['failed_excepted']} failed "
        f"with an approved exception, {c['skipped']} skipped.",
        "",
    ]
    if verdict.errors:
        lines += ["### Not a trustworthy scan", ""]
        lines += [f"- {md(e)}" for e in verdict.errors[:MAX_MARKDOWN_ROWS]]
        if len(verdict.errors) > MAX_MARKDOWN_ROWS:
            lines.append(f"- … {len(verdict.errors) - MAX_MARKDOWN_ROWS} more in verdict.json")
        lines.append("")
    if len(verdict.targets) > 1 or verdict.context.get("target_labels"):
        lines += [
            "| Target | Verdict | Passed | Failed (blocking) | Skipped |",
            "|---|---|---|---|---|",
        ]
        for t in verdict.targets:
            lines.append(
                f"| {md(target_label(verdict, t.target))} | {MARK[t.verdict]} {t.verdict.value} "
                f"| {t.passed} | {t.failed} ({t.blocking}) | {t.skipped} |"
            )
        lines.append("")
    if verdict.failed_unexcepted:
        lines += [
            "### Blocking failures",
            "",
            "| Check | Title | Target | Why |",
            "|---|---|---|---|",
        ]
        lines += capped(
            (
                f"| {md(f.result.check_id)} | {md(f.result.title or '')} | "
                f"{md(target_label(verdict, f.result.target))} | {md(f.message)} |"
                for f in verdict.failed_unexcepted
            ),
            len(verdict.failed_unexcepted),
        )
    lines += _notes("Expired exceptions (they cover nothing)", verdict.expired_exceptions)
    if verdict.failed_excepted:
        lines += [
            "### Failures covered by an approved exception",
            "",
            "| Check | Title | Targets | Reason | Approved by | Expires |",
            "|---|---|---|---|---|---|",
        ]
        grouped = group_by_check(verdict.failed_excepted)
        lines += capped((_excepted_row(cid, fs) for cid, fs in grouped.items()), len(grouped))
    for heading, notes in (
        ("Exceptions expiring within 30 days", verdict.expiring_soon),
        ("Unused exceptions (candidates for removal)", verdict.unused_exceptions),
    ):
        lines += _notes(heading, notes)
    lines += summary_sections(verdict.context, md)
    if verdict.warnings:
        lines += ["### Warnings", ""] + [f"- {md(w)}" for w in verdict.warnings[:50]] + [""]
    if verdict.skipped:
        grouped = group_by_check(verdict.skipped)
        lines += [
            f"<details><summary>{len(verdict.skipped)} skipped checks "
            f"({len(grouped)} distinct)</summary>",
            "",
        ]
        lines += [
            f"- {md(cid)} {md(fs[0].result.title or '')} ({len(fs)} target(s))"
            for cid, fs in list(grouped.items())[:MAX_MARKDOWN_ROWS]
        ]
        lines += ["", "</details>", ""]
    lines += node_markdown(verdict)
    lines += vuln_markdown(verdict)
    return "\n".join(lines)


def section_table(verdict: Verdict) -> list[str]:
    """| Section | Verdict | Counts | Blocking |: one row per section, "not judged" included."""
    outcomes = sections.section_outcomes(verdict)
    texts = summaries(verdict)
    blocking = blocking_counts(verdict)
    lines = ["| Section | Verdict | Counts | Blocking |", "|---|---|---|---|"]
    for key in sections.ALL:
        outcome = outcomes[key]
        shown = f"{MARK[outcome]} {outcome.value}" if outcome is not None else NOT_JUDGED
        count = blocking[key]
        lines.append(
            f"| {SECTION_NAMES[key]} | {shown} | {md(texts[key]) if outcome else '—'} "
            f"| {count if count is not None else '—'} |"
        )
    return lines + [""]


def _notes(heading: str, notes: Sequence[ExceptionNote]) -> list[str]:
    if not notes:
        return []
    return (
        [f"### {heading}", ""]
        + [
            f"- {md(n.exception.check_id)} {md(n.exception.title)}: expires "
            f"{n.exception.expires}, approved by {md(n.exception.approved_by)} "
            f"({md(display_path(n.policy.source))})"
            for n in dedupe(notes)
        ]
        + [""]
    )


def _excepted_row(check_id: str, findings: list[Finding]) -> str:
    first = findings[0]
    exc = first.exception
    title = first.result.title or (exc.title if exc else "")
    approver, expires = (exc.approved_by, exc.expires.isoformat()) if exc else ("", "")
    return (
        f"| {md(check_id)} | {md(title)} | {len(findings)} | {md(first.message)} | "
        f"{md(approver)} | {expires} |"
    )
