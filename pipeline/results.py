"""Per-check results of an Inspector CIS scan, in the API's own shape, read into typed rows.

Accepted input: the items of ``GetCisScanResultDetails.scanResultDetails``, as one response
object, a list of response pages, or a bare list of items. Only ``scanArn`` is guaranteed by
the API; a row without a usable ``checkId`` or ``status`` cannot be judged and is reported as
a problem (the scan is then not trustworthy), never skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline import safeio
from pipeline.catalog import normalise_check_id
from pipeline.errors import ConfigError

RESULTS_KEY = "scanResultDetails"
# Not an API member: ``invoke validate`` adds it to each saved page (evidence/results.json) so a
# re-run of the gate on the evidence knows which instances were scanned, even with no rows.
PAGE_TARGET_KEY = "targetResourceId"
NO_TARGET = "(no targetResourceId)"


class CheckStatus(StrEnum):
    """``CisFindingStatus`` in the Inspector model."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of ``GetCisScanResultDetails``: one check on one target."""

    check_id: str
    status: CheckStatus
    target: str
    title: str | None = None
    level: str | None = None
    platform: str | None = None
    scan_arn: str | None = None
    account_id: str | None = None
    status_reason: str | None = None
    finding_arn: str | None = None


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """``statusCounts`` of one target (ListCisScanResultsAggregatedByTargetResource)."""

    passed: int
    failed: int
    skipped: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def __str__(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row of Inspector's CIS report (``GetCisScanReport``, CSV): one check on one target."""

    target: str
    check_id: str
    status: CheckStatus


# statusCounts per (checkId, platform) of ListCisScanResultsAggregatedByChecks; the platform is
# None when Inspector gives none.
CheckCounts = Mapping[tuple[str, str | None], StatusCounts]


@dataclass(frozen=True, slots=True)
class ScanFacts:
    """What Inspector itself says about a scan; the rows must agree with every part of it.

    ``level``: the scan's ``securityLevel`` (1 or 2). ``target_counts``: ``statusCounts`` per
    target, None when not available (a bare results file). ``total_checks``/``failed_checks``:
    the scan's own totals from ListCisScans, None when unknown. ``scan_arn``: the scan the rows
    must come from.
    """

    level: int
    target_counts: Mapping[str, StatusCounts] | None = None
    total_checks: int | None = None
    failed_checks: int | None = None
    scan_arn: str | None = None  # every row must belong to this scan
    # What Inspector says that makes the scan untrustworthy whatever its rows (a scan that did
    # not COMPLETE, a target not scanned): each is an error of the verdict.
    problems: tuple[str, ...] = ()
    # Inspector's other views of the same results, None when not collected: every row's status
    # must agree with both (``pipeline.crosscheck``). ``check_counts``: the per-check view
    # (ListCisScanResultsAggregatedByChecks); ``report_rows``: the CIS report (CSV).
    check_counts: CheckCounts | None = None
    report_rows: tuple[ReportRow, ...] | None = None


def level_number(value: object, source: str) -> int:
    """``LEVEL_1``/``LEVEL_2`` (a scan's ``securityLevel``) → 1/2; else ConfigError."""
    if value in ("LEVEL_1", "LEVEL_2"):
        return int(str(value)[-1])
    raise ConfigError(f"{source}: securityLevel {value!r} is not LEVEL_1 or LEVEL_2")


@dataclass(frozen=True, slots=True)
class ParsedResults:
    """Rows that could be judged, and one line per row that could not."""

    rows: tuple[CheckResult, ...]
    problems: tuple[str, ...]
    targets: tuple[str, ...] = ()  # targets the document says were scanned


def parse_items(items: Iterable[tuple[str, int, Any]]) -> ParsedResults:
    """Turn ``(list_path, index, item)`` triples into rows; unusable items become problems."""
    rows: list[CheckResult] = []
    problems: list[str] = []
    for path, index, item in items:
        row = _row(item)
        if isinstance(row, str):
            problems.append(f"{path}[{index}]: {row}")
        else:
            rows.append(row)
    return ParsedResults(tuple(rows), tuple(problems))


_STATUS = {s.value: s for s in CheckStatus}
MAX_CHECK_ID = 64  # CIS numbers are a few short parts; a longer one is not one (and is echoed)


def _row(item: Any) -> CheckResult | str:
    if type(item) is not dict and not isinstance(item, Mapping):  # the ABC check is slow
        return f"expected a result object, got {type(item).__name__}"
    get = item.get
    raw_id = get("checkId")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return "result has no checkId"
    check_id = _check_id(raw_id)
    if check_id is None or len(check_id) > MAX_CHECK_ID:
        return f"checkId {raw_id[:MAX_CHECK_ID]!r} is not a CIS recommendation number"
    raw_status = get("status")
    status = _STATUS.get(raw_status) if isinstance(raw_status, str) else None
    if status is None:
        return f"check {check_id} has status {raw_status!r}, not one of PASSED, FAILED, SKIPPED"
    return CheckResult(
        check_id=check_id,
        status=status,
        target=_text(get("targetResourceId")) or NO_TARGET,
        title=_text(get("title")),
        level=_text(get("level")),
        platform=_text(get("platform")),
        scan_arn=_text(get("scanArn")),
        account_id=_text(get("accountId")),
        status_reason=_text(get("statusReason")),
        finding_arn=_unshared(get("findingArn")),  # one per row: nothing to share
    )


_check_id = lru_cache(maxsize=8192)(normalise_check_id)


def _unshared(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str | None:
    """A non-empty string, interned: the 243 rows of a target share its ID, the rows of a scan
    its ARN, account and platform, and those of one check on every target its title."""
    if type(value) is str:  # what JSON gives; a subclass (a StrEnum) cannot be interned
        return sys.intern(value) if value else None
    return value if isinstance(value, str) and value else None


def iter_items(document: Any, source: str) -> Iterator[tuple[str, int, Any]]:
    """Walk one of the accepted shapes, yielding each item with its list's JSON path and index.

    Raises ConfigError (exit 2) when the document is none of the accepted shapes.
    """
    if isinstance(document, Mapping):
        yield from _page_items(document, "$", source)
    elif isinstance(document, list):
        if document and all(_is_page(x) for x in document):
            for i, page in enumerate(document):
                yield from _page_items(page, f"$[{i}]", source)
        else:
            for i, item in enumerate(document):
                if isinstance(item, Mapping) and RESULTS_KEY in item:
                    raise ConfigError(
                        f"{source}: $[{i}]: mixes response pages and result items in one list"
                    )
                yield f"{source}: $", i, item
    else:
        raise ConfigError(
            f"{source}: $: expected a GetCisScanResultDetails response, a list of pages or a list "
            f"of results, got {type(document).__name__}"
        )


_PAGE_ONLY_KEYS = frozenset({"nextToken", "ResponseMetadata", PAGE_TARGET_KEY})


def _is_page(value: Any) -> bool:
    """A response page: has the results list, or (empty) only page-level keys."""
    return isinstance(value, Mapping) and (RESULTS_KEY in value or set(value) <= _PAGE_ONLY_KEYS)


def _page_items(page: Mapping[str, Any], path: str, source: str) -> Iterator[tuple[str, int, Any]]:
    if RESULTS_KEY not in page:
        # The model declares the list with min=1, so an empty page may omit the key.
        if set(page) <= _PAGE_ONLY_KEYS:
            return
        raise ConfigError(f"{source}: {path}: no {RESULTS_KEY!r} in this response object")
    items = page[RESULTS_KEY]
    if not isinstance(items, list):
        raise ConfigError(f"{source}: {path}.{RESULTS_KEY}: expected a list")
    list_path = f"{source}: {path}.{RESULTS_KEY}"
    for i, item in enumerate(items):
        yield list_path, i, item


def page_problems(document: Any, source: str) -> list[str]:
    """Pages that still carry a ``nextToken``: the file stops before the API's last page."""
    pages = document if isinstance(document, list) else [document]
    return [
        _more_problem(source, _at(document, i))
        for i, page in enumerate(pages)
        if isinstance(page, Mapping) and _more(page)
    ]


def _at(document: Any, index: int) -> str:
    """The JSON path of page ``index`` of ``document`` (a list of pages, or one page)."""
    return f"$[{index}]" if isinstance(document, list) else "$"


def _more(page: Mapping[str, Any]) -> bool:
    # Any value but null or "" (botocore's "no more pages") means more pages follow.
    return page.get("nextToken") not in (None, "")


def _more_problem(source: str, at: str) -> str:
    return (
        f"{source}: {at}.nextToken: this page says more results follow, but the file ends: "
        "the results are incomplete"
    )


def parse_document(document: Any, source: str) -> ParsedResults:
    """Rows of a loaded results document, with page-level problems (unfinished pagination)."""
    parsed = parse_items(iter_items(document, source))
    return ParsedResults(
        parsed.rows,
        (
            *page_problems(document, source),
            *_page_target_problems(document, source),
            *parsed.problems,
        ),
        tuple(declared_targets(document, source)),
    )


def declared_targets(document: Any, source: str = "results") -> list[str]:
    """Targets named by saved pages (``PAGE_TARGET_KEY``), in order; none for API documents.

    A page's target that is not a non-empty string is ConfigError (exit 2), never ignored: it
    names an instance whose rows must be there.
    """
    pages = document if isinstance(document, list) else [document]
    found = [
        _declared(page.get(PAGE_TARGET_KEY), source, _at(document, i))
        for i, page in enumerate(pages)
        if _is_page(page)  # else a bare result item, not a page
    ]
    return list(dict.fromkeys(t for t in found if t is not None))


def _declared(target: Any, source: str, at: str) -> str | None:
    if target is None:
        return None
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"{source}: {at}.{PAGE_TARGET_KEY}: expected an instance ID, got {target!r}"
        )
    return target


def _page_target_problems(document: Any, source: str) -> list[str]:
    """Rows of a saved page that name another target than the page was asked for."""
    pages = document if isinstance(document, list) else [document]
    out = []
    for i, page in enumerate(pages):
        if not isinstance(page, Mapping) or not isinstance(page.get(RESULTS_KEY), list):
            continue
        want = page.get(PAGE_TARGET_KEY)
        if not isinstance(want, str):
            continue
        other = _other_targets(page[RESULTS_KEY], want)
        if other:
            out.append(_foreign_problem(source, _at(document, i), other, want))
    return out


def _other_targets(items: list[Any], want: str) -> list[str]:
    return sorted(
        {
            str(item.get("targetResourceId"))
            for item in items
            if (type(item) is dict or isinstance(item, Mapping))
            and item.get("targetResourceId") != want
        }
    )


def _foreign_problem(source: str, at: str, other: list[str], want: str) -> str:
    return (
        f"{source}: {at}.{RESULTS_KEY}: rows of {', '.join(other[:3])} in the page asked "
        f"for {want}: the API answered for another instance"
    )


@dataclass(frozen=True, slots=True)
class _Page:
    """A saved page (a list element of results.json) read into rows as soon as it was parsed:
    what ``parse_document`` takes from it, so the page itself need not be kept."""

    rows: tuple[CheckResult, ...]
    problems: tuple[str, ...]  # its rows that could not be judged
    more: bool  # it carries a nextToken
    target: Any  # its PAGE_TARGET_KEY as found, None when absent: checked in page order
    foreign: str | None  # its rows of other targets than its own, as a problem


def _read_page(element: Any, index: int, source: str) -> Any:
    """``safeio.load_json``'s ``each`` for results: a page of a list of pages, read into rows.

    Anything ``parse_document`` would refuse or read otherwise (an element that is not a page:
    a bare result item; results that are not a list) is ``safeio.WHOLE``: the file is then
    parsed whole and goes through ``parse_document`` as it always did. Never raises.
    """
    if not _is_page(element) or not isinstance(element.get(RESULTS_KEY, []), list):
        return safeio.WHOLE
    at = f"$[{index}]"
    parsed = parse_items(_page_items(element, at, source))
    want = element.get(PAGE_TARGET_KEY)
    other = _other_targets(element.get(RESULTS_KEY, []), want) if isinstance(want, str) else []
    foreign = _foreign_problem(source, at, other, want) if other else None
    return _Page(parsed.rows, parsed.problems, _more(element), want, foreign)


def _parse_pages(pages: list[_Page], source: str) -> ParsedResults:
    """``parse_document`` of a list of pages, from the pages as ``_read_page`` read them."""
    more = [_more_problem(source, f"$[{i}]") for i, page in enumerate(pages) if page.more]
    declared = [_declared(page.target, source, f"$[{i}]") for i, page in enumerate(pages)]
    return ParsedResults(
        tuple(row for page in pages for row in page.rows),
        (
            *more,
            *(page.foreign for page in pages if page.foreign is not None),
            *(problem for page in pages for problem in page.problems),
        ),
        tuple(dict.fromkeys(t for t in declared if t is not None)),
    )


def load(path: str | Path) -> ParsedResults:
    """Read a results file (JSON) within ``safeio``'s bounds. Unreadable, too large, too deep,
    duplicate keys, non-finite numbers or malformed → ConfigError (exit 2)."""
    source = str(path)
    # A list of saved pages (what validate writes) is read a page at a time: the parsed pages
    # are never all in memory, only their rows (243,000 rows: 28 MB; parsed whole: 200 MB).
    document = safeio.load_json(
        path,
        limit=safeio.RESULTS_MAX_BYTES,
        what="results",
        each=lambda element, index: _read_page(element, index, source),
    )
    if isinstance(document, list) and document and all(isinstance(p, _Page) for p in document):
        return _parse_pages(document, source)
    return parse_document(document, source)
