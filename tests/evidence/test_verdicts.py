"""The sections a record states (pure): signed and read back, combined to the AMI's verdict,
checked for completeness and consistency, refused for release when one is missing or not PASS;
a section untrusted run-wide passes no AMI."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from pipeline import gate, node, policy, results, sections, vulns
from pipeline.catalog import Platform
from pipeline.evidence import statement, verdicts
from tests._complete import complete_rows, page
from tests._sections import stored
from tests.evidence.test_pure import _record
from tests.release.conftest import POLICY_DIR, passing_sections

GOOD = passing_sections()
A, B = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"


def test_the_statement_signs_the_sections_and_reads_them_back() -> None:
    doc = statement.build(replace(_record(), sections=GOOD))
    assert doc["predicate"]["annotations"]["sections"] == GOOD
    claims, problems = statement.read(doc)
    assert problems == [] and claims.sections == GOOD
    del doc["predicate"]["annotations"]["sections"]
    assert statement.read(doc)[0].sections is None


def _changed(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    where = doc
    for key in parents:
        where = where[key]
    if value is None:
        del where[last]
    else:
        where[last] = value
    return doc


CASES: dict[str, tuple[Any, str, list[str]]] = {
    "all-pass": (GOOD, "PASS", []),
    "none": (None, "PASS", ["the record states no sections"]),
    "node-missing": (_changed("node", None), "PASS", ["the record has no node section"]),
    "cis-no-verdict": (
        _changed("cis.verdict", "MAYBE"),
        "PASS",
        ["the record's CIS section has no verdict"],
    ),
    "contradiction": (
        _changed("vulnerabilities.verdict", "FAIL"),
        "PASS",
        ["(CIS PASS, node PASS, vulnerabilities FAIL) combine to FAIL, not its stated verdict"],
    ),
    "error-over-fail": (
        _changed("node.verdict", "ERROR") | {"cis": GOOD["cis"] | {"verdict": "FAIL"}},
        "ERROR",
        [],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sections_must_be_complete_and_combine_to_the_verdict(case: str) -> None:
    stated, verdict, want = CASES[case]
    got = verdicts.problems(stated, verdict)
    assert len(got) == len(want), got
    for line, expected in zip(got, want, strict=True):
        assert expected in line


@pytest.mark.parametrize(
    ("stated", "want"),
    [
        (GOOD, []),
        (None, ["the record has no CIS, node and vulnerabilities sections"]),
        (_changed("vulnerabilities", None), ["the record has no vulnerabilities section"]),
        (_changed("node.verdict", "FAIL"), ["the node section is FAIL, not PASS"]),
        (_changed("cis.verdict", "ERROR"), ["the CIS section is ERROR, not PASS"]),
    ],
)
def test_release_refuses_a_section_missing_or_not_passed(stated: Any, want: list[str]) -> None:
    got = verdicts.refusals(stated)
    assert [w in g for g, w in zip(got, want, strict=True)] == [True] * len(want), got


def test_a_judged_section_needs_its_evidence_an_error_one_does_not() -> None:
    every = {k for keys in verdicts.EVIDENCE.values() for k in keys}
    assert verdicts.missing_evidence(GOOD, every) == []
    lacking = verdicts.missing_evidence(GOOD, every - {"evidence/node-probe.json"})
    assert lacking == [
        "the record states a node section but names no evidence/node-probe.json among its inputs"
    ]
    errored = _changed("node.verdict", "ERROR")
    assert verdicts.missing_evidence(errored, every - {"evidence/node-probe.json"}) == []


def _two_targets(probe: Any) -> gate.Verdict:
    pages = [page(complete_rows(level=2, target=t)) for t in (A, B)]
    parsed = results.parse_document(pages, "results.json")
    chosen = gate.select_policies(parsed.rows, policy.load_all(policy.discover(POLICY_DIR)))
    day = date(2026, 11, 27)
    cis = gate.evaluate(parsed.rows, chosen, day, level=2, expected_targets=[A, B])
    docs = stored([A, B])
    found = vulns.evaluate(
        docs["coverage.json"],
        docs["findings.json"],
        docs["finding-counts.json"],
        launched=docs["launched.json"],
        policies=chosen,
        architectures={A: "x86_64", B: "x86_64"},
        today=day,
    )
    verdict = sections.combine(cis, node.evaluate(probe, [A, B]), found)
    return replace(
        verdict,
        context={"amis": [{"ami": "ami-a", "instance": A}, {"ami": "ami-b", "instance": B}]},
    )


def test_a_section_untrusted_run_wide_passes_no_ami() -> None:
    probe = stored([A, B])["node-probe.json"]
    both = _two_targets(probe)
    assert verdicts.ami_outcomes(both) == {"ami-a": "PASS", "ami-b": "PASS"}
    probe["invocations"][B] = {"Status": "Undeliverable", "ResponseCode": -1}
    one_lost = _two_targets(probe)
    assert verdicts.ami_outcomes(one_lost) == {"ami-a": "ERROR", "ami-b": "ERROR"}
    assert verdicts.for_target(one_lost, A, "")["node"]["passed"] == len(
        node.load_catalogue().checks
    )
    own = policy.load_all(policy.discover(POLICY_DIR))[Platform.AMAZON_LINUX_2023]
    mine = verdicts.for_target(both, A, own.vulnerabilities.digest)
    assert mine["vulnerabilities"]["policySha256"] == own.vulnerabilities.digest
    assert mine["vulnerabilities"]["counts"]["MEDIUM"] == 1
