"""junit.xml: the CIS section's testsuites (one per target, a testcase per check), then one
testsuite for node readiness (a testcase per check and instance) and one for vulnerabilities
(a failing testcase per blocking finding). Streamed: 250k rows stay cheap."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import IO

from pipeline.gate import Verdict
from pipeline.node import NodeResult, NodeVerdict
from pipeline.report.common import NOT_JUDGED, attr, context_title, target_label, text
from pipeline.report.lines import vuln_line
from pipeline.results import CheckResult
from pipeline.vulns import VulnVerdict

NODE_SUITE, VULN_SUITE = "node readiness", "vulnerabilities"


@dataclass
class _Suite:
    """One testsuite, rendered: its counts and its testcase elements."""

    name: str
    cases: list[str] = field(default_factory=list)
    failures: int = 0
    errors: int = 0
    skipped: int = 0

    def case(self, classname: str, name: str, inner: str = "") -> None:
        head = f"    <testcase classname={attr(classname)} name={attr(name)}"
        self.cases.append(f"{head}>{inner}</testcase>\n" if inner else f"{head}/>\n")

    def fail(self, classname: str, name: str, message: str) -> None:
        self.failures += 1
        self.case(classname, name, f"<failure message={attr(message)}/>")

    def error(self, classname: str, name: str, message: str) -> None:
        self.errors += 1
        self.case(classname, name, f"<error message={attr(message)}/>")

    def write(self, out: IO[str]) -> None:
        out.write(
            f'  <testsuite name={attr(self.name)} tests="{len(self.cases)}" '
            f'failures="{self.failures}" errors="{self.errors}" skipped="{self.skipped}">\n'
        )
        out.writelines(self.cases)
        out.write("  </testsuite>\n")


def write_junit(verdict: Verdict, out: IO[str]) -> None:
    """The three sections as testsuites; a section not judged is one skipped testcase."""
    extra = [_node_suite(verdict.node, verdict), _vuln_suite(verdict.vulnerabilities, verdict)]
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
    failures = len(verdict.failed_unexcepted) + sum(s.failures for s in extra)
    errors = sum(len(t.errors) for t in verdict.targets) or len(verdict.errors)
    tests = verdict.total + errors + sum(len(s.cases) for s in extra)
    skipped = len(verdict.skipped) + sum(s.skipped for s in extra)
    errors += sum(s.errors for s in extra)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        f"<testsuites name={attr('CIS gate' + context_title(verdict))} "
        f'tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}">\n'
    )
    for target in verdict.targets:
        cases = by_target.get(target.target, [])
        label = target_label(verdict, target.target)
        out.write(
            f'  <testsuite name={attr(label)} tests="{len(cases) + len(target.errors)}" '
            f'failures="{target.blocking}" errors="{len(target.errors)}" '
            f'skipped="{target.skipped}">\n'
        )
        for message in target.errors:
            out.write(f'    <testcase classname={attr(target.target)} name="scan trusted">')
            out.write(f"<error message={attr(message)}/></testcase>\n")
        for name, kind, message, body in cases:
            out.write(f"    <testcase classname={attr(target.target)} name={attr(name)}")
            if kind == "":
                out.write("/>\n")
            elif kind == "excepted":
                out.write(f"><system-out>{text(body)}</system-out></testcase>\n")
            else:
                out.write(f"><{kind} message={attr(message)}/></testcase>\n")
        out.write("  </testsuite>\n")
    in_targets = {e for t in verdict.targets for e in t.errors}  # a set: 250k errors stay cheap
    orphan = [e for e in verdict.errors if e not in in_targets]
    if orphan:
        out.write(f'  <testsuite name="scan" tests="{len(orphan)}" failures="0" ')
        out.write(f'errors="{len(orphan)}" skipped="0">\n')
        for message in orphan:
            out.write('    <testcase classname="scan" name="scan trusted">')
            out.write(f"<error message={attr(message)}/></testcase>\n")
        out.write("  </testsuite>\n")
    for suite in extra:
        suite.write(out)
    out.write("</testsuites>\n")


def _case_name(row: CheckResult) -> str:
    return f"{row.check_id} {row.title}" if row.title else row.check_id


def _not_judged(name: str) -> _Suite:
    suite = _Suite(name, skipped=1)
    suite.case(name, NOT_JUDGED, f"<skipped message={attr(f'{name}: {NOT_JUDGED} in this run')}/>")
    return suite


def _node_suite(node: NodeVerdict | None, verdict: Verdict) -> _Suite:
    """A testcase per check and instance; an instance whose probe did not run: its errors."""
    if node is None:
        return _not_judged(NODE_SUITE)
    suite = _Suite(NODE_SUITE)
    results: dict[str, list[NodeResult]] = defaultdict(list)
    for r in (*node.failed, *node.passed):
        results[r.target].append(r)
    for target in node.targets:
        label = target_label(verdict, target.target)
        for message in target.errors:
            suite.error(label, "node probe ran to the end", message)
        for r in results.get(target.target, []):
            name, saw = f"{r.check_id} {r.title}", f"saw {r.observed}"
            if r.passed:
                suite.case(label, name, f"<system-out>{text(saw)}</system-out>")
            else:
                suite.fail(label, name, saw)
    in_targets = {e for t in node.targets for e in t.errors}
    for message in node.errors:
        if message not in in_targets:
            suite.error(NODE_SUITE, "node probe ran to the end", message)
    return suite


def _vuln_suite(v: VulnVerdict | None, verdict: Verdict) -> _Suite:
    """Per instance: its scan's errors, a failing testcase per blocking finding, the excepted
    ones passing with the exception's reason, or one passing testcase when nothing blocks."""
    if v is None:
        return _not_judged(VULN_SUITE)
    suite = _Suite(VULN_SUITE)
    for target in v.targets:
        label = target_label(verdict, target.target)
        for message in target.errors:
            suite.error(label, "package scan trusted", message)
        for j in (j for j in v.blocking if j.finding.target == target.target):
            f = j.finding
            suite.fail(label, f"{f.vulnerability_id} {f.installed}", vuln_line(j))
        for j in (j for j in v.excepted if j.finding.target == target.target):
            f = j.finding
            body = f"<system-out>{text(vuln_line(j, 'EXCEPTED'))}</system-out>"
            suite.case(label, f"{f.vulnerability_id} {f.installed}", body)
        if not target.errors and not target.blocking:
            suite.case(label, f"nothing unexcepted at or above {target.threshold}")
    in_targets = {e for t in v.targets for e in t.errors}
    for message in v.errors:
        if message not in in_targets:
            suite.error(VULN_SUITE, "package scan trusted", message)
    return suite
