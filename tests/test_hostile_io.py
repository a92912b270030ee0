"""Hostile input files: every loader refuses them with exit 2 and one line naming file and path.

Data-driven: ``tests/cases/hostile/<name>.json`` holds the loader, the file content (literal,
Latin-1 bytes, repeated parts, or a sparse file just over the loader's size limit), the exit
code and the fragments the one error line must contain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import policy, results, safeio, safeyaml
from pipeline.errors import MAX_LINE_CHARS, MAX_PROBLEM_LINES, ConfigError, PipelineError
from pipeline.localaws import scenario

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests/cases/hostile").glob("*.json"))
INVOKE = str(Path(sys.executable).parent / "invoke")

LOADERS: dict[str, tuple[Callable[[Path], object], int, str]] = {
    "results": (results.load, safeio.RESULTS_MAX_BYTES, ".json"),
    "policy": (policy.load, safeio.POLICY_MAX_BYTES, ".yaml"),
    "scenario": (scenario.load, scenario.MAX_BYTES, ".yaml"),
}


def _content(case: dict[str, Any]) -> bytes:
    if "text" in case:
        return str(case["text"]).encode("utf-8")
    if "latin1" in case:
        return str(case["latin1"]).encode("latin-1")
    out = []
    for part in case["parts"]:
        out.append(part if isinstance(part, str) else part[0] * part[1])
    return "".join(out).encode("utf-8")


def _write(case: dict[str, Any], folder: Path) -> Path:
    _, limit, suffix = LOADERS[case["loader"]]
    path = folder / f"input{suffix}"
    if case.get("sparse_over_limit"):
        with open(path, "wb") as handle:  # sparse: no disk, no time
            handle.truncate(limit + 1)
    else:
        path.write_bytes(_content(case))
    return path


@pytest.mark.parametrize("case_file", CASES, ids=lambda p: p.stem)
def test_hostile_file_is_one_line_exit_2(case_file: Path, tmp_path: Path) -> None:
    case = json.loads(case_file.read_text())
    path = _write(case, tmp_path)
    load = LOADERS[case["loader"]][0]
    with pytest.raises(PipelineError) as caught:
        load(path)
    err = caught.value
    lines = err.lines()
    assert int(err.exit_code) == case["exit"]
    assert len(lines) == 1, f"GOT {lines}"
    (line,) = lines
    assert line.startswith(f"{path}: "), f"GOT  {line}"
    for fragment in case["expect"]:
        assert fragment in line, f"GOT  {line}\nWANT {fragment}"
    assert "\n" not in line and "\r" not in line and len(line) <= MAX_LINE_CHARS


def test_cases_cover_every_loader_and_attack() -> None:
    names = {p.stem for p in CASES}
    for loader in LOADERS:
        assert {f"{loader}_over_size_limit", f"{loader}_deep_100000"} <= names
    assert {"policy_alias_bomb", "scenario_alias_bomb", "results_duplicate_status"} <= names


def test_size_is_checked_before_reading(tmp_path: Path) -> None:
    """A 1 GiB sparse file is refused from its size alone (reading it would take seconds)."""
    big = tmp_path / "huge.json"
    with open(big, "wb") as handle:
        handle.truncate(1024**3)
    with pytest.raises(ConfigError, match=r"results file is too large \(1,073,741,824 bytes"):
        results.load(big)


def test_a_stream_without_a_size_is_refused() -> None:
    """``/dev/zero`` reports size 0 and never ends: only regular files are read."""
    with pytest.raises(ConfigError, match="not a regular file"):
        safeio.read_bytes("/dev/zero", limit=1024, what="results")


def test_a_fifo_without_a_writer_is_refused_at_once(tmp_path: Path) -> None:
    """Opening a FIFO nobody writes to would block forever; it is refused instead."""
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"results.json: \$: results is not a regular file"):
        safeio.read_bytes(fifo, limit=1024, what="results")


def test_valid_documents_still_load(tmp_path: Path) -> None:
    doc = {"a": [1, 2.5, -3, {"b": '[{\\"', "c": None}], "d": "x" * 10}
    nested: Any = doc
    for _ in range(safeio.MAX_DEPTH - 3):
        nested = [nested]
    assert safeio.parse_json(json.dumps(nested).encode(), "ok.json") == nested
    text = "a: [1, 2.5, {b: c}]\nd: 2027-01-31\n"
    assert safeyaml.load_yaml(text, "ok.yaml") == {"a": [1, 2.5, {"b": "c"}], "d": _date()}


def _date() -> Any:
    from datetime import date

    return date(2027, 1, 31)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"title": "[" * 10_000 + "{" * 10_000, "x": ['\\"]]]]']})
    assert safeio.parse_json(text.encode(), "s.json")["x"] == ['\\"]]]]']


def test_every_problem_is_named_but_the_output_is_capped() -> None:
    text = "[" + ", ".join(f'{{"k{i}": NaN}}' for i in range(100)) + "]"
    with pytest.raises(ConfigError) as caught:
        safeio.parse_json(text.encode(), "many.json")
    assert len(caught.value.problems) == 100
    lines = caught.value.lines()
    assert len(lines) == MAX_PROBLEM_LINES + 1
    assert lines[0] == "many.json: $[0].k0: NaN is not allowed (numbers must be finite)"
    assert lines[-1] == f"... and {100 - MAX_PROBLEM_LINES} more problems"


def test_error_lines_are_single_printable_lines() -> None:
    err = ConfigError("x", problems=["a\nb", "c\rd\x1b[31m\u202e", "e" * 5000, "f\ud800"])
    assert err.lines()[:2] == ["a\\nb", "c\\rd\\u001b[31m\\u202e"]
    assert len(err.lines()[2]) == MAX_LINE_CHARS and err.lines()[2].endswith("…")
    assert err.lines()[3] == "f\\ud800"
    "\n".join(err.lines()).encode("utf-8")  # printable: no lone surrogate left


def test_cli_refuses_a_100000_deep_results_file_in_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    proc = subprocess.run(
        [INVOKE, "gate", "--results", str(deep), "--level", "2", "--out", str(tmp_path / "o")],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {deep}: line 1, column 65: nested deeper than 64 levels"
    ]
    assert "Traceback" not in proc.stdout + proc.stderr


_NASTY = st.text(alphabet=st.sampled_from(["[", "]", "{", "}", '"', "\\", "a", "\n", "é"]))
_JSON = st.recursive(
    st.none() | st.integers() | _NASTY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NASTY, inner, max_size=3),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(_JSON, st.booleans(), st.integers(min_value=1, max_value=6))
@settings(max_examples=2 * settings().max_examples)  # the profile's budget, twice
def test_depth_prescan_agrees_with_the_real_depth(value: Any, ascii_only: bool, limit: int) -> None:
    """Brackets, quotes and backslashes inside strings never fool the C-speed depth check."""
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert (safeio.json_too_deep(data, limit) is not None) == (_depth(value) > limit)


def _structure_whole(data: bytes) -> bytes:
    """``safeio._structure`` as one pass over the whole input (what it replaced)."""
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    return unescaped.translate(None, safeio._NOT_STRUCTURE)


@given(st.binary() | st.text(alphabet='\\"[]{}a').map(str.encode), st.integers(1, 5))
@settings(max_examples=400)
def test_escapes_are_dropped_a_slice_at_a_time_as_in_one_pass(data: bytes, size: int) -> None:
    """The depth check reads a file with escapes in slices (no whole copy of the file): a slice
    boundary never splits a run of backslashes, so the result is the one-pass result."""
    with mock.patch.object(safeio, "_SLICE", size):
        assert safeio._structure(data) == _structure_whole(data)


def test_each_element_of_an_array_is_handed_over_as_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[{"a": 1}, [2], "three"]')
    seen: list[tuple[Any, int]] = []

    def each(element: Any, index: int) -> Any:
        seen.append((element, index))
        return index * 10

    assert safeio.load_json(path, limit=1024, what="x", each=each) == [0, 10, 20]
    assert seen == [({"a": 1}, 0), ([2], 1), ("three", 2)]
    whole = safeio.load_json(path, limit=1024, what="x", each=lambda e, i: safeio.WHOLE)
    assert whole == [{"a": 1}, [2], "three"]
    path.write_text('{"a": [1, 2]}')  # not an array: parsed whole
    assert safeio.load_json(path, limit=1024, what="x", each=each) == {"a": [1, 2]}


RESULTS_CASES = [p for p in CASES if p.stem.startswith("results_")]


@pytest.mark.parametrize("case_file", RESULTS_CASES, ids=lambda p: p.stem)
def test_every_hostile_file_is_refused_the_same_element_by_element(
    case_file: Path, tmp_path: Path
) -> None:
    """Every bound and refusal holds when an array is read one element at a time."""
    case = json.loads(case_file.read_text())
    path = _write(case, tmp_path)
    refusals = []
    for each in (None, lambda element, index: index):
        with pytest.raises(ConfigError) as caught:
            safeio.load_json(path, limit=safeio.RESULTS_MAX_BYTES, what="results", each=each)
        refusals.append((caught.value.lines(), caught.value.problems))
    assert refusals[0] == refusals[1]
