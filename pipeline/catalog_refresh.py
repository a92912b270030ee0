"""``invoke catalogue.refresh``: make the shipped CIS catalogue agree with what Inspector scans.

Reads every check of a real scan (ListCisScanResultsAggregatedByChecks), shows how it differs
from ``pipeline/data/cis/<platform>-v<version>.json`` and, with ``write``, rewrites that file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import catalog, completeness, policy
from pipeline.aws import AwsClients, boundary, inspector
from pipeline.catalog import Platform, Recommendation
from pipeline.errors import ConfigError, PolicyError, ScanError

Echo = Callable[[str], None]
DATA_DIR = Path(__file__).resolve().parent / "data" / "cis"
SCAN_ARN = re.compile(
    r"^arn:aws[a-z-]*:inspector2:(?P<region>[a-z0-9-]+):[0-9]{12}:owner/[A-Za-z0-9-]+"
    r"/cis-scan/[A-Za-z0-9-]+$"
)
_LEVELS = {"LEVEL_1": 1, "LEVEL_2": 2}
_SUFFIX = re.compile(r"\s*\((automated|manual)\)\s*$", re.IGNORECASE)
# How a refreshed catalogue decides ``assessment`` (documented in the README and in the file's
# ``sources`` entry): an ID the shipped catalogue has keeps its value; a new ID takes it from a
# trailing "(Automated)"/"(Manual)" in Inspector's title, else it is "automated". That fails
# closed: the gate accepts SKIPPED only for manual recommendations, so a wrong guess blocks a
# scan (exit 4) until a reviewer corrects the file, and never lets an unevaluated check pass.
NEW_ID_RULE = (
    "assessment: kept from the shipped catalogue for known IDs; for new IDs from the title "
    "suffix (Automated)/(Manual), else automated (fail closed: review new IDs by hand)"
)


@dataclass(frozen=True, slots=True)
class ScannedCheck:
    """One check as Inspector reported it: ID, title (suffix removed), level, assessment hint."""

    id: str
    title: str
    level: int
    assessment: str | None  # from the title suffix, when Inspector's title has one
    evaluated: bool  # PASSED or FAILED on at least one target


@dataclass(frozen=True, slots=True)
class CatalogueDiff:
    """How the scan's checks differ from the catalogue at the scanned level."""

    added: tuple[ScannedCheck, ...]
    removed: tuple[Recommendation, ...]
    retitled: tuple[tuple[Recommendation, ScannedCheck], ...]
    relevelled: tuple[tuple[Recommendation, ScannedCheck], ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.retitled or self.relevelled)


def id_key(check_id: str) -> tuple[tuple[int, str], ...]:
    """Numeric benchmark order: 1.1.2 < 1.1.10 (compared as digit strings by length, so an
    absurdly long ID from the API cannot hit Python's int-conversion limit)."""
    return tuple((len(part.lstrip("0")), part.lstrip("0")) for part in check_id.split("."))


def scanned_checks(
    aggregations: Iterable[inspector.CheckAggregation], platform: Platform, where: str
) -> list[ScannedCheck]:
    """The checks of ``platform``, validated: usable IDs, known levels, no conflicting twins.

    Raises ScanError (exit 4) listing every problem; the scan cannot define a catalogue then.
    """
    found: dict[str, ScannedCheck] = {}
    problems: list[str] = []
    for agg in aggregations:
        if agg.platform != platform.value:
            continue
        check_id = catalog.normalise_check_id(agg.check_id or "")
        if check_id is None:
            problems.append(f"{where}: check {agg.check_id!r} is not a CIS recommendation number")
            continue
        level = _LEVELS.get(agg.level or "")
        title = _SUFFIX.sub("", (agg.title or "").strip())
        if level is None or not title:
            problems.append(
                f"{where}: check {check_id}: level {agg.level!r} and title {agg.title!r} "
                "must both be given (LEVEL_1 or LEVEL_2)"
            )
            continue
        suffix = _SUFFIX.search(agg.title or "")
        check = ScannedCheck(
            id=check_id,
            title=title,
            level=level,
            assessment=suffix.group(1).lower() if suffix else None,
            evaluated=agg.passed + agg.failed > 0,
        )
        twin = found.get(check_id)
        if twin is not None and (twin.title, twin.level) != (check.title, check.level):
            problems.append(
                f"{where}: check {check_id} reported twice with different titles or levels: "
                f"{twin.title!r} ({twin.level}) and {check.title!r} ({check.level})"
            )
            continue
        if twin is not None:
            check = ScannedCheck(
                check_id,
                title,
                level,
                check.assessment or twin.assessment,
                check.evaluated or twin.evaluated,
            )
        found[check_id] = check
    if problems:
        raise ScanError(problems[0], problems=problems)
    return sorted(found.values(), key=lambda c: id_key(c.id))


