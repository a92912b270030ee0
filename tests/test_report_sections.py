"""The three sections in every report, driven by data: one file per case in
tests/cases/report_sections/ (a regression = a file). Each case stores the documents the node
probe and Inspector's package scan leave in ``--out/evidence``, runs the real gates on them,
combines the verdict as ``validate`` does, and checks what verdict.json (against its schema),
the console, summary.md, junit.xml and the GitHub annotations say."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pipeline import node, report
from pipeline.schema import schema_problems
from tests import _sectioncase as sectioncase
from tests._dates import VALID_DAY

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests/cases/report_sections").glob("*.json"))


def _subset(got: Any, want: Any) -> bool:
    """Whether ``want`` (objects: some keys; lists: item by item) is in ``got``."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(
            k in got and _subset(got[k], v) for k, v in want.items()
        )
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_subset, got, want))
    return bool(got == want)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_report_sections_case(path: Path) -> None:
    case = json.loads(path.read_text())
    want = case["expect"]
    verdict = sectioncase.build(case, VALID_DAY)
    data = report.to_json(verdict)
    assert schema_problems(data, "verdict.schema.json", path.name) == []
    json.dumps(data)  # every value serialises as it is
    got_sections = data["sections"]
    assert data["verdict"] == want["verdict"], data["sections"]
    assert data["exit_code"] == {"PASS": 0, "FAIL": 3, "ERROR": 4}[want["verdict"]]
    for name, outcome in want["sections"].items():
        section = got_sections[name]
        assert section["verdict"] == outcome, f"{name}: GOT {section}"
        assert section["judged"] is (outcome is not None)
    for name, counts in want.get("counts", {}).items():
        assert _subset(got_sections[name]["counts"], counts), got_sections[name]["counts"]
    for name, needles in want.get("blocking", {}).items():
        lines = got_sections[name]["blocking"]
        assert bool(lines) is bool(needles), f"{name}: GOT {lines}"
        for needle in needles:
            assert any(needle in line for line in lines), f"{name}: {needle!r} not in {lines}"
    for name, needles in want.get("errors", {}).items():
        for needle in needles:
            assert any(needle in e for e in got_sections[name]["errors"]), got_sections[name]
    for key, section, field in (
        ("node_failed", "node", "failed"),
        ("blocking_findings", "vulnerabilities", "blocking_findings"),
        ("excepted", "vulnerabilities", "excepted"),
    ):
        if key in want:
            assert _subset(got_sections[section][field], want[key]), got_sections[section][field]

    console = report.console_lines(verdict)
    text = "\n".join(console)
    for needle in want.get("console", []):
        assert needle in text, f"{needle!r} not in:\n{text}"
    for needle in want.get("console_absent", []):
        assert needle not in text, f"{needle!r} in:\n{text}"
    for prefix in want.get("console_prefix", []):
        assert any(line.startswith(prefix) for line in console), text
    assert console[-1].startswith(f"{want['verdict']}: CIS ")

    markdown = report.to_markdown(verdict)
    head = markdown.split("\n\n")[1].splitlines()
    assert head[0] == "| Section | Verdict | Counts | Blocking |"
    assert [row.split(" | ")[0] for row in head[2:]] == [
        "| CIS",
        "| Node readiness",
        "| Vulnerabilities",
    ]
    for needle in want.get("markdown", []):
        assert needle in markdown, f"{needle!r} not in:\n{markdown}"

    buf = io.StringIO()
    report.write_junit(verdict, buf)
    root = ET.fromstring(buf.getvalue().encode())
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    for name, attrs in want.get("junit", {}).items():
        for key, value in attrs.items():
            assert suites[name].get(key) == str(value), (
                f"{name}.{key}: {ET.tostring(suites[name])!r}"
            )
    for key in ("tests", "failures", "errors", "skipped"):  # the totals are the suites' sums
        assert int(root.get(key) or 0) == sum(int(s.get(key) or 0) for s in suites.values()), key

    if "annotations" in want:
        cis = len(verdict.errors[:50]) + len(verdict.failed_unexcepted[:50])
        assert len(report.github_annotations(verdict)) == cis + want["annotations"]


def test_node_and_vulnerability_lines_are_capped_like_cis_fail_lines() -> None:
    """30 blocking findings and every node check failed on two instances: the console shows
    ``MAX_CONSOLE_FAILURES`` of each and a count, summary.md caps its tables, verdict.json
    and junit.xml keep every one."""
    fail_all = {c.id: "broken" for c in node.load_catalogue().checks}
    findings = [
        {"id": f"CVE-2026-{i:04d}", "severity": "CRITICAL", "score": 9.0} for i in range(30)
    ]
    case = {
        "cis": {"targets": ["i-1", "i-2"]},
        "node": {"targets": {"i-1": {"fail": fail_all}, "i-2": {"fail": fail_all}}},
        "vulnerabilities": {"policy": {}, "targets": {"i-1": {"findings": findings}, "i-2": {}}},
    }
    verdict = sectioncase.build(case, VALID_DAY)
    console = report.console_lines(verdict)
    checks = 2 * len(fail_all)
    node_fail = [x for x in console if x.startswith("NODE FAIL")]
    vuln_fail = [x for x in console if x.startswith("VULN FAIL")]
    more = report.MAX_CONSOLE_FAILURES
    assert len(node_fail) == len(vuln_fail) == more + 1
    assert node_fail[-1] == f"NODE FAIL … {checks - more} more ({checks} in all: verdict.json)"
    assert vuln_fail[-1] == f"VULN FAIL … {30 - more} more ({30} in all: verdict.json)"
    data = report.to_json(verdict)
    assert len(data["sections"]["node"]["blocking"]) == checks
    assert len(data["sections"]["vulnerabilities"]["blocking_findings"]) == 30
    markdown = report.to_markdown(verdict)
    assert "| Node readiness | ❌ FAIL |" in markdown and f"| {checks} |" in markdown
    buf = io.StringIO()
    report.write_junit(verdict, buf)
    suites = {s.get("name"): s for s in ET.fromstring(buf.getvalue()).findall("testsuite")}
    assert suites["node readiness"].get("failures") == str(checks)
    assert suites["vulnerabilities"].get("failures") == "30"
