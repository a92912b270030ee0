"""``results.load`` reads a list of saved pages a page at a time (``safeio.load_json``'s
``each``), so the parsed file is never whole in memory. It must say exactly what reading the
file whole and ``results.parse_document`` say: the same rows, problems and targets, or the same
refusal, for every document, well-formed or not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import results, safeio
from pipeline.errors import ConfigError
from tests._complete import complete_rows

A, B = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"


def _page(target: str | None, rows: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    page: dict[str, Any] = {} if rows is None else {"scanResultDetails": rows}
    if target is not None:
        page["targetResourceId"] = target
    return {**page, **extra}


def _rows(target: str, n: int = 3) -> list[dict[str, Any]]:
    return complete_rows(target=target)[:n]


def _whole(path: Path) -> results.ParsedResults:
    """What ``results.load`` said before it read pages one at a time."""
    return results.parse_document(
        safeio.load_json(path, limit=safeio.RESULTS_MAX_BYTES, what="results"), str(path)
    )


def _outcome(read: Any, path: Path) -> Any:
    try:
        return read(path)
    except ConfigError as exc:
        return ("refused", exc.lines(), exc.problems)


def _same(path: Path) -> Any:
    streamed, whole = _outcome(results.load, path), _outcome(_whole, path)
    assert streamed == whole
    return streamed


DOCUMENTS: dict[str, str] = {
    "saved pages": json.dumps([_page(A, _rows(A)), _page(B, _rows(B))]),
    "an empty page among them": json.dumps([_page(A, _rows(A)), _page(B), _page(None, [])]),
    "a page that says more follow": json.dumps([_page(A, _rows(A), nextToken="t"), _page(B)]),
    "an empty nextToken": json.dumps([_page(A, _rows(A), nextToken=""), _page(B, nextToken=None)]),
    "rows of another target": json.dumps([_page(A, _rows(A) + _rows(B, 1)), _page(B, _rows(B))]),
    "unusable rows": json.dumps([_page(A, [{"checkId": "x"}, 3, {"status": "PASSED"}])]),
    "a target that is not an ID": json.dumps([_page(A, _rows(A)), _page(" ", _rows(B))]),
    "a target that is a list": json.dumps([_page(A, _rows(A)), {"targetResourceId": [1]}]),
    "results that are not a list": json.dumps([_page(A, _rows(A)), _page(B, {"x": 1})]),  # type: ignore[arg-type]
    "a bare item after pages": json.dumps([_page(A, _rows(A)), *_rows(B)]),
    "bare items": json.dumps(_rows(A) + _rows(B)),
    "one response object": json.dumps(_page(None, _rows(A))),
    "no pages": "[]",
    "no pages, spaced": " [ \n\t] \r\n",
    "a page served twice": json.dumps([_page(A, _rows(A))] * 2),
    "pages, pretty-printed": json.dumps([_page(A, _rows(A)), _page(B, _rows(B))], indent=2),
    "duplicate key in the second page": (
        f'[{json.dumps(_page(A, _rows(A)))}, {{"targetResourceId": "{B}", '
        '"scanResultDetails": [{"checkId": "1.1.1.1", "status": "FAILED", "status": "PASSED"}]}]'
    ),
    "NaN in the second page": f'[{json.dumps(_page(A, _rows(A)))}, {{"x": NaN}}]',
    "a huge integer in the last page": f'[{json.dumps(_page(A))}, {{"n": {"9" * 100}}}]',
    "truncated after the first page": f"[{json.dumps(_page(A, _rows(A)))},",
    "no closing bracket": f"[{json.dumps(_page(A, _rows(A)))}",
    "a trailing comma": f"[{json.dumps(_page(A, _rows(A)))},]",
    "no comma between pages": f"[{json.dumps(_page(A))} {json.dumps(_page(B))}]",
    "extra data after the list": f"[{json.dumps(_page(A))}] []",
    "a second BOM": "\ufeff" + json.dumps([_page(A)]),
    "not JSON at all": "[nope]",
}


@pytest.mark.parametrize("text", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_reading_page_by_page_says_what_reading_whole_says(text: str, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    _same(path)


def test_saved_pages_are_read_one_at_a_time(tmp_path: Path) -> None:
    """The benchmark's shape (validate's evidence) never gets parsed whole."""
    path = tmp_path / "results.json"
    path.write_text(json.dumps([_page(A, _rows(A)), _page(B, _rows(B))]), encoding="utf-8")
    with mock.patch.object(safeio, "_parse_whole", side_effect=AssertionError("parsed whole")):
        parsed = results.load(path)
    assert parsed.targets == (A, B) and len(parsed.rows) == 6 and parsed.problems == ()


def test_rows_share_their_repeated_strings(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps([_page(A, _rows(A)), _page(B, _rows(B))]), encoding="utf-8")
    rows = results.load(path).rows
    assert rows[0].scan_arn is rows[5].scan_arn and rows[0].target is rows[2].target
    assert rows[0].title is rows[3].title  # the same check on two targets


def test_a_refusal_names_the_page_it_is_in(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(DOCUMENTS["duplicate key in the second page"], encoding="utf-8")
    refused = _same(path)
    assert refused[1] == [f"{path}: $[1].scanResultDetails[0].status: duplicate key 'status'"]


_ROW = st.fixed_dictionaries(
    {
        "checkId": st.sampled_from(["1.1.1.1", "1.2", "x"]),
        "status": st.sampled_from(["PASSED", "FAILED", "?"]),
    },
    optional={"targetResourceId": st.sampled_from([A, B, 5]), "title": st.sampled_from(["t", ""])},
)
_PAGE = st.fixed_dictionaries(
    {},
    optional={
        "scanResultDetails": st.lists(_ROW | st.just(3), max_size=3) | st.just({}),
        "targetResourceId": st.sampled_from([A, B, "", None, 7]),
        "nextToken": st.sampled_from(["", None, "t", 0]),
        "other": st.just(1),
    },
)


@given(document=st.lists(_PAGE | _ROW, max_size=4), indent=st.integers(min_value=0, max_value=3))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_list_of_pages_and_items_reads_the_same(
    document: list[Any], indent: int, tmp_path: Path
) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(document, indent=indent or None), encoding="utf-8")
    _same(path)
