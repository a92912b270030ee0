"""Is a scan complete and consistent, before any check is judged (pure): one row per
recommendation in scope, the catalogue's titles and levels, one platform, no conflicting
duplicates, and the rows reconciled with the scan's own totals. Each problem is one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pipeline import catalog
from pipeline.catalog import Catalogue, normalise_title
from pipeline.policy import ExceptionsPolicy
from pipeline.results import CheckResult, CheckStatus, ScanFacts

# Named in every error about the catalogue itself: Inspector is the source of truth for IDs.
REFRESH_HINT = "if Inspector's benchmark changed, run `invoke catalogue.refresh --scan-arn ARN`"
MAX_LISTED = 10  # IDs listed in one message before "..."


# What the scan's totals (ListCisScans totalChecks/failedChecks) count is not documented. Two
# meanings are possible, and each is reconciled strictly (both numbers under the same meaning).
ROWS = "rows summed over targets"
DISTINCT = "distinct checks"


def scan_totals(
    results: Sequence[CheckResult], facts: ScanFacts | None
) -> tuple[list[str], str | None]:
    """The scan's own totals must match the rows collected for it, under one of the two
    possible meanings (``ROWS``, ``DISTINCT``). Returns (problems, the meaning that matched:
    ``ROWS``, ``DISTINCT``, both joined by " = " when they cannot be told apart, or None)."""
    if facts is None:
        return [], None
    out = []
    if facts.scan_arn is not None:
        # scanArn is a required member of every row (the API's model): a row without one, or
        # with one that is not a string, is no more this scan's than one naming another scan.
        foreign = sum(r.scan_arn != facts.scan_arn for r in results)
        if foreign:
            out.append(
                f"{foreign} result row(s) carry another scanArn than {facts.scan_arn} (or none): "
                "they are not this scan's results"
            )
    if facts.total_checks is None and facts.failed_checks is None:
        return out, None
    # Identical duplicates (a page served twice) are merged before counting, as in the targets.
    distinct = {(r.target, r.check_id, r.status): r for r in results}.values()
    counted = {
        ROWS: (len(distinct), sum(r.status is CheckStatus.FAILED for r in distinct)),
        DISTINCT: (
            len({r.check_id for r in distinct}),
            len({r.check_id for r in distinct if r.status is CheckStatus.FAILED}),
        ),
    }
    matched = totals_meaning(counted, (facts.total_checks, facts.failed_checks))
    if matched:
        return out, matched
    rows, checks = counted[ROWS], counted[DISTINCT]
    out.append(
        f"the scan reports totalChecks={facts.total_checks}, failedChecks={facts.failed_checks} "
        f"but the results hold {rows[0]} rows ({rows[1]} FAILED) over {checks[0]} distinct "
        f"checks ({checks[1]} FAILED somewhere): under neither meaning do they match, so the "
        "results are incomplete or not this scan's"
    )
    return out, None


def totals_meaning(
    counted: Mapping[str, tuple[int, int]], reported: tuple[int | None, int | None]
) -> str | None:
    """Which meanings' (total, failed) ``counted`` equal the ``reported`` totals (a None is not
    reported): one name, both joined by " = ", or None."""
    matched = [
        meaning
        for meaning, numbers in counted.items()
        if all(want is None or want == got for want, got in zip(reported, numbers, strict=True))
    ]
    return " = ".join(matched) or None


def scan_total_problems(results: Sequence[CheckResult], facts: ScanFacts | None) -> list[str]:
    """``scan_totals``' problems only."""
    return scan_totals(results, facts)[0]


def listed(ids: Iterable[str]) -> str:
    items = sorted(ids, key=id_key)
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" ... ({len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")


def id_key(check_id: str) -> tuple[tuple[int, str], ...]:
    """Benchmark order (1.10 after 1.9) without int(): any digit string compares, however long."""
    return tuple((len(p.lstrip("0")), p.lstrip("0")) for p in check_id.split("."))


