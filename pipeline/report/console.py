"""The console lines and the GitHub annotations of the verdict: what blocks first, each line
one printable line (untrusted text never breaks or forges one), long lists capped."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline import github, sections
from pipeline.errors import one_line
from pipeline.gate import Verdict
from pipeline.node import NodeVerdict
from pipeline.report.common import (
    MAX_CONSOLE_FAILURES,
    dedupe,
    display_path,
    group_by_check,
    section_line,
    target_label,
)
from pipeline.report.lines import (
    cis_line,
    cis_summary,
    node_line,
    node_summary,
    outcome_text,
    vuln_line,
    vuln_summary,
)
from pipeline.vulns import VulnNote, VulnVerdict

KINDS = ("FAIL", "ERROR", "EXPIRED", "EXCEPTED", "EXPIRING", "WARNING", "UNUSED")


def console_lines(
    verdict: Verdict, *, max_rows: int = 100, max_failures: int = MAX_CONSOLE_FAILURES
) -> list[str]:
    """Prowler-style lines: status, check, title, target, and why; then the counts.

    What blocks comes first (FAIL: CIS, then NODE, then VULN, each capped at ``max_failures``
    with a count: a stock image fails 100+ checks; ERROR; EXPIRED), then what does not
    (EXCEPTED, EXPIRING, WARNING, UNUSED); then each section's counts and the verdict.
    """
    parts = [
        _cis(verdict, max_rows, max_failures),
        _node(verdict.node, max_rows, max_failures),
        _vulns(verdict.vulnerabilities, max_rows, max_failures),
    ]
    lines = [line for kind in KINDS for part in parts for line in part.get(kind, ())]
    if len(verdict.targets) > 1:
        for t in verdict.targets:
            lines.append(
                f"{t.verdict.value:<8} {target_label(verdict, t.target)}: {t.passed} passed, "
                f"{t.failed} failed ({t.blocking} blocking), {t.skipped} skipped"
            )
    lines += _section_lines(verdict, verdict.node, verdict.vulnerabilities)
    return [one_line(line) for line in lines]  # untrusted text never breaks or forges a line


def _cis(verdict: Verdict, max_rows: int, max_failures: int) -> dict[str, list[str]]:
    """The CIS section's lines by kind, as they were before the other sections existed."""
    out: dict[str, list[str]] = {kind: [] for kind in KINDS}
    blocking = verdict.failed_unexcepted
    out["FAIL"] = [cis_line("FAIL", f, verdict) for f in blocking[:max_failures]]
    if len(blocking) > max_failures:
        out["FAIL"].append(
            f"FAIL     … {len(blocking) - max_failures} more blocking failure(s) "
            f"({len(blocking)} in all: verdict.json, junit.xml, summary.md)"
        )
    out["ERROR"] = [f"ERROR    {message}" for message in verdict.errors[:max_rows]]
    if len(verdict.errors) > max_rows:
        out["ERROR"].append(f"ERROR    … {len(verdict.errors) - max_rows} more in verdict.json")
    out["EXPIRED"] = [
        f"EXPIRED  {n.exception.check_id:<10} exception expired {n.exception.expires}"
        for n in dedupe(verdict.expired_exceptions)
    ]
    for cid, fs in group_by_check(verdict.failed_excepted).items():
        title = fs[0].result.title or (fs[0].exception.title if fs[0].exception else "")
        where = target_label(verdict, fs[0].result.target) if len(fs) == 1 else f"{len(fs)} targets"
        out["EXCEPTED"].append(f"EXCEPTED {cid:<10} {title} ({where}): {fs[0].message}")
    out["EXPIRING"] = [
        f"EXPIRING {n.exception.check_id:<10} exception expires {n.exception.expires}"
        for n in dedupe(verdict.expiring_soon)
    ]
    out["WARNING"] = [f"WARNING  {message}" for message in verdict.warnings[:max_rows]]
    if len(verdict.warnings) > max_rows:
        out["WARNING"].append(f"WARNING  … {len(verdict.warnings) - max_rows} more in verdict.json")
    out["UNUSED"] = [
        f"UNUSED   {n.exception.check_id:<10} exception matched no failure"
        for n in verdict.unused_exceptions
    ]
    return out


def _node(node: NodeVerdict | None, max_rows: int, max_failures: int) -> dict[str, list[str]]:
    """``NODE FAIL`` per failed check, ``NODE ERROR`` per reason the probe proves nothing."""
    if node is None:
        return {}
    return {
        "FAIL": _capped("NODE FAIL", [node_line(r) for r in node.failed], max_failures),
        "ERROR": _capped("NODE ERROR", [f"NODE ERROR {e}" for e in node.errors], max_rows),
    }


