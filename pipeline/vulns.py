"""The vulnerability gate (pure): Inspector's package findings on each test instance, judged
against the ``vulnerabilities:`` section of the instance's exceptions policy.

A finding at or above the policy's threshold blocks (FAIL, exit 3) unless an active exception
names its vulnerability ID and its scope (package, architecture) covers it. SUPPRESSED findings
are judged like ACTIVE ones: an account's suppression rule is an exception nobody approved in
the policy; the report names them. A scan that cannot be trusted (``pipeline.findings``) is
ERROR (exit 4). No clock: ``today`` is passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pipeline import findings
from pipeline.findings import VulnFinding
from pipeline.outcome import Outcome, worst
from pipeline.policy import EXPIRY_WARNING_DAYS, ExceptionsPolicy
from pipeline.vulnpolicy import SEVERITIES, VulnException


@dataclass(frozen=True, slots=True)
class Judged:
    finding: VulnFinding
    message: str
    exception: VulnException | None = None
    source: str | None = None  # the policy file of the exception
    covered: bool = False  # an active exception covers it


@dataclass(frozen=True, slots=True)
class VulnNote:
    exception: VulnException
    source: str


@dataclass(frozen=True, slots=True)
class VulnTarget:
    target: str
    verdict: Outcome
    counts: Mapping[str, int]  # findings by severity (ACTIVE and SUPPRESSED)
    suppressed: int
    blocking: int
    scanned_at: str | None
    threshold: str
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class VulnVerdict:
    """The vulnerabilities section of the verdict."""

    verdict: Outcome
    targets: tuple[VulnTarget, ...]
    blocking: tuple[Judged, ...]
    excepted: tuple[Judged, ...]
    below: tuple[VulnFinding, ...]
    expired_exceptions: tuple[VulnNote, ...]
    unused_exceptions: tuple[VulnNote, ...]
    expiring_soon: tuple[VulnNote, ...]
    policy_digests: Mapping[str, str]  # policy file → digest of its vulnerabilities section
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for t in self.targets:
            total.update(t.counts)
        return {s: total.get(s, 0) for s in SEVERITIES}

    @property
    def suppressed(self) -> int:
        return sum(t.suppressed for t in self.targets)


def evaluate(
    coverage: Any,
    listed: Any,
    counts: Any,
    *,
    launched: Mapping[str, str],
    policies: Mapping[str, ExceptionsPolicy],
    architectures: Mapping[str, str],
    today: date,
) -> VulnVerdict:
    """Judge the stored package-scan evidence of every target in ``policies`` (target → policy)."""
    targets = list(policies)
    scans = findings.read(coverage, listed, counts, launched, targets)
    errors: list[str] = [] if targets else ["no test instance to judge: nothing was proven"]
    warnings: list[str] = []
    blocking: list[Judged] = []
    excepted: list[Judged] = []
    below: list[VulnFinding] = []
    judged_targets: list[VulnTarget] = []
    used: set[tuple[str, int]] = set()
    expired: dict[tuple[str, int], VulnNote] = {}
    for scan in scans:
        pol = policies[scan.target]
        vp = pol.vulnerabilities
        mine_blocking: list[Judged] = []
        for finding in sorted(scan.findings, key=_order):
            if not vp.blocks(finding.severity, finding.fix_available):
                below.append(finding)
                continue
            verdict = _judge(finding, pol, architectures.get(scan.target), today)
            if verdict.covered and verdict.exception is not None:
                excepted.append(verdict)
                used.add((pol.source, verdict.exception.index))
            else:
                mine_blocking.append(verdict)
                if verdict.exception is not None:
                    expired[(pol.source, verdict.exception.index)] = VulnNote(
                        verdict.exception, pol.source
                    )
        blocking += mine_blocking
        errors += scan.problems
        warnings += scan.warnings
        judged_targets.append(
            VulnTarget(
                target=scan.target,
                verdict=Outcome.ERROR
                if scan.problems
                else Outcome.FAIL
                if mine_blocking
                else Outcome.PASS,
                counts=dict(Counter(f.severity for f in scan.findings)),
                suppressed=sum(f.status == "SUPPRESSED" for f in scan.findings),
                blocking=len(mine_blocking),
                scanned_at=scan.scanned_at,
                threshold=vp.threshold,
                errors=tuple(scan.problems),
            )
        )
        if any(f.status == "SUPPRESSED" for f in scan.findings):
            warnings.append(
                f"{scan.target}: {sum(f.status == 'SUPPRESSED' for f in scan.findings)} findings "
                "are suppressed by an account rule: judged like active ones (the policy is the "
                "only place exceptions are approved)"
            )
    distinct = {p.source: p for p in policies.values()}
    unused: list[VulnNote] = []
    soon: list[VulnNote] = []
    for source, pol in distinct.items():
        for exc in pol.vulnerabilities.exceptions:
            key = (source, exc.index)
            if not exc.active_on(today):
                expired.setdefault(key, VulnNote(exc, source))
            elif key not in used:
                unused.append(VulnNote(exc, source))
            if exc.expires_within(today, EXPIRY_WARNING_DAYS):
                soon.append(VulnNote(exc, source))
    outcome = worst([Outcome.ERROR] if errors else [t.verdict for t in judged_targets])
    return VulnVerdict(
        verdict=outcome,
        targets=tuple(judged_targets),
        blocking=tuple(blocking),
        excepted=tuple(excepted),
        below=tuple(below),
        expired_exceptions=tuple(expired.values()),
        unused_exceptions=tuple(unused),
        expiring_soon=tuple(soon),
        policy_digests={s: p.vulnerabilities.digest for s, p in distinct.items()},
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def _order(f: VulnFinding) -> tuple[int, float, str, str]:
    return (_RANK.get(f.severity, -1), -(f.score or 0.0), f.vulnerability_id, f.arn)


def _judge(
    finding: VulnFinding, pol: ExceptionsPolicy, architecture: str | None, today: date
) -> Judged:
    candidates: Sequence[VulnException] = pol.vulnerabilities.by_id.get(
        finding.vulnerability_id, ()
    )
    covering = [e for e in candidates if e.covers(finding.package_names, architecture)]
    if not covering:
        if candidates:
            scopes = "; ".join(e.scope for e in candidates)
            return Judged(finding, f"exception scoped to {scopes} does not cover it")
        return Judged(finding, "no approved exception")
    exc = covering[0]
    if not exc.active_on(today):
        return Judged(finding, f"exception expired on {exc.expires}", exc, pol.source)
    return Judged(finding, exc.reason, exc, pol.source, covered=True)


def blocking_line(judged: Judged) -> str:
    """One line naming the vulnerability, package, installed and fixed version, severity, score."""
    f = judged.finding
    score = f" score {f.score:g}" if f.score is not None else ""
    suppressed = ", suppressed by an account rule" if f.status == "SUPPRESSED" else ""
    return (
        f"{f.target}: {f.vulnerability_id} {f.severity}{score} in {f.installed}, fixed in "
        f"{f.fixed_in}{suppressed}: {judged.message}"
    )