def diff(
    recommendations: Sequence[Recommendation], checks: Sequence[ScannedCheck], level: int
) -> CatalogueDiff:
    """Compare the catalogue's recommendations in scope at ``level`` with the scan's checks.

    Titles are compared as the gate compares them (``catalog.normalise_title``).
    """
    shipped = {r.id: r for r in recommendations if r.level <= level}
    scanned = {c.id: c for c in checks}
    both = [i for i in shipped if i in scanned]
    title = catalog.normalise_title
    return CatalogueDiff(
        added=tuple(c for c in checks if c.id not in shipped),
        removed=tuple(r for r in shipped.values() if r.id not in scanned),
        retitled=tuple(
            (shipped[i], scanned[i])
            for i in both
            if title(shipped[i].title) != title(scanned[i].title)
        ),
        relevelled=tuple(
            (shipped[i], scanned[i]) for i in both if shipped[i].level != scanned[i].level
        ),
    )


def render_diff(result: CatalogueDiff, label: str, scan_arn: str) -> list[str]:
    """One line per difference, each naming the check ID, then a count line."""
    lines = [
        *(f"added      {c.id} (level {c.level}): {c.title}" for c in result.added),
        *(f"removed    {r.id} (level {r.level}): {r.title}" for r in result.removed),
        *(f"retitled   {r.id}: {r.title!r} -> {c.title!r}" for r, c in result.retitled),
        *(f"relevelled {r.id}: level {r.level} -> {c.level}" for r, c in result.relevelled),
    ]
    if result.empty:
        return [f"{label}: no difference from the checks of {scan_arn}"]
    counts = (
        f"{len(result.added)} added, {len(result.removed)} removed, "
        f"{len(result.retitled)} retitled, {len(result.relevelled)} relevelled"
    )
    return [*lines, f"{label} differs from the checks of {scan_arn}: {counts}"]


def refreshed_document(
    shipped: Mapping[str, Any], checks: Sequence[ScannedCheck], scan_arn: str, today: date
) -> dict[str, Any]:
    """The catalogue file's new content: the scan's IDs, titles and levels; see NEW_ID_RULE.

    Keeps ``benchmark``, ``version``, ``platform`` and the earlier ``sources``, and records the
    scan (ARN and date) as a source; a refresh from the same scan replaces its own entry.
    """
    known = {str(r["id"]): r for r in shipped.get("recommendations", [])}
    recommendations = []
    for check in sorted(checks, key=lambda c: id_key(c.id)):
        old = known.get(check.id)
        same_title = old is not None and catalog.normalise_title(
            str(old["title"])
        ) == catalog.normalise_title(check.title)
        # NEW_ID_RULE: a known ID keeps its assessment; a new one fails closed.
        assessment = str(old["assessment"]) if old else check.assessment or "automated"
        recommendations.append(
            {
                "id": check.id,
                "title": str(old["title"]) if old is not None and same_title else check.title,
                "level": check.level,
                "assessment": assessment,
            }
        )
    sources = [s for s in shipped.get("sources", []) if s.get("inspector_scan") != scan_arn]
    sources.append(
        {
            "inspector_scan": scan_arn,
            "date": today.isoformat(),
            "used_for": f"IDs, titles and levels as Amazon Inspector reports them; {NEW_ID_RULE}",
        }
    )
    return {
        "benchmark": shipped["benchmark"],
        "version": shipped["version"],
        "platform": shipped["platform"],
        "sources": sources,
        "recommendations": recommendations,
    }


