"""Cross-check the per-check rows with Inspector's other views of the same scan (pure).

Counts alone cannot catch a status swap that keeps them (an unexcepted FAILED reported PASSED
together with an excepted PASSED reported FAILED: every target's and the scan's counts hold). So
every row's status is compared with two views Inspector gives of the same results:

* the per-check view, ``ListCisScanResultsAggregatedByChecks``: ``statusCounts`` over the targets
  of each check (per platform), saved as ``evidence/checks.json``;
* the CIS report, ``GetCisScanReport`` (CSV), one row per check per target, saved as
  ``evidence/cis-report.csv``.

Any disagreement is a problem naming the check (and the target): the verdict is ERROR (exit 4).

AWS does not document the report's columns. The local AWS writes the ``CisScanResultDetails``
member names (``targetResourceId``, ``checkId``, ``status``, ...); a header is matched without
regard to case, spaces or punctuation, with a few other spellings of each column. A report
whose columns are not recognised cannot vouch for anything: that is a problem too (fail
closed), naming the columns found.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.catalog import normalise_check_id
from pipeline.completeness import id_key
from pipeline.errors import ConfigError
from pipeline.results import (
    CheckCounts,
    CheckResult,
    CheckStatus,
    ReportRow,
    ScanFacts,
    StatusCounts,
)

# Where ``invoke validate`` saves the two views, beside results.json (``--out/evidence``).
CHECKS_FILE = "checks.json"
REPORT_FILE = "cis-report.csv"
CHECKS_VIEW = "ListCisScanResultsAggregatedByChecks"
REPORT_VIEW = "the CIS report"
MAX_LISTED = 10  # disagreements (or unreadable report rows) listed before "... N more"
MAX_SHOWN = 40  # characters of an untrusted value (a column name, a status) shown in a problem
# Report columns: the normalised header names accepted for each (see the module docstring).
COLUMNS: dict[str, tuple[str, ...]] = {
    "target": ("targetresourceid", "resourceid", "instanceid", "targetid"),
    "check": ("checkid", "cisid", "controlid"),
    "status": ("status", "findingstatus", "checkstatus", "result"),
    "scan": ("scanarn",),
}
_STATUS = {s.value: s for s in CheckStatus}
_COUNTS = ("passed", "failed", "skipped")


def problems(rows: Sequence[CheckResult], facts: ScanFacts | None) -> list[str]:
    """Every disagreement between the rows and the other views ``facts`` carries."""
    if facts is None:
        return []
    out: list[str] = []
    if facts.check_counts is not None:
        out += by_checks(rows, facts.check_counts)
    if facts.report_rows is not None:
        out += by_report(rows, facts.report_rows)
    return out


def by_checks(rows: Sequence[CheckResult], view: CheckCounts) -> list[str]:
    """The rows' statuses counted per check (per platform, when the view gives platforms)
    against ``statusCounts`` of the per-check view."""
    per_platform = any(platform is not None for _, platform in view)
    distinct = {(r.target, r.check_id, r.status, r.platform) for r in rows}
    counted: dict[tuple[str, str | None], Counter[str]] = {}
    where: dict[str, list[str]] = {}
    for target, check_id, status, platform in sorted(distinct, key=_row_order):
        key = (check_id, platform if per_platform else None)
        counted.setdefault(key, Counter())[status.value.lower()] += 1
        where.setdefault(check_id, []).append(f"{target} {status.value}")
    ours = {key: StatusCounts(*(c[k] for k in _COUNTS)) for key, c in counted.items()}
    theirs = dict(view) if per_platform else _merge_platforms(view)
    out = []
    for key in sorted(set(ours) | set(theirs), key=_key_order):
        mine, said = ours.get(key), theirs.get(key)
        if mine == said:
            continue
        check_id, platform = key
        on = f" on {platform}" if platform else ""
        rows_say = f"{mine} ({_listed(where.get(check_id, []), 3)})" if mine else "no row"
        out.append(
            f"check {check_id}{on}: {CHECKS_VIEW} counts {said or 'no result'} but the result "
            f"rows give {rows_say}: Inspector's views disagree"
        )
    return _capped(out, CHECKS_VIEW)


def by_report(rows: Sequence[CheckResult], report: Sequence[ReportRow]) -> list[str]:
    """Each (target, check)'s statuses in the rows against those of the CIS report."""
    ours = _statuses((r.target, r.check_id, r.status) for r in rows)
    theirs = _statuses((r.target, r.check_id, r.status) for r in report)
    out = []
    for target, check_id in sorted(set(ours) | set(theirs), key=lambda k: (k[0], id_key(k[1]))):
        mine, said = ours.get((target, check_id)), theirs.get((target, check_id))
        if mine != said:
            out.append(
                f"check {check_id} on {target}: the result rows say {_said(mine)}, "
                f"{REPORT_VIEW} says {_said(said)}: Inspector's views disagree"
            )
    return _capped(out, REPORT_VIEW)


