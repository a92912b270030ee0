"""Pure renderers of the one verdict model: verdict.json, junit.xml, summary.md, console table.

Nothing here decides anything; it only presents ``pipeline.gate.Verdict``.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from pipeline import USER_AGENT, github
from pipeline.drift import summary_sections
from pipeline.errors import one_line
from pipeline.gate import ExceptionNote, Finding, Outcome, Verdict
from pipeline.results import CheckResult

SCHEMA_VERSION = 1
MAX_MARKDOWN_ROWS = 200
MAX_CELL_CHARS = 500  # untrusted text in one Markdown cell or list item
MAX_CONSOLE_FAILURES = 25  # FAIL lines on the console; the reports list every one
_MARK = {Outcome.PASS: "✅", Outcome.FAIL: "❌", Outcome.ERROR: "⚠️"}


def target_label(verdict: Verdict, target: str) -> str:
    """How a target is named to people: its AMI (from the run context) and instance ID."""
    labels = verdict.context.get("target_labels")
    if isinstance(labels, Mapping) and target in labels:
        return f"{labels[target]} ({target})"
    return target


def display_path(source: str, base: str | None = None) -> str:
    """A policy file as reports name it: relative to ``base`` (default: the working directory,
    the repository root in CI) when under it, else its file name; never this machine's
    absolute path. Pure path arithmetic, no file system access."""
    root = os.path.abspath(base if base is not None else os.getcwd())
    path = os.path.normpath(os.path.join(root, source))
    if os.path.commonpath([root, path]) == root and path != root:
        return os.path.relpath(path, root).replace(os.sep, "/")
    return os.path.basename(path) or source


# ---------------------------------------------------------------- verdict.json


def _exit_code(verdict: Verdict) -> int:
    """The code the process exits with: an aborted run's (1, 2, 130, 143) else the verdict's."""
    code = verdict.context.get("exit_code")
    return code if isinstance(code, int) else int(verdict.exit_code)


def to_json(verdict: Verdict) -> dict[str, Any]:
    """The machine-readable verdict; its schema is ``pipeline/schemas/verdict.schema.json``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": USER_AGENT,
        "verdict": verdict.verdict.value,
        "exit_code": _exit_code(verdict),
        "date": verdict.today.isoformat(),
        "level": f"LEVEL_{verdict.level}" if verdict.level else None,
        "totals_reconciled_as": verdict.reconciled_as,
        "counts": counts(verdict),
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
        "errors": list(verdict.errors),
        "warnings": list(verdict.warnings),
        "context": dict(verdict.context),
    }


def counts(verdict: Verdict) -> dict[str, int]:
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


# ---------------------------------------------------------------- junit.xml


def write_junit(verdict: Verdict, out: IO[str]) -> None:
    """A testsuite per target, a testcase per check; streamed (250k rows stay cheap)."""
    by_target: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    # (name, kind, message, body) per testcase; kind: "" pass, failure, skipped, excepted
    for row in verdict.passed:
        by_target[row.target].append((_case_name(row), "", "", ""))
    for f in verdict.skipped:
        by_target[f.result.target].append((_case_name(f.result), "skipped", f.message, ""))
    for f in verdict.failed_excepted:
        body = f"FAILED, excepted: {f.message}"
        by_target[f.result.target].append((_case_name(f.result), "excepted", "", body))
    for f in verdict.failed_unexcepted:
        by_target[f.result.target].append((_case_name(f.result), "failure", f.message, ""))
    failures = len(verdict.failed_unexcepted)
    errors = sum(len(t.errors) for t in verdict.targets) or len(verdict.errors)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        f"<testsuites name={_attr('CIS gate' + context_title(verdict))} "
        f'tests="{verdict.total + errors}" '
        f'failures="{failures}" errors="{errors}" skipped="{len(verdict.skipped)}">\n'
    )
    for target in verdict.targets:
        cases = by_target.get(target.target, [])
        label = target_label(verdict, target.target)
        out.write(
            f'  <testsuite name={_attr(label)} tests="{len(cases) + len(target.errors)}" '
            f'failures="{target.blocking}" errors="{len(target.errors)}" '
            f'skipped="{target.skipped}">\n'
        )
        for message in target.errors:
            out.write(f'    <testcase classname={_attr(target.target)} name="scan trusted">')
            out.write(f"<error message={_attr(message)}/></testcase>\n")
        for name, kind, message, body in cases:
            out.write(f"    <testcase classname={_attr(target.target)} name={_attr(name)}")
            if kind == "":
                out.write("/>\n")
            elif kind == "excepted":
                out.write(f"><system-out>{_text(body)}</system-out></testcase>\n")
            else:
                out.write(f"><{kind} message={_attr(message)}/></testcase>\n")
        out.write("  </testsuite>\n")
    in_targets = {e for t in verdict.targets for e in t.errors}  # a set: 250k errors stay cheap
    orphan = [e for e in verdict.errors if e not in in_targets]
    if orphan:
        out.write(f'  <testsuite name="scan" tests="{len(orphan)}" failures="0" ')
        out.write(f'errors="{len(orphan)}" skipped="0">\n')
        for message in orphan:
            out.write('    <testcase classname="scan" name="scan trusted">')
            out.write(f"<error message={_attr(message)}/></testcase>\n")
        out.write("  </testsuite>\n")
    out.write("</testsuites>\n")