def catalogue_file(platform: Platform, data_dir: Path = DATA_DIR) -> Path:
    """The shipped catalogue of ``platform`` at the version the pipeline implements."""
    version = catalog.DEFAULT_VERSION[platform]
    return data_dir / f"{platform.value.lower()}-v{version}.json"


def _read_catalogue(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the CIS catalogue: {exc}") from exc
    return data


def _recommendations(raw: Mapping[str, Any]) -> list[Recommendation]:
    return [
        Recommendation(
            id=str(r["id"]),
            title=str(r["title"]),
            level=int(r["level"]),
            automated=r["assessment"] == "automated",
        )
        for r in raw.get("recommendations", [])
    ]


def _write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _choose_platform(
    aggregations: Sequence[inspector.CheckAggregation], given: str | None, scan_arn: str
) -> Platform:
    seen = sorted({a.platform for a in aggregations if a.platform})
    if given:
        try:
            chosen = Platform.parse(given)
        except ConfigError as exc:
            raise ConfigError(f"--platform: {exc}") from None
        if chosen.value not in seen:
            raise ConfigError(
                f"{scan_arn}: no {chosen.value} checks in this scan (it has: "
                f"{', '.join(seen) or 'none'})"
            )
        return chosen
    known = [p for p in seen if p in {x.value for x in Platform}]
    if len(known) != 1:
        raise ConfigError(
            f"--platform: {scan_arn} has checks of {', '.join(seen) or 'no platform'}; name one "
            "(al2023 or al2)"
        )
    return Platform(known[0])


def _check_scan(
    clients: AwsClients, scan_arn: str, write: bool, echo: Echo
) -> tuple[inspector.CisScan, int]:
    """The scan, if a catalogue can be read from it, and its level (1 or 2)."""
    match = SCAN_ARN.match(scan_arn)
    if match is None:
        raise ConfigError(
            f"--scan-arn {scan_arn!r}: not an Inspector CIS scan ARN "
            "(arn:aws:inspector2:<region>:<account>:owner/<owner>/cis-scan/<id>)"
        )
    if match.group("region") != clients.region:
        raise ConfigError(
            f"--scan-arn: the scan is in {match.group('region')}, the clients in "
            f"{clients.region}: set AWS_REGION={match.group('region')}"
        )
    scan = inspector.scan_by_arn(clients, scan_arn)
    if scan is None:
        raise ConfigError(f"--scan-arn {scan_arn}: no such CIS scan in {clients.region}")
    if scan.status != "COMPLETED":
        raise ScanError(f"{scan_arn} is {scan.status}: refresh only from a COMPLETED scan")
    level = _LEVELS.get(str(scan.raw.get("securityLevel", "")))
    if level is None:
        raise ScanError(f"{scan_arn}: unknown securityLevel {scan.raw.get('securityLevel')!r}")
    if write and level != 2:
        raise ConfigError(
            f"--write: {scan_arn} is a LEVEL_{level} scan, which does not report the Level 2 "
            "recommendations; refresh the catalogue from a LEVEL_2 scan"
        )
    unfinished = [
        f"{t.target} {t.status}/{t.reason}"
        for t in inspector.scan_targets(clients, scan_arn)
        if t.status != "COMPLETED" or t.reason
    ]
    if unfinished:
        problem = (
            f"{scan_arn} has targets that were not scanned ({', '.join(unfinished)}), so checks "
            "may be missing"
        )
        if write:
            raise ScanError(f"--write: {problem}; refresh from a scan whose targets all COMPLETED")
        echo(f"WARNING  {problem}: a 'removed' check may only be unreported")
    return scan, level


def totals_line(scan: inspector.CisScan, aggregations: Sequence[inspector.CheckAggregation]) -> str:
    """What this scan's totalChecks/failedChecks count (the gate accepts either meaning)."""
    counted = {
        completeness.ROWS: (
            sum(a.passed + a.failed + a.skipped for a in aggregations),
            sum(a.failed for a in aggregations),
        ),
        completeness.DISTINCT: (len(aggregations), sum(a.failed > 0 for a in aggregations)),
    }
    reported = (scan.total_checks, scan.failed_checks)
    meaning = completeness.totals_meaning(counted, reported)
    said = f"totalChecks={scan.total_checks}, failedChecks={scan.failed_checks}"
    if meaning is not None:
        return f"TOTALS   {said} count {meaning}"
    return f"TOTALS   {said} match neither meaning: " + "; ".join(
        f"{name} would be {n[0]}/{n[1]}" for name, n in counted.items()
    )


def run_refresh(
    clients: AwsClients,
    scan_arn: str,
    *,
    platform: str | None,
    write: bool,
    policy_dir: Path,
    today: date,
    echo: Echo,
    data_dir: Path = DATA_DIR,
) -> CatalogueDiff:
    """Compare the shipped catalogue with a scan's checks; with ``write`` rewrite it, re-check.

    Calls inspector2 ListCisScans, ListCisScanResultsAggregatedByTargetResource and
    ListCisScanResultsAggregatedByChecks. Raises ConfigError (bad ARN, unknown scan, --write
    from a LEVEL_1 scan), ScanError (scan not COMPLETED, unusable checks) and PolicyError when
    the exceptions policies under ``policy_dir`` do not validate against the written catalogue.
    """
    with boundary(f"catalogue.refresh {scan_arn}"):
        scan, level = _check_scan(clients, scan_arn, write, echo)
        aggregations = inspector.check_aggregations(clients, scan_arn)
    if not aggregations:
        raise ScanError(f"{scan_arn}: the scan reports no checks; nothing to compare")
    plat = _choose_platform(aggregations, platform, scan_arn)
    path = catalogue_file(plat, data_dir)
    shipped = _read_catalogue(path)
    checks = scanned_checks(aggregations, plat, scan_arn)
    result = diff(_recommendations(shipped), checks, level)
    label = f"{shipped.get('benchmark')} v{shipped.get('version')} ({path.name})"
    for line in render_diff(result, label, scan.scan_arn):
        echo(line)
    echo(totals_line(scan, aggregations))
    if not write:
        if not result.empty:
            echo("run again with --write to update the catalogue the gate uses")
        return result
    if result.empty:
        echo(f"{path}: already matches; not rewritten")
        return result
    guessed = [
        c.id if c.evaluated else f"{c.id} (only SKIPPED: manual?)"
        for c in result.added
        if c.assessment is None
    ]
    _write_atomically(path, refreshed_document(shipped, checks, scan_arn, today))
    echo(f"wrote {path} ({len(checks)} recommendations)")
    if guessed:
        echo(
            f"REVIEW   new IDs without (Automated)/(Manual) in their title were set to automated: "
            f'{", ".join(guessed)}; set "assessment": "manual" in {path.name} where CIS says so'
        )
    catalog.load.cache_clear()  # the gate and the policies must see the new file
    try:
        policy.load_all(policy.discover(policy_dir))
    except PolicyError as exc:
        header = f"{path} was written, but the exceptions policies do not match it:"
        raise PolicyError(header, problems=[header, *exc.lines()]) from None
    echo(f"OK       the exceptions policies in {policy_dir} validate against the new catalogue")
    return result