def _vulns(v: VulnVerdict | None, max_rows: int, max_failures: int) -> dict[str, list[str]]:
    """``VULN FAIL`` per blocking finding (``vulns.blocking_line``), then the scan's errors, the
    exceptions' notes, the excepted findings and the warnings."""
    if v is None:
        return {}

    def note(n: VulnNote, what: str) -> str:
        exc = n.exception
        return f"{exc.vulnerability_id} exception {what} ({display_path(n.source)})"

    def dated(kind: str, notes: Sequence[VulnNote], verb: str) -> list[str]:
        return [f"VULN {kind} {note(n, f'{verb} {n.exception.expires}')}" for n in notes]

    expired = dated("EXPIRED", v.expired_exceptions, "expired")
    expiring = dated("EXPIRING", v.expiring_soon, "expires")
    unused = [f"VULN UNUSED {note(n, 'matched no finding')}" for n in v.unused_exceptions]
    excepted = [vuln_line(j, "EXCEPTED") for j in v.excepted]
    return {
        "FAIL": _capped("VULN FAIL", [vuln_line(j) for j in v.blocking], max_failures),
        "ERROR": _capped("VULN ERROR", [f"VULN ERROR {e}" for e in v.errors], max_rows),
        "EXPIRED": _capped("VULN EXPIRED", expired, max_rows),
        "EXCEPTED": _capped("VULN EXCEPTED", excepted, max_rows),
        "EXPIRING": _capped("VULN EXPIRING", expiring, max_rows),
        "WARNING": _capped("VULN WARNING", [f"VULN WARNING {w}" for w in v.warnings], max_rows),
        "UNUSED": _capped("VULN UNUSED", unused, max_rows),
    }


def _capped(prefix: str, lines: Sequence[str], limit: int) -> list[str]:
    """At most ``limit`` lines (each cut at ``MAX_SECTION_LINE``), then how many more."""
    shown = [section_line(line) for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"{prefix} … {len(lines) - limit} more ({len(lines)} in all: verdict.json)")
    return shown


def _section_lines(
    verdict: Verdict, node: NodeVerdict | None, vulns: VulnVerdict | None
) -> list[str]:
    """The CIS counts line (as before the other sections existed), the node and vulnerability
    counts, then the verdict over all three."""
    outcomes = sections.section_outcomes(verdict)
    cis = outcome_text(outcomes[sections.CIS])
    node_text = f"{outcome_text(node.verdict)}: {node_summary(node)}" if node else "not judged"
    vuln_text = f"{outcome_text(vulns.verdict)}: {vuln_summary(vulns)}" if vulns else "not judged"
    return [
        f"{cis}: {cis_summary(verdict)}",
        f"NODE     {node_text}",
        f"VULNS    {vuln_text}",
        f"{verdict.verdict.value}: CIS {cis}, node {outcome_text(outcomes[sections.NODE])}, "
        f"vulnerabilities {outcome_text(outcomes[sections.VULNERABILITIES])}",
    ]


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
            github.Command("error", one_line(cis_line("FAIL", f, verdict)), (("title", title),))
        )
    node, vulns = verdict.node, verdict.vulnerabilities
    if node is not None:
        out += [_error(e, "Node probe not trustworthy") for e in node.errors[:limit]]
        out += [
            _error(node_line(r), f"Node check {one_line(r.check_id, 80)} FAILED")
            for r in node.failed[:limit]
        ]
    if vulns is not None:
        out += [_error(e, "Package scan not trustworthy") for e in vulns.errors[:limit]]
        out += [
            _error(vuln_line(j), f"{one_line(j.finding.vulnerability_id, 80)} blocks")
            for j in vulns.blocking[:limit]
        ]
    for n in dedupe(verdict.expiring_soon):
        text = (
            f"{n.exception.check_id} expires {n.exception.expires} "
            f"({display_path(n.policy.source)})"
        )
        out.append(
            github.Command("warning", one_line(text), (("title", "CIS exception expiring"),))
        )
    if vulns is not None:
        for v in vulns.expiring_soon:
            text = (
                f"{v.exception.vulnerability_id} expires {v.exception.expires} "
                f"({display_path(v.source)})"
            )
            prop = (("title", "Vulnerability exception expiring"),)
            out.append(github.Command("warning", section_line(text), prop))
    return out


def _error(message: str, title: str) -> github.Command:
    return github.Command("error", section_line(message), (("title", title),))
