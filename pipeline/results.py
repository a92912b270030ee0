"""Per-check results of an Inspector CIS scan, in the API's own shape, read into typed rows.

Accepted input: the items of ``GetCisScanResultDetails.scanResultDetails``, as one response
object, a list of response pages, or a bare list of items. Only ``scanArn`` is guaranteed by
the API; a row without a usable ``checkId`` or ``status`` cannot be judged and is reported as
a problem (the scan is then not trustworthy), never skipped.
"""

from __future__ import annotations

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
    if not isinstance(item, Mapping):
        return f"expected a result object, got {type(item).__name__}"
    raw_id = item.get("checkId")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return "result has no checkId"
    check_id = _check_id(raw_id)
    if check_id is None or len(check_id) > MAX_CHECK_ID:
        return f"checkId {raw_id[:MAX_CHECK_ID]!r} is not a CIS recommendation number"
    raw_status = item.get("status")
    status = _STATUS.get(raw_status) if isinstance(raw_status, str) else None
    if status is None:
        return f"check {check_id} has status {raw_status!r}, not one of PASSED, FAILED, SKIPPED"
    return CheckResult(
        check_id=check_id,
        status=status,
        target=_text(item.get("targetResourceId")) or NO_TARGET,
        title=_text(item.get("title")),
        level=_text(item.get("level")),
        platform=_text(item.get("platform")),
        scan_arn=_text(item.get("scanArn")),
        account_id=_text(item.get("accountId")),
        status_reason=_text(item.get("statusReason")),
        finding_arn=_text(item.get("findingArn")),
    )


_check_id = lru_cache(maxsize=8192)(normalise_check_id)


def _text(value: Any) -> str | None:
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
        f"{source}: $[{i}].nextToken: this page says more results follow, but the file ends: "
        "the results are incomplete"
        if isinstance(document, list)
        else f"{source}: $.nextToken: this page says more results follow, but the file ends: "
        "the results are incomplete"
        for i, page in enumerate(pages)
        # Any value but null or "" (botocore's "no more pages") means more pages follow.
        if isinstance(page, Mapping) and page.get("nextToken") not in (None, "")
    ]


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
    found = []
    for i, page in enumerate(pages):
        if not _is_page(page):
            continue  # a bare result item, not a page
        target = page.get(PAGE_TARGET_KEY)
        if target is None:
            continue
        if not isinstance(target, str) or not target.strip():
            at = f"$[{i}]" if isinstance(document, list) else "$"
            raise ConfigError(
                f"{source}: {at}.{PAGE_TARGET_KEY}: expected an instance ID, got {target!r}"
            )
        found.append(target)
    return list(dict.fromkeys(found))


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
        other = sorted(
            {
                str(item.get("targetResourceId"))
                for item in page[RESULTS_KEY]
                if isinstance(item, Mapping) and item.get("targetResourceId") != want
            }
        )
        if other:
            at = f"$[{i}]" if isinstance(document, list) else "$"
            out.append(
                f"{source}: {at}.{RESULTS_KEY}: rows of {', '.join(other[:3])} in the page asked "
                f"for {want}: the API answered for another instance"
            )
    return out


def load(path: str | Path) -> ParsedResults:
    """Read a results file (JSON) within ``safeio``'s bounds. Unreadable, too large, too deep,
    duplicate keys, non-finite numbers or malformed → ConfigError (exit 2)."""
    source = str(path)
    document = safeio.load_json(path, limit=safeio.RESULTS_MAX_BYTES, what="results")
    return parse_document(document, source)
