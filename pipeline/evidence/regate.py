"""Re-run the three gates on a record's stored evidence, with the stored policy bytes, as of the
record's date (``invoke verify --regate``): does each signed section, and so the verdict, still
follow from its inputs? CIS from ``evidence/results.json``, node readiness from
``evidence/node-probe.json``, vulnerabilities from the coverage, findings, finding counts and
launch times with ``evidence/run.json``'s architectures.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline import commands, findings, gate, node, policy, results, sections, vulns
from pipeline.errors import PipelineError
from pipeline.evidence import statement, verdicts
from pipeline.evidence.record import Verification


@dataclass(frozen=True)
class SectionRegate:
    """One section as the record states it and as the stored evidence gives it now."""

    name: str
    stored: Mapping[str, Any] | None
    recomputed: Mapping[str, Any]

    @property
    def reproduced(self) -> bool:
        return self.stored is not None and dict(self.stored) == dict(self.recomputed)

    def line(self) -> str:
        label = verdicts.LABEL.get(self.name, self.name)
        return (
            f"{label}: the record says {verdicts.describe(self.stored)}, the stored evidence "
            f"gives {verdicts.describe(dict(self.recomputed))}"
        )


@dataclass(frozen=True)
class Regate:
    stored: str | None  # the verdict the record states for this AMI
    recomputed: str  # the gates' verdict for this AMI now, from the stored bytes
    problems: tuple[str, ...]
    sections: tuple[SectionRegate, ...] = ()  # CIS, node, vulnerabilities

    @property
    def mismatches(self) -> tuple[str, ...]:
        """One line per section the stored evidence does not reproduce."""
        return tuple(s.line() for s in self.sections if not s.reproduced)

    @property
    def reproduced(self) -> bool:
        return (
            self.stored == self.recomputed
            and not self.problems
            and bool(self.sections)
            and not self.mismatches
        )


def regate(verification: Verification) -> Regate:
    """Re-judge the stored evidence with the stored policy bytes as of the record's date.

    Judges exactly the bytes ``verify`` read and matched against the signed digests
    (``verification.inputs``): nothing is read again, so nothing can be swapped in between.
    """
    claims, _ = statement.read(verification.statement or {})
    if verification.record_uri is None or verification.time_verified is None:
        return Regate(claims.verdict, "ERROR", ("no record to re-gate",))
    return regate_bytes(
        verification.inputs,
        verification.ami_id,
        verification.time_verified,
        claims.verdict,
        claims.sections,
    )


def regate_bytes(
    stored: Mapping[str, bytes],
    ami_id: str,
    when: datetime,
    claimed: str | None,
    claimed_sections: Mapping[str, Any] | None = None,
) -> Regate:
    """The pure part of ``regate``: ``stored`` maps prefix-relative keys to their bytes;
    ``claimed_sections`` is the record's ``sections`` annotation.

    Stored evidence that cannot be judged is a problem of the record, never a crash.
    """
    try:
        return _regate(stored, ami_id, when, claimed, claimed_sections or {})
    except (PipelineError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return Regate(claimed, "ERROR", (f"the stored evidence cannot be re-gated: {exc}",))


def _regate(
    stored: Mapping[str, bytes],
    ami_id: str,
    when: datetime,
    claimed: str | None,
    claimed_sections: Mapping[str, Any],
) -> Regate:
    needed = ("evidence/results.json", "verdict.json")
    missing = [n for n in needed if n not in stored]
    if missing:
        return Regate(claimed, "ERROR", tuple(f"stored evidence lacks {n}" for n in missing))
    policies = {k: v for k, v in stored.items() if k.startswith("policies/")}
    with tempfile.TemporaryDirectory(prefix="cis-regate-") as tmp:
        folder = Path(tmp) / "evidence"
        folder.mkdir()
        for name, body in stored.items():
            if name.startswith("evidence/") and "/" not in name[len("evidence/") :]:
                (folder / name[len("evidence/") :]).write_bytes(body)
        parsed = results.load(folder / "results.json")
        evidence = commands.load_evidence(folder)
    loaded = {}
    for name, body in sorted(policies.items()):
        pol = policy.parse(body.decode("utf-8"), name)
        loaded[pol.platform] = pol
    chosen = gate.select_policies(parsed.rows, loaded)
    level = evidence.facts.level if evidence.facts else None
    today = when.date()
    cis = gate.evaluate(
        parsed.rows,
        chosen,
        today,
        level=level,
        facts=evidence.facts,
        expected_targets=parsed.targets,
        problems=parsed.problems,
        architectures=evidence.architectures,
    )
    amis = json.loads(stored["verdict.json"]).get("context", {}).get("amis", [])
    entries = [e for e in amis if isinstance(e, dict)] if isinstance(amis, list) else []
    instances = [str(e.get("instance")) for e in entries]
    node_verdict = node.evaluate(_json(stored, f"evidence/{node.EVIDENCE_FILE}"), instances)
    launched = _json(stored, f"evidence/{findings.LAUNCHED_FILE}")
    vuln_verdict = vulns.evaluate(
        _json(stored, f"evidence/{findings.COVERAGE_FILE}"),
        _json(stored, f"evidence/{findings.FINDINGS_FILE}"),
        _json(stored, f"evidence/{findings.COUNTS_FILE}"),
        launched=launched if isinstance(launched, dict) else {},
        policies={t: chosen[t] for t in instances if t in chosen},
        architectures=evidence.architectures,
        today=today,
    )
    verdict = replace(sections.combine(cis, node_verdict, vuln_verdict), context={"amis": entries})
    instance = next((str(e.get("instance")) for e in entries if e.get("ami") == ami_id), "")
    own = chosen.get(instance)
    now = verdicts.for_target(verdict, instance, own.vulnerabilities.digest if own else "")
    judged = tuple(
        SectionRegate(
            name,
            section if isinstance(section := claimed_sections.get(name), dict) else None,
            now[name],
        )
        for name in verdicts.ALL
    )
    return Regate(claimed, verdicts.combined(now), (), judged)


def _json(stored: Mapping[str, bytes], name: str) -> Any:
    """The stored JSON document, or None when the record has none (the gate says so)."""
    body = stored.get(name)
    return None if body is None else json.loads(body)
