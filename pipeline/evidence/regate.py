"""Re-run the gate on a record's stored evidence, with the stored policy bytes, as of the
record's date (``invoke verify --regate``): does the signed verdict still follow from its inputs?
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pipeline import commands, gate, policy, results
from pipeline.errors import PipelineError
from pipeline.evidence import statement, store
from pipeline.evidence.record import Verification


@dataclass(frozen=True)
class Regate:
    stored: str | None  # the verdict the record states for this AMI
    recomputed: str  # the gate's verdict for this AMI now, from the stored bytes
    problems: tuple[str, ...]

    @property
    def reproduced(self) -> bool:
        return self.stored == self.recomputed and not self.problems


def regate(verification: Verification) -> Regate:
    """Re-judge the stored evidence with the stored policy bytes as of the record's date.

    Judges exactly the bytes ``verify`` read and matched against the signed digests
    (``verification.inputs``): nothing is read again, so nothing can be swapped in between.
    """
    claims, _ = statement.read(verification.statement or {})
    if verification.record_uri is None or verification.time_verified is None:
        return Regate(claims.verdict, "ERROR", ("no record to re-gate",))
    return regate_bytes(
        verification.inputs, verification.ami_id, verification.time_verified, claims.verdict
    )


def regate_bytes(
    stored: Mapping[str, bytes], ami_id: str, when: datetime, claimed: str | None
) -> Regate:
    """The pure part of ``regate``: ``stored`` maps prefix-relative keys to their bytes.

    Stored evidence that cannot be judged is a problem of the record, never a crash.
    """
    try:
        return _regate(stored, ami_id, when, claimed)
    except (PipelineError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return Regate(claimed, "ERROR", (f"the stored evidence cannot be re-gated: {exc}",))


def _regate(
    stored: Mapping[str, bytes], ami_id: str, when: datetime, claimed: str | None
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
    verdict = gate.evaluate(
        parsed.rows,
        chosen,
        when.date(),
        level=level,
        facts=evidence.facts,
        expected_targets=parsed.targets,
        problems=parsed.problems,
        architectures=evidence.architectures,
    )
    context = json.loads(stored["verdict.json"]).get("context", {})
    verdict = replace(verdict, context={"amis": context.get("amis", [])})
    recomputed = store.ami_outcomes(verdict).get(ami_id, gate.Outcome.ERROR.value)
    return Regate(claimed, recomputed, ())
