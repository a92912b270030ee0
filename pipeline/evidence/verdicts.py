"""The three sections one AMI's signed record states (pure): CIS, node readiness and package
vulnerabilities, each with its verdict and counts for that AMI's own test instance, and the
checks ``verify`` and ``promote`` make of them.

An AMI's verdict is the worst of its three (ERROR over FAIL over PASS). A section that is ERROR
for the run as a whole (an untrusted scan, a probe that did not come back) proves nothing for
any AMI: its PASS becomes ERROR. A section the run never judged is ERROR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline import gate, sections
from pipeline.outcome import Outcome, worst
from pipeline.vulnpolicy import SEVERITIES

ALL = sections.ALL  # cis, node, vulnerabilities
LABEL = {sections.CIS: "CIS", sections.NODE: "node", sections.VULNERABILITIES: "vulnerabilities"}
_OUTCOMES = {o.value for o in Outcome}
# Evidence a record must name among its inputs when it states a judged (PASS/FAIL) section:
# what ``verify --regate`` re-judges that section from.
EVIDENCE = {
    sections.CIS: ("evidence/results.json", "evidence/scan.json"),
    sections.NODE: ("evidence/node-probe.json",),
    sections.VULNERABILITIES: (
        "evidence/findings.json",
        "evidence/coverage.json",
        "evidence/finding-counts.json",
        "evidence/launched.json",
    ),
}


def _untrusted(section: Outcome, own: Outcome) -> Outcome:
    return Outcome.ERROR if section is Outcome.ERROR and own is Outcome.PASS else own


def for_target(verdict: gate.Verdict, target: str, vuln_policy_sha256: str) -> dict[str, Any]:
    """The ``sections`` annotation of the AMI tested on ``target`` (JSON-ready)."""
    return {
        sections.CIS: _cis(verdict, target),
        sections.NODE: _node(verdict, target),
        sections.VULNERABILITIES: _vulns(verdict, target, vuln_policy_sha256),
    }


def _cis(verdict: gate.Verdict, target: str) -> dict[str, Any]:
    own = next((t.verdict for t in verdict.targets if t.target == target), Outcome.ERROR)
    return {
        "verdict": _untrusted(verdict.cis_verdict or verdict.verdict, own).value,
        "passed": sum(r.target == target for r in verdict.passed),
        "failed": sum(f.result.target == target for f in verdict.failed_unexcepted),
        "excepted": sum(f.result.target == target for f in verdict.failed_excepted),
        "skipped": sum(f.result.target == target for f in verdict.skipped),
    }


def _node(verdict: gate.Verdict, target: str) -> dict[str, Any]:
    node = verdict.node
    if node is None:
        return {
            "verdict": Outcome.ERROR.value,
            "passed": 0,
            "failed": 0,
            "probeSha256": None,
            "catalogueSha256": None,
        }
    mine = next((t for t in node.targets if t.target == target), None)
    own = mine.verdict if mine is not None else Outcome.ERROR
    return {
        "verdict": _untrusted(node.verdict, own).value,
        "passed": mine.passed if mine else 0,
        "failed": mine.failed if mine else 0,
        "probeSha256": node.probe_sha256,
        "catalogueSha256": node.catalogue_sha256,
    }


def _vulns(verdict: gate.Verdict, target: str, policy_sha256: str) -> dict[str, Any]:
    found = verdict.vulnerabilities
    mine = next((t for t in found.targets if t.target == target), None) if found else None
    counts = dict(mine.counts) if mine is not None else {}
    own = mine.verdict if mine is not None else Outcome.ERROR
    return {
        "verdict": _untrusted(found.verdict if found else Outcome.ERROR, own).value,
        "counts": {s: int(counts.get(s, 0)) for s in SEVERITIES},
        "blocking": mine.blocking if mine else 0,
        "excepted": sum(j.finding.target == target for j in found.excepted) if found else 0,
        "suppressed": mine.suppressed if mine else 0,
        "policySha256": policy_sha256,
    }


def combined(stated: Mapping[str, Any]) -> str:
    """The AMI's verdict from its sections: the worst; a missing or unknown one is ERROR."""
    return worst(_outcome(stated.get(name)) for name in ALL).value


def _outcome(section: Any) -> Outcome:
    value = section.get("verdict") if isinstance(section, dict) else None
    return Outcome(value) if value in _OUTCOMES else Outcome.ERROR


def ami_outcomes(verdict: gate.Verdict, vuln_policy_sha256: str = "") -> dict[str, str]:
    """Each AMI's verdict (``context.amis``: AMI → its test instance), the worst of its three."""
    amis = verdict.context.get("amis", [])
    return {
        str(entry["ami"]): combined(for_target(verdict, str(entry["instance"]), vuln_policy_sha256))
        for entry in (amis if isinstance(amis, list) else [])
        if isinstance(entry, dict)
    }


def problems(stated: Any, verdict: str | None) -> list[str]:
    """Why a record's ``sections`` cannot stand: a section missing or without a verdict, or
    section verdicts that do not combine to the stated verdict."""
    if not isinstance(stated, dict):
        return [
            "the record states no sections (CIS, node, vulnerabilities): it proves neither node "
            "readiness nor the vulnerability gate"
        ]
    out = []
    for name in ALL:
        section = stated.get(name)
        if not isinstance(section, dict):
            out.append(f"the record has no {LABEL[name]} section")
        elif section.get("verdict") not in _OUTCOMES:
            out.append(f"the record's {LABEL[name]} section has no verdict (PASS, FAIL or ERROR)")
    if not out and combined(stated) != verdict:
        shown = ", ".join(f"{LABEL[n]} {stated[n]['verdict']}" for n in ALL)
        out.append(
            f"the record's sections ({shown}) combine to {combined(stated)}, not its stated "
            f"verdict {verdict}"
        )
    return out


def missing_evidence(stated: Any, input_names: set[str]) -> list[str]:
    """The evidence a judged (PASS or FAIL) section needs that the record's inputs lack."""
    if not isinstance(stated, dict):
        return []
    out = []
    for name in ALL:
        if _outcome(stated.get(name)) is Outcome.ERROR:
            continue  # proves nothing, so nothing has to back it
        for key in EVIDENCE[name]:
            if key not in input_names:
                out.append(
                    f"the record states a {LABEL[name]} section but names no {key} among its inputs"
                )
    return out


def refusals(stated: Any) -> list[str]:
    """Why a record's sections do not let the image be released: one missing or not PASS."""
    if not isinstance(stated, dict):
        return [
            "the record has no CIS, node and vulnerabilities sections: validated before node "
            "readiness and the vulnerability gate were judged: validate again"
        ]
    out = []
    for name in ALL:
        section = stated.get(name)
        if not isinstance(section, dict):
            out.append(f"the record has no {LABEL[name]} section: validate again")
        elif section.get("verdict") != Outcome.PASS.value:
            out.append(f"the {LABEL[name]} section is {_outcome(section).value}, not PASS")
    return out


def describe(section: Any) -> str:
    """One section as a short text: its verdict and counts."""
    if not isinstance(section, dict):
        return "missing"
    parts = []
    for key, value in section.items():
        if key == "verdict":
            continue
        if isinstance(value, dict):
            value = " ".join(f"{k} {v}" for k, v in value.items() if v)
        elif isinstance(value, str) and len(value) == 64:
            value = value[:12]
        parts.append(f"{key} {value}")
    return f"{section.get('verdict')} ({', '.join(parts)})"