def dedupe_rows(
    target: str, rows: list[CheckResult], errors: list[str], warnings: list[str]
) -> list[CheckResult]:
    """One row per check ID: identical duplicates merge (a warning); conflicting ones are an
    error, and are dropped."""
    first: dict[str, CheckResult] = {}
    conflicting: set[str] = set()
    merged = 0
    for row in rows:
        seen = first.get(row.check_id)
        if seen is None:
            first[row.check_id] = row
        elif _same(seen, row):
            merged += 1
        else:
            conflicting.add(row.check_id)
    if conflicting:
        errors.append(
            f"{target}: {len(conflicting)} check(s) reported more than once with different "
            f"results: {listed(conflicting)}"
        )
    if merged:
        warnings.append(f"{target}: {merged} identical duplicate row(s) merged")
    return [r for cid, r in first.items() if cid not in conflicting]


def _same(a: CheckResult, b: CheckResult) -> bool:
    return (a.status, a.title, a.level, a.platform, a.status_reason) == (
        b.status,
        b.title,
        b.level,
        b.platform,
        b.status_reason,
    )


def platform_problems(target: str, rows: list[CheckResult], policy: ExceptionsPolicy) -> list[str]:
    """Every row's platform must be the policy's (rows without one only if none has one)."""
    want = policy.platform.value
    platforms = {r.platform for r in rows}
    if platforms == {None}:
        return []
    wrong = sorted({str(p) for p in platforms if p != want})
    if not wrong:
        return []
    bad = sum(r.platform != want for r in rows)
    return [
        f"{target}: {bad} row(s) report platform {', '.join(wrong)}, not {want} "
        f"(the platform of {policy.source})"
    ]


def catalogue_problems(
    target: str, rows: list[CheckResult], cat: Catalogue, level: int | None
) -> list[str]:
    """Exactly the catalogue's recommendations in scope, with its titles and levels."""
    out: list[str] = []
    unknown = {r.check_id for r in rows if r.check_id not in cat}
    if unknown:
        out.append(
            f"{target}: {len(unknown)} check ID(s) not in {cat.label}: {listed(unknown)}"
            f"{looks_like(rows, cat)}; {REFRESH_HINT}"
        )
    retitled = {
        r.check_id
        for r in rows
        if r.check_id in cat
        and (
            r.title is None
            or normalise_title(r.title) != normalise_title(cat.recommendations[r.check_id].title)
        )
    }
    if retitled:
        out.append(
            f"{target}: {len(retitled)} row(s) whose title is not the {cat.label} title of their "
            f"ID: {listed(retitled)}{looks_like(rows, cat)}; {REFRESH_HINT}"
        )
    relevelled = {
        r.check_id
        for r in rows
        if r.check_id in cat and r.level != cat.recommendations[r.check_id].level_name
    }
    if relevelled:
        out.append(
            f"{target}: {len(relevelled)} row(s) whose level is not the {cat.label} level of "
            f"their ID: {listed(relevelled)}"
        )
    if level is None:
        return out
    scope = {rec.id for rec in cat.in_scope(level)}
    beyond = {r.check_id for r in rows if r.check_id in cat and r.check_id not in scope}
    if beyond:
        out.append(
            f"{target}: {len(beyond)} row(s) of recommendations above LEVEL_{level}: "
            f"{listed(beyond)} (the scan was not a LEVEL_{level} scan)"
        )
    absent = scope - {r.check_id for r in rows}
    if absent:
        out.append(
            f"{target}: {len(absent)} of the {len(scope)} recommendations of {cat.label} at "
            f"LEVEL_{level} have no result: {listed(absent)} (incomplete results); {REFRESH_HINT}"
        )
    return out


def looks_like(rows: list[CheckResult], cat: Catalogue) -> str:
    """`` (the rows look like X)`` when another shipped catalogue matches the rows better."""
    titled = [(r.check_id, normalise_title(r.title)) for r in rows if r.title]
    if not titled:
        return ""

    def score(other: Catalogue) -> int:
        recs = other.recommendations
        return sum(cid in recs and normalise_title(recs[cid].title) == t for cid, t in titled)

    best = max(
        (catalog.load(p, v) for p, v in catalog.supported()),
        key=lambda c: (score(c), c.label == cat.label),
    )
    best_score = score(best)
    if best.label == cat.label or best_score <= score(cat):
        if best_score == 0:
            return " (the rows match no shipped benchmark catalogue)"
        return ""
    return f" (the rows look like {best.label}: {best_score} of {len(titled)} titles match)"
