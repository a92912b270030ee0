"""One verdict of three sections (pure): CIS, node readiness and package vulnerabilities.

The overall outcome is PASS only when all three pass: ERROR over FAIL over PASS. Each AMI's
outcome is the worst of its test instance's three (``pipeline.evidence.verdicts``).
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.gate import Verdict
from pipeline.node import NodeVerdict
from pipeline.outcome import Outcome, worst
from pipeline.vulns import VulnVerdict

CIS, NODE, VULNERABILITIES = "cis", "node", "vulnerabilities"
ALL = (CIS, NODE, VULNERABILITIES)


def combine(cis: Verdict, node: NodeVerdict | None, vulns: VulnVerdict | None) -> Verdict:
    """The CIS verdict with the two other sections, overall the worst of those judged. A section
    not judged (None: evidence without it, or a run that stopped before it) is left out here;
    ``pipeline.evidence`` refuses to promote an image whose record lacks a section."""
    own = cis.cis_verdict or cis.verdict
    parts = [own]
    parts += [node.verdict] if node is not None else []
    parts += [vulns.verdict] if vulns is not None else []
    return replace(cis, verdict=worst(parts), node=node, vulnerabilities=vulns, cis_verdict=own)


def section_outcomes(verdict: Verdict) -> dict[str, Outcome | None]:
    """Each section's outcome; None: not judged."""
    return {
        CIS: verdict.cis_verdict or verdict.verdict,
        NODE: verdict.node.verdict if verdict.node else None,
        VULNERABILITIES: verdict.vulnerabilities.verdict if verdict.vulnerabilities else None,
    }
