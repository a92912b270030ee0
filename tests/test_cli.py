"""The command line as users meet it: exit codes, one-line errors, GitHub Actions output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._dates import EXPIRED_DAY, FIRST_EXPIRY

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).parent / "invoke")
EXAMPLE = ROOT / "examples/results/al2-hardened-node.json"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if args[:1] == ("gate",) and "--level" not in args:
        args = (*args, "--level", "2")  # the example is the seed's LEVEL_2 scan (no scan.json)
    return subprocess.run(
        [INVOKE, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gate_passes_the_example_and_writes_reports(tmp_path: Path) -> None:
    proc = run("gate", "--results", str(EXAMPLE), "--out", str(tmp_path), "--today", "2026-12-01")
    assert proc.returncode == 0, proc.stderr
    assert "PASS: 240 checks on 1 target(s): 207 passed, 0 blocking, 13 excepted, 20 skipped" in (
        proc.stdout
    )
    assert {p.name for p in tmp_path.iterdir()} == {"verdict.json", "junit.xml", "summary.md"}


def test_gate_blocks_with_exit_3_after_expiry(tmp_path: Path) -> None:
    proc = run(
        "gate", "--results", str(EXAMPLE), "--out", str(tmp_path), "--today", str(EXPIRED_DAY)
    )
    assert proc.returncode == 3
    assert f"exception expired on {FIRST_EXPIRY}" in proc.stdout
    assert (tmp_path / "verdict.json").is_file()  # nothing is lost when the gate fails


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--results", "missing.json"], 2, "error: missing.json: cannot read results"),
        (["--results", str(EXAMPLE), "--today", "2026-13-01"], 2, "error: --today: '2026-13-01'"),
        (
            ["--results", str(EXAMPLE), "--policy", "tests/cases/policy_invalid/bad_date.yaml"],
            2,
            "error: tests/cases/policy_invalid/bad_date.yaml: $.exceptions[0].expires: ",
        ),
        (
            ["--results", str(EXAMPLE), "--policy", "policies/exceptions/amazon-linux-2023.yaml"],
            2,
            "policy is for AMAZON_LINUX_2023 but",
        ),
    ],
    ids=["missing-results", "bad-today", "invalid-policy", "wrong-platform-policy"],
)
def test_user_mistakes_get_one_line_and_exit_2(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    proc = run("gate", *args, "--out", str(tmp_path))
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert all(line.startswith("error: ") for line in proc.stderr.splitlines())


def test_zero_results_exit_4(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text('{"scanResultDetails": []}')
    proc = run(
        "gate",
        "--results",
        str(empty),
        "--policy",
        "policies/exceptions/amazon-linux-2.yaml",
        "--out",
        str(tmp_path / "o"),
    )
    assert proc.returncode == 4
    assert "no results at all" in proc.stdout


def test_github_actions_annotations_and_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.txt"
    results = tmp_path / "r.json"
    pages = json.loads(EXAMPLE.read_text())
    first = pages[0]["scanResultDetails"][0]
    assert (first["checkId"], first["status"]) == ("1.1.1.1", "PASSED")
    first["status"] = "FAILED"  # 1.1.1.1, no exception
    results.write_text(json.dumps(pages))
    proc = run(
        "gate",
        "--results",
        str(results),
        "--out",
        str(tmp_path / "o"),
        "--today",
        "2026-12-01",
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert proc.returncode == 3
    assert "::error title=CIS 1.1.1.1 FAILED::FAIL" in proc.stdout
    assert "CIS gate: FAIL" in summary.read_text()


def test_policy_validate_fails_on_expired_exceptions() -> None:
    assert run("policy.validate", "--today", "2026-12-01").returncode == 0
    proc = run("policy.validate", "--today", str(EXPIRED_DAY))
    assert proc.returncode == 2
    assert f"expired on {FIRST_EXPIRY}" in proc.stderr
