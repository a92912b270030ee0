"""Bad input, every command: exit 2 (or the documented code) with ``error:`` lines, no traceback.

One YAML file per case in ``tests/cases/bad_input/``: ``argv`` (after ``invoke``), ``env``
overrides (null unsets), ``files`` written into a temporary folder first, the expected ``exit``
code, a ``stderr`` fragment and the number of error ``lines`` (default 1); ``xfail`` names a
known gap (strict: the case fails once the gap is fixed, so the marker gets removed).
``{tmp}`` in argv, env and files is that folder, ``{endpoint}`` the session's local AWS
(``local_aws: true``).
Most cases run in this process through Invoke's own ``Program``; ``subprocess: true`` ones run
the real ``invoke`` binary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Program

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests/cases/bad_input").glob("*.yaml"))
INVOKE = str(Path(sys.executable).parent / "invoke")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def _fill(value: str, subst: dict[str, str]) -> str:
    for key, replacement in subst.items():
        value = value.replace("{" + key + "}", replacement)
    return value


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    """``invoke <argv>`` through Invoke's Program in this process (tasks.py found from cwd)."""
    capsys.readouterr()
    try:
        Program(binary_names=["invoke", "inv"]).run(["invoke", *argv], exit=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return Outcome(code, out.out, out.err)


def run_subprocess(argv: list[str]) -> Outcome:
    proc = subprocess.run(
        [INVOKE, *argv], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def load(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict) and {"argv", "exit", "stderr"} <= case.keys(), path.name
    return case


def test_there_are_enough_cases_covering_every_kind() -> None:
    assert len(CASES) >= 40
    kinds = {path.stem.split("-", 1)[0] for path in CASES}
    assert {"flag", "env", "policy", "results", "scenario", "ami", "out", "parse"} <= kinds


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_bad_input(
    path: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = load(path)
    if case.get("xfail"):  # a known gap, owned elsewhere: strict, so fixing it is noticed
        request.applymarker(pytest.mark.xfail(reason=case["xfail"], strict=True))
    subst = {"tmp": str(tmp_path)}
    if case.get("local_aws"):
        server = request.getfixturevalue("aws")  # reset, AWS_ENDPOINT_URL set
        subst["endpoint"] = server.endpoint
    for name, text in (case.get("files") or {}).items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_fill(text, subst), encoding="utf-8")
    for key, value in (case.get("env") or {}).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, _fill(str(value), subst))
    monkeypatch.chdir(ROOT)
    argv = [_fill(str(a), subst) for a in case["argv"]]

    got = run_subprocess(argv) if case.get("subprocess") else run_in_process(argv, capsys)

    report = f"argv={argv}\nexit={got.code}\nstderr:\n{got.stderr}\nstdout (tail):\n"
    report += got.stdout[-1500:]
    assert got.code == case["exit"], report
    assert "Traceback" not in got.stderr + got.stdout, report
    lines = got.stderr.strip("\n").splitlines()
    assert len(lines) == case.get("lines", 1), report
    assert all(line.startswith("error: ") for line in lines), report
    assert _fill(case["stderr"], subst) in got.stderr, report
