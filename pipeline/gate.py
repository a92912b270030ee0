"""The gate: pure judgement of per-check results against the approved exceptions policy.

No I/O and no clock: ``today`` is passed in. A verdict is only given for a complete scan at
the level asked for: per target, exactly one row per recommendation of the catalogue in scope,
titles and levels as the catalogue has them, every automated recommendation evaluated (or its
skip approved), the rows reconciled with Inspector's own counts, and every row's status
cross-checked with Inspector's per-check view and CIS report when collected. Anything else is
ERROR.
A FAILED check then blocks unless a valid exception matches its exact check ID (and level,
when the exception is scoped to levels) and its title has not drifted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from pipeline import completeness, crosscheck
from pipeline.catalog import Catalogue, Platform, normalise_title
from pipeline.errors import ConfigError, ExitCode
from pipeline.node import NodeVerdict
from pipeline.outcome import Outcome as Outcome  # re-exported: callers say gate.Outcome
from pipeline.policy import EXPIRY_WARNING_DAYS, ExceptionsPolicy, PolicyException, PolicySkip
from pipeline.results import CheckResult, CheckStatus, ScanFacts, StatusCounts
from pipeline.vulns import VulnVerdict


@dataclass(frozen=True, slots=True)
class Finding:
    """A judged FAILED or SKIPPED result, with why it blocks or what covers it."""

    result: CheckResult
    message: str
    exception: PolicyException | None = None
    skip: PolicySkip | None = None  # the approved skip of an automated check reported SKIPPED


@dataclass(frozen=True, slots=True)
class ExceptionNote:
    """An exception worth a reviewer's attention (expired, unused, expiring soon)."""

    exception: PolicyException
    policy: ExceptionsPolicy
    target: str | None = None  # the target whose failure it no longer covers, for expired ones


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    target: str
    platform: str | None
    verdict: Outcome
    passed: int
    failed: int
    skipped: int
    blocking: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The one verdict model; ``pipeline.report`` renders it as JSON, JUnit, Markdown, console."""

    verdict: Outcome
    today: date
    targets: tuple[TargetVerdict, ...]
    failed_unexcepted: tuple[Finding, ...]
    failed_excepted: tuple[Finding, ...]
    skipped: tuple[Finding, ...]
    passed: tuple[CheckResult, ...]
    expired_exceptions: tuple[ExceptionNote, ...]
    unused_exceptions: tuple[ExceptionNote, ...]
    expiring_soon: tuple[ExceptionNote, ...]
    policies: tuple[ExceptionsPolicy, ...]
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    context: Mapping[str, object] = field(default_factory=dict)
    level: int | None = None  # the scan's securityLevel (1 or 2); None when never known
    # What the scan's totals were reconciled as (``completeness.ROWS`` / ``DISTINCT``, or both
    # when one target makes them equal); None when the scan gave no totals or none matched.
    reconciled_as: str | None = None
    # The other two sections (``pipeline.sections.combine``); None: not judged in this run.
    node: NodeVerdict | None = None
    vulnerabilities: VulnVerdict | None = None
    cis_verdict: Outcome | None = None  # the CIS section's own outcome, once combined

    @property
    def exit_code(self) -> ExitCode:
        return self.verdict.exit_code

    @property
    def total(self) -> int:
        return (
            len(self.passed)
            + len(self.skipped)
            + len(self.failed_excepted)
            + len(self.failed_unexcepted)
        )


def select_policies(
    results: Iterable[CheckResult],
    available: Mapping[Platform, ExceptionsPolicy],
    explicit: ExceptionsPolicy | None = None,
) -> dict[str, ExceptionsPolicy]:
    """Map each target to its policy: the explicit one, else the one of the results' platform.

    Raises ConfigError (exit 2) for a platform with no policy, a target with no platform and
    no explicit policy, or results whose platform contradicts the explicit policy.
    """
    chosen: dict[str, ExceptionsPolicy] = {}
    for row in results:
        if row.target in chosen:
            continue
        if explicit is not None:
            if row.platform is not None and row.platform != explicit.platform.value:
                raise ConfigError(
                    f"{explicit.source}: $.benchmark.platform: policy is for "
                    f"{explicit.platform.value} but {row.target} reports platform {row.platform}"
                )
            chosen[row.target] = explicit
            continue
        if row.platform is None:
            raise ConfigError(
                f"results for {row.target} carry no platform: pass --policy to choose the policy"
            )
        try:
            platform = Platform(row.platform)
        except ValueError:
            platform = None
        policy = available.get(platform) if platform else None
        if policy is None:
            have = ", ".join(sorted(p.value for p in available)) or "none"
            raise ConfigError(
                f"no exceptions policy for platform {row.platform} (of {row.target}); "
                f"policies loaded for: {have}"
            )
        chosen[row.target] = policy
    return chosen


def evaluate(
    results: Sequence[CheckResult],
    policies: Mapping[str, ExceptionsPolicy],
    today: date,
    *,
    level: int | None,
    facts: ScanFacts | None = None,
    expected_targets: Collection[str] = (),
    problems: Sequence[str] = (),
    architectures: Mapping[str, str] | None = None,
) -> Verdict:
    """Judge ``results`` (rows of every target) with the policy chosen for each target.

    ``level``: the level the scan was run at (1 or 2); None only when the run never got as far
    as a scan (the verdict is then ERROR anyway). ``facts``: Inspector's own counts to reconcile
    the rows with. ``expected_targets``: targets that must have rows. ``problems``: rows or pages
    that could not be parsed; each is an error. ``architectures``: target → x86_64/arm64, for
    skips scoped to an architecture.
    """
    errors: list[str] = list(problems)
    warnings: list[str] = []
    by_target: dict[str, list[CheckResult]] = defaultdict(list)
    for row in results:
        by_target[row.target].append(row)
    if level is None:
        errors.append("the scan's level is unknown: nothing can be judged complete")
    elif level not in (1, 2):
        errors.append(f"level {level} is not a CIS profile level (1 or 2)")
        level = None
    if facts is not None and level is not None and facts.level != level:
        errors.append(
            f"the scan ran at LEVEL_{facts.level} but LEVEL_{level} was asked for: "
            f"its results prove nothing about LEVEL_{level}"
        )
    if not results:
        errors.append("the scan returned no results at all: nothing was proven")
    missing = {
        t: f"{t}: no results for this target: nothing was proven"
        for t in expected_targets
        if t not in by_target
    }
    errors += missing.values()
    if facts is not None and facts.target_counts is not None:
        for target in facts.target_counts:
            if target not in by_target and target not in missing:
                missing[target] = (
                    f"{target}: Inspector reports {facts.target_counts[target]} for this target "
                    "but the results have no rows for it"
                )
                errors.append(missing[target])
    totals_problems, reconciled_as = completeness.scan_totals(results, facts)
    errors += totals_problems
    errors += crosscheck.problems(results, facts)  # every row's status, by Inspector's views
    if facts is not None:
        errors += facts.problems
    if facts is not None:
        level = facts.level  # judged, and reported, at the level the scan really ran at

    unexcepted: list[Finding] = []
    excepted: list[Finding] = []
    skipped: list[Finding] = []
    passed: list[CheckResult] = []
    used: set[tuple[str, str]] = set()  # (policy source, check id) that covered a failure
    expired: list[ExceptionNote] = []
    targets: list[TargetVerdict] = []
    arch = architectures or {}

    for target, rows in by_target.items():
        policy = policies.get(target)
        if policy is None:  # rows about an instance the run did not scan: not its results
            error = f"{target}: results for a target that is not one of the scanned instances"
            errors.append(error)
            targets.append(TargetVerdict(target, None, Outcome.ERROR, 0, 0, 0, 0, (error,)))
            continue
        reconciled = facts is not None and facts.target_counts is not None
        counts = facts.target_counts.get(target) if facts and facts.target_counts else None
        judged = _judge_target(
            target, rows, policy, today, level, counts, arch.get(target), reconciled
        )
        unexcepted += judged.unexcepted
        excepted += judged.excepted
        skipped += judged.skipped
        passed += judged.passed
        expired += judged.expired
        warnings += judged.warnings
        used.update((policy.source, f.result.check_id) for f in judged.excepted)
        target_errors = tuple(judged.errors)
        errors += target_errors
        outcome = (
            Outcome.ERROR if target_errors else Outcome.FAIL if judged.unexcepted else Outcome.PASS
        )
        targets.append(
            TargetVerdict(
                target=target,
                platform=policy.platform.value,
                verdict=outcome,
                passed=len(judged.passed),
                failed=len(judged.unexcepted) + len(judged.excepted),
                skipped=len(judged.skipped),
                blocking=len(judged.unexcepted),
                errors=target_errors,
            )
        )
    targets += [TargetVerdict(t, None, Outcome.ERROR, 0, 0, 0, 0, (e,)) for t, e in missing.items()]

    distinct = {p.source: p for p in policies.values()}.values()
    expired_ids = {(n.policy.source, n.exception.check_id) for n in expired}
    unused: list[ExceptionNote] = []
    soon: list[ExceptionNote] = []
    for policy in distinct:
        for exc in policy.exceptions:
            key = (policy.source, exc.check_id)
            if not exc.active_on(today):
                if key not in expired_ids:
                    expired.append(ExceptionNote(exc, policy))
                continue
            if key not in used:
                unused.append(ExceptionNote(exc, policy))
            if exc.expires_within(today, EXPIRY_WARNING_DAYS):
                soon.append(ExceptionNote(exc, policy))

    verdict = Outcome.ERROR if errors else Outcome.FAIL if unexcepted else Outcome.PASS
    return Verdict(
        verdict=verdict,
        today=today,
        targets=tuple(targets),
        failed_unexcepted=tuple(unexcepted),
        failed_excepted=tuple(excepted),
        skipped=tuple(skipped),
        passed=tuple(passed),
        expired_exceptions=tuple(expired),
        unused_exceptions=tuple(unused),
        expiring_soon=tuple(soon),
        policies=tuple(distinct),
        errors=tuple(errors),
        warnings=tuple(warnings),
        level=level,
        reconciled_as=reconciled_as,
    )


@dataclass
class _Judged:
    unexcepted: list[Finding] = field(default_factory=list)
    excepted: list[Finding] = field(default_factory=list)
    skipped: list[Finding] = field(default_factory=list)
    passed: list[CheckResult] = field(default_factory=list)
    expired: list[ExceptionNote] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _judge_target(
    target: str,
    rows: list[CheckResult],
    policy: ExceptionsPolicy,
    today: date,
    level: int | None,
    counts: StatusCounts | None,
    architecture: str | None,
    reconciled: bool,
) -> _Judged:
    out = _Judged()
    cat = policy.catalogue
    unique = completeness.dedupe_rows(target, rows, out.errors, out.warnings)
    if counts is not None:
        got = StatusCounts(
            passed=sum(r.status is CheckStatus.PASSED for r in unique),
            failed=sum(r.status is CheckStatus.FAILED for r in unique),
            skipped=sum(r.status is CheckStatus.SKIPPED for r in unique),
        )
        if got != counts:
            out.errors.append(
                f"{target}: Inspector's statusCounts say {counts} ({counts.total} checks) but the "
                f"results have {got} ({got.total} rows): rows are missing or extra"
            )
    elif reconciled:
        out.errors.append(f"{target}: Inspector reports no statusCounts to reconcile the rows with")
    out.errors += completeness.platform_problems(target, unique, policy)
    out.errors += completeness.catalogue_problems(target, unique, cat, level)
    evaluated = [r for r in unique if r.status is not CheckStatus.SKIPPED]
    if unique and not evaluated:
        out.errors.append(
            f"{target}: all {len(unique)} checks were SKIPPED: the scan evaluated nothing"
        )
    for row in unique:
        if row.status is CheckStatus.PASSED:
            out.passed.append(row)
        elif row.status is CheckStatus.SKIPPED:
            _judge_skip(row, cat, policy, today, architecture, out)
        else:
            _judge_failure(row, policy, today, out)
    return out


def _judge_skip(
    row: CheckResult,
    cat: Catalogue,
    policy: ExceptionsPolicy,
    today: date,
    architecture: str | None,
    out: _Judged,
) -> None:
    rec = cat.get(row.check_id)
    if rec is None or not rec.automated:
        out.skipped.append(Finding(row, row.status_reason or "manual recommendation"))
        return
    skip = policy.skips_by_check.get(row.check_id)
    reason = f" ({row.status_reason})" if row.status_reason else ""
    if skip is None:
        out.errors.append(
            f"{row.target}: automated check {row.check_id} was SKIPPED{reason}: not evidence, "
            f"and {policy.source} approves no skip for it"
        )
    elif not skip.active_on(today):
        out.errors.append(
            f"{row.target}: automated check {row.check_id} was SKIPPED{reason}: its approved "
            f"skip expired on {skip.expires}"
        )
    elif not skip.covers(architecture, row.level):
        scope = ", ".join(sorted(skip.architectures or ())) or "its levels"
        out.errors.append(
            f"{row.target}: automated check {row.check_id} was SKIPPED{reason}: its approved "
            f"skip covers only {scope}, this target is {architecture or 'of unknown architecture'}"
        )
    else:
        out.skipped.append(Finding(row, f"skip approved: {skip.reason}", skip=skip))


def _judge_failure(row: CheckResult, policy: ExceptionsPolicy, today: date, out: _Judged) -> None:
    exc = policy.by_check.get(row.check_id)
    if exc is None:
        out.unexcepted.append(Finding(row, "no approved exception"))
        return
    if not exc.active_on(today):
        out.unexcepted.append(Finding(row, f"exception expired on {exc.expires}", exc))
        out.expired.append(ExceptionNote(exc, policy, row.target))
        return
    if not exc.covers_level(row.level):
        scope = ", ".join(sorted(exc.levels or ()))
        out.unexcepted.append(
            Finding(
                row, f"exception covers only {scope}; result is {row.level or 'unlevelled'}", exc
            )
        )
        return
    if row.title is None or normalise_title(row.title) != normalise_title(exc.title):
        out.unexcepted.append(
            Finding(
                row,
                f"title drift: the exception approves {exc.title!r} but the scan reports "
                f"{row.title!r} (renumbered benchmark?)",
                exc,
            )
        )
        return
    out.excepted.append(Finding(row, exc.reason, exc))