# XML 1.0 allows tab, LF, CR and these ranges; anything else (other C0 controls, U+FFFE/FFFF,
# lone surrogates) would make junit.xml unparsable, so it is shown as a visible escape.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _attr(text: str) -> str:
    """A quoted XML attribute value for any text (``quoteattr`` escapes CR, LF and tab)."""
    return quoteattr(_xml_safe(text))


def _text(text: str) -> str:
    return escape(_xml_safe(text))


def _case_name(row: CheckResult) -> str:
    return f"{row.check_id} {row.title}" if row.title else row.check_id


# ---------------------------------------------------------------- summary.md


def to_markdown(verdict: Verdict) -> str:
    """GitHub step summary: counts, blocking failures first, excepted with reasons, expiry."""
    c = counts(verdict)
    title = context_title(verdict)
    lines = [
        f"## {_MARK[verdict.verdict]} CIS gate: {verdict.verdict.value}{_md(title)}",
        "",
        f"{c['checks']} checks on {c['targets']} target(s): {c['passed']} passed, "
        f"{c['failed_unexcepted']} failed without exception, {c['failed_excepted']} failed "
        f"with an approved exception, {c['skipped']} skipped.",
        "",
    ]
    if verdict.errors:
        lines += ["### Not a trustworthy scan", ""]
        lines += [f"- {_md(e)}" for e in verdict.errors[:MAX_MARKDOWN_ROWS]]
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
                f"| {_md(target_label(verdict, t.target))} | {_MARK[t.verdict]} {t.verdict.value} "
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
        lines += _capped(
            (
                f"| {_md(f.result.check_id)} | {_md(f.result.title or '')} | "
                f"{_md(target_label(verdict, f.result.target))} | {_md(f.message)} |"
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
        grouped = _group_by_check(verdict.failed_excepted)
        lines += _capped((_excepted_row(cid, fs) for cid, fs in grouped.items()), len(grouped))
    for heading, notes in (
        ("Exceptions expiring within 30 days", verdict.expiring_soon),
        ("Unused exceptions (candidates for removal)", verdict.unused_exceptions),
    ):
        lines += _notes(heading, notes)
    lines += summary_sections(verdict.context, _md)
    if verdict.warnings:
        lines += ["### Warnings", ""] + [f"- {_md(w)}" for w in verdict.warnings[:50]] + [""]
    if verdict.skipped:
        grouped = _group_by_check(verdict.skipped)
        lines += [
            f"<details><summary>{len(verdict.skipped)} skipped checks "
            f"({len(grouped)} distinct)</summary>",
            "",
        ]
        lines += [
            f"- {_md(cid)} {_md(fs[0].result.title or '')} ({len(fs)} target(s))"
            for cid, fs in list(grouped.items())[:MAX_MARKDOWN_ROWS]
        ]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def _notes(heading: str, notes: Sequence[ExceptionNote]) -> list[str]:
    if not notes:
        return []
    return (
        [f"### {heading}", ""]
        + [
            f"- {_md(n.exception.check_id)} {_md(n.exception.title)}: expires "
            f"{n.exception.expires}, approved by {_md(n.exception.approved_by)} "
            f"({_md(display_path(n.policy.source))})"
            for n in _dedupe(notes)
        ]
        + [""]
    )


def _excepted_row(check_id: str, findings: list[Finding]) -> str:
    first = findings[0]
    exc = first.exception
    title = first.result.title or (exc.title if exc else "")
    approver, expires = (exc.approved_by, exc.expires.isoformat()) if exc else ("", "")
    return (
        f"| {_md(check_id)} | {_md(title)} | {len(findings)} | {_md(first.message)} | "
        f"{_md(approver)} | {expires} |"
    )


def context_title(verdict: Verdict) -> str:
    run_id = verdict.context.get("run_id")
    title = f" (run {run_id})" if run_id else ""
    return title + (" on the local AWS, not a real account" if verdict.context.get("local") else "")


def _group_by_check(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        grouped[f.result.check_id].append(f)
    return dict(grouped)


def _dedupe(notes: Iterable[ExceptionNote]) -> list[ExceptionNote]:
    seen: set[tuple[str, str]] = set()
    out = []
    for n in notes:
        key = (n.policy.source, n.exception.check_id)
        if key not in seen:
            seen.add(key)
            out.append(n)
    return out


def _capped(rows: Iterator[str] | Iterable[str], total: int) -> list[str]:
    out = [r for _, r in zip(range(MAX_MARKDOWN_ROWS), rows, strict=False)]
    if total > MAX_MARKDOWN_ROWS:
        out.append(f"| … | {total - MAX_MARKDOWN_ROWS} more in verdict.json | | |")
    return out + [""]


_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-!|~$^@:])")


def _md(text: str) -> str:
    """Untrusted text as inert Markdown on one line: no HTML (``<script>``, ``<details>``,
    comments), no links, images, code spans, headings, table breaks or mentions; control
    characters shown as escapes and at most ``MAX_CELL_CHARS`` characters."""
    safe = one_line(text, MAX_CELL_CHARS)
    safe = safe.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCTUATION.sub(r"\\\1", safe)


# ---------------------------------------------------------------- console


def console_lines(
    verdict: Verdict, *, max_rows: int = 100, max_failures: int = MAX_CONSOLE_FAILURES
) -> list[str]:
    """Prowler-style lines: status, check, title, target, and why; then the counts.

    What blocks comes first (FAIL, capped at ``max_failures`` with a count: a stock image fails
    100+ checks; ERROR; EXPIRED), then what does not (EXCEPTED, EXPIRING, WARNING, UNUSED).
    """
    lines: list[str] = []
    blocking = verdict.failed_unexcepted
    for f in blocking[:max_failures]:
        lines.append(_line("FAIL", f, verdict))
    if len(blocking) > max_failures:
        lines.append(
            f"FAIL     … {len(blocking) - max_failures} more blocking failure(s) "
            f"({len(blocking)} in all: verdict.json, junit.xml, summary.md)"
        )
    for message in verdict.errors[:max_rows]:
        lines.append(f"ERROR    {message}")
    if len(verdict.errors) > max_rows:
        lines.append(f"ERROR    … {len(verdict.errors) - max_rows} more in verdict.json")
    for n in _dedupe(verdict.expired_exceptions):
        lines.append(f"EXPIRED  {n.exception.check_id:<10} exception expired {n.exception.expires}")
    grouped = _group_by_check(verdict.failed_excepted)
    for cid, fs in grouped.items():
        title = fs[0].result.title or (fs[0].exception.title if fs[0].exception else "")
        where = target_label(verdict, fs[0].result.target) if len(fs) == 1 else f"{len(fs)} targets"
        lines.append(f"EXCEPTED {cid:<10} {title} ({where}): {fs[0].message}")
    for n in _dedupe(verdict.expiring_soon):
        lines.append(f"EXPIRING {n.exception.check_id:<10} exception expires {n.exception.expires}")
    for message in verdict.warnings[:max_rows]:
        lines.append(f"WARNING  {message}")
    if len(verdict.warnings) > max_rows:
        lines.append(f"WARNING  … {len(verdict.warnings) - max_rows} more in verdict.json")
    for n in verdict.unused_exceptions:
        lines.append(f"UNUSED   {n.exception.check_id:<10} exception matched no failure")
    c = counts(verdict)
    if len(verdict.targets) > 1:
        for t in verdict.targets:
            lines.append(
                f"{t.verdict.value:<8} {target_label(verdict, t.target)}: {t.passed} passed, "
                f"{t.failed} failed ({t.blocking} blocking), {t.skipped} skipped"
            )
    lines.append(
        f"{verdict.verdict.value}: {c['checks']} checks on {c['targets']} target(s): "
        f"{c['passed']} passed, {c['failed_unexcepted']} blocking, {c['failed_excepted']} "
        f"excepted, {c['skipped']} skipped"
    )
    return [one_line(line) for line in lines]  # untrusted text never breaks or forges a line


def _line(status: str, finding: Finding, verdict: Verdict) -> str:
    row = finding.result
    title = row.title or (finding.exception.title if finding.exception else "(no title)")
    target = target_label(verdict, row.target)
    return f"{status:<8} {row.check_id:<10} {title} ({target}): {finding.message}"


# ---------------------------------------------------------------- GitHub annotations


def github_annotations(verdict: Verdict, *, limit: int = 50) -> list[github.Command]:
    """``::error``/``::warning`` workflow commands for blocking checks and trust problems.

    Issue them with ``github.emit`` (never print them): it escapes them and keeps untrusted
    output around them from being read as commands.
    """
    out = [
        github.Command("error", one_line(e), (("title", "CIS scan not trustworthy"),))
        for e in verdict.errors[:limit]
    ]
    for f in verdict.failed_unexcepted[:limit]:
        title = one_line(f"CIS {f.result.check_id} FAILED")
        out.append(
            github.Command("error", one_line(_line("FAIL", f, verdict)), (("title", title),))
        )
    for n in _dedupe(verdict.expiring_soon):
        text = (
            f"{n.exception.check_id} expires {n.exception.expires} "
            f"({display_path(n.policy.source)})"
        )
        out.append(
            github.Command("warning", one_line(text), (("title", "CIS exception expiring"),))
        )
    return out