def read_checks(
    document: Any, source: str, scan_arn: str | None
) -> tuple[dict[tuple[str, str | None], StatusCounts], list[str]]:
    """``statusCounts`` per (checkId, platform) from the per-check view's items (a list, as
    ``invoke validate`` saves them), and one problem per item that cannot be used.

    A document that is not a list of objects is ConfigError (exit 2): not what validate wrote.
    An item without a check ID or with bad counts, of another scan, or listed twice with other
    counts is a problem (ERROR): Inspector's answer cannot vouch for the rows.
    """
    if not isinstance(document, list):
        raise ConfigError(f"{source}: $: expected a list of {CHECKS_VIEW} items")
    out: dict[tuple[str, str | None], StatusCounts] = {}
    found: list[str] = []
    foreign = 0
    for i, item in enumerate(document):
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: $[{i}]: expected a check aggregation object")
        if scan_arn is not None and item.get("scanArn") != scan_arn:
            foreign += 1
            continue
        parsed = _aggregation(item)
        if isinstance(parsed, str):
            found.append(f"{source}: $[{i}]: {parsed}")
            continue
        key, counts = parsed
        if out.setdefault(key, counts) != counts:
            found.append(
                f"{source}: $[{i}]: check {key[0]} is listed again with other statusCounts "
                f"({counts}, first {out[key]}): which one is Inspector's?"
            )
    if foreign:
        found.append(
            f"{source}: {foreign} {CHECKS_VIEW} item(s) carry another scanArn than {scan_arn} "
            "(or none): they are not this scan's"
        )
    return out, found


def _aggregation(item: Mapping[str, Any]) -> tuple[tuple[str, str | None], StatusCounts] | str:
    raw_id = item.get("checkId")
    check_id = normalise_check_id(raw_id) if isinstance(raw_id, str) else None
    if check_id is None:
        return f"checkId {_shown(raw_id)} is not a CIS recommendation number"
    platform = item.get("platform")
    if platform is not None and not isinstance(platform, str):
        return f"check {check_id}: platform {_shown(platform)} is not a string"
    raw = item.get("statusCounts")
    if not isinstance(raw, dict):
        return f"check {check_id}: no statusCounts"
    values = [raw.get(k, 0) for k in _COUNTS]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        return f"check {check_id}: statusCounts {_shown(raw)} are not counts"
    return (check_id, platform or None), StatusCounts(*values)


def read_report(
    data: bytes, source: str, scan_arn: str | None
) -> tuple[tuple[ReportRow, ...], list[str]]:
    """The CIS report's rows, and one problem per thing in it that cannot be used (never
    raises: the bytes are Inspector's, and a report that cannot be read vouches for nothing)."""
    try:
        text = data.decode("utf-8-sig")
        table = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        return (), [f"{source}: not a readable CSV report: {exc}"]
    if not table:
        return (), [f"{source}: the CIS report is empty: no header, no rows"]
    header = [_column(name) for name in table[0]]
    at = {what: _index(header, names) for what, names in COLUMNS.items()}
    lost = [what for what in ("target", "check", "status") if at[what] is None]
    if lost:
        shown = ", ".join(_shown(name) for name in table[0][:12])
        return (), [
            f"{source}: no {', '.join(lost)} column among the report's columns ({shown}): "
            "it cannot be compared with the result rows"
        ]
    out: list[ReportRow] = []
    bad: list[str] = []
    foreign = 0
    for number, row in enumerate(table[1:], start=2):
        cells = {what: row[i] if i is not None and i < len(row) else None for what, i in at.items()}
        if scan_arn is not None and at["scan"] is not None and cells["scan"] != scan_arn:
            foreign += 1
            continue
        parsed = _report_row(cells)
        if isinstance(parsed, str):
            bad.append(f"{source}: row {number}: {parsed}")
        else:
            out.append(parsed)
    if foreign:
        bad.insert(0, f"{source}: {foreign} row(s) name another scan than {scan_arn}")
    return tuple(out), _capped(bad, f"{source}'s unreadable rows")


def _report_row(cells: Mapping[str, str | None]) -> ReportRow | str:
    target, raw_id, raw_status = (cells[k] for k in ("target", "check", "status"))
    if target is None or raw_id is None or raw_status is None:
        return "fewer columns than the header"
    check_id = normalise_check_id(raw_id)
    if check_id is None:
        return f"checkId {_shown(raw_id)} is not a CIS recommendation number"
    status = _STATUS.get(raw_status.strip().upper())
    if status is None:
        return f"check {check_id}: status {_shown(raw_status)} is not PASSED, FAILED or SKIPPED"
    if not target.strip():
        return f"check {check_id}: no target"
    return ReportRow(target.strip(), check_id, status)


def _column(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _index(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _merge_platforms(view: CheckCounts) -> dict[tuple[str, str | None], StatusCounts]:
    merged: dict[tuple[str, str | None], StatusCounts] = {}
    for (check_id, _), counts in view.items():
        had = merged.get((check_id, None), StatusCounts(0, 0, 0))
        merged[(check_id, None)] = StatusCounts(
            had.passed + counts.passed, had.failed + counts.failed, had.skipped + counts.skipped
        )
    return merged


def _statuses(items: Iterable[tuple[str, str, CheckStatus]]) -> dict[tuple[str, str], str]:
    """(target, check) -> its statuses, joined ("FAILED" or "FAILED/PASSED" for a conflict)."""
    found: dict[tuple[str, str], set[str]] = {}
    for target, check_id, status in items:
        found.setdefault((target, check_id), set()).add(status.value)
    return {key: "/".join(sorted(values)) for key, values in found.items()}


def _said(statuses: str | None) -> str:
    return statuses if statuses is not None else "nothing (no row)"


def _row_order(row: tuple[str, str, CheckStatus, str | None]) -> tuple[Any, ...]:
    return (row[0], id_key(row[1]), row[2].value, row[3] or "")


def _key_order(key: tuple[str, str | None]) -> tuple[Any, ...]:
    return (id_key(key[0]), key[1] or "")


def _listed(items: list[str], most: int) -> str:
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def _capped(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return [*lines[:MAX_LISTED], f"... and {len(lines) - MAX_LISTED} more with {what}"]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."
