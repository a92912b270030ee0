"""``invoke gate`` on stored results: where the level comes from, and the run's evidence."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipeline import commands
from pipeline.errors import ConfigError
from pipeline.gate import Outcome
from tests._complete import SCAN_ARN, complete_rows, page, status_counts

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies/exceptions"
DAY = date(2026, 12, 1)
COMPLETED = {"targetStatus": "COMPLETED"}  # as ListCisScanResultsAggregatedByTargetResource says
FAILED = ["1.6.1.6", "2.1.2", "3.2.1", "3.4.2.7", "4.2.2", "4.2.4", "5.1.1.6", "6.1.11", "6.1.12"]


def evidence(folder: Path, *, level: str = "LEVEL_2", local: bool = True) -> Path:
    """A validate run's evidence folder: results.json, scan.json, targets.json, run.json."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = complete_rows(level=int(level[-1]), target="i-1", failed=FAILED)
    (folder / "results.json").write_text(json.dumps([page(rows)]))
    counts = status_counts(rows)
    scan = {"scanArn": SCAN_ARN, "securityLevel": level, "status": "COMPLETED"}
    scan |= {"totalChecks": len(rows), "failedChecks": counts["failed"]}
    (folder / "scan.json").write_text(json.dumps(scan))
    (folder / "targets.json").write_text(
        json.dumps([{"targetResourceId": "i-1", "statusCounts": counts} | COMPLETED])
    )
    run = {"run_id": "20261127T000000Z-abcdef", "local": local, "architectures": {"i-1": "x86_64"}}
    (folder / "run.json").write_text(json.dumps(run))
    return folder / "results.json"


def gate(results: Path, out: Path, level: int | None = None) -> Outcome:
    verdict = commands.run_gate(
        str(results), [], DAY, str(out), POLICIES, lambda _: None, level=level
    )
    return verdict.verdict


def test_level_comes_from_the_scan_beside_the_results(tmp_path: Path) -> None:
    results = evidence(tmp_path / "evidence")
    assert gate(results, tmp_path / "out") is Outcome.PASS
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["level"] == "LEVEL_2"


def test_without_level_or_scan_the_gate_asks_for_it(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps([page(complete_rows(target="i-1"))]))
    with pytest.raises(ConfigError, match="--level: give the level"):
        gate(results, tmp_path / "out")
    assert gate(results, tmp_path / "out", level=2) is Outcome.PASS


def test_a_flag_that_contradicts_the_scan_is_not_a_pass(tmp_path: Path) -> None:
    results = evidence(tmp_path / "evidence", level="LEVEL_2")
    assert gate(results, tmp_path / "out", level=1) is Outcome.ERROR


def test_counts_beside_the_results_are_reconciled(tmp_path: Path) -> None:
    results = evidence(tmp_path / "evidence")
    pages = json.loads(results.read_text())
    pages[0]["scanResultDetails"] = [
        r for r in pages[0]["scanResultDetails"] if r["status"] != "FAILED"
    ]
    results.write_text(json.dumps(pages))  # someone removed the failures from the evidence
    assert gate(results, tmp_path / "out") is Outcome.ERROR


def test_local_evidence_keeps_its_marker_in_every_report(tmp_path: Path) -> None:
    results = evidence(tmp_path / "evidence", local=True)
    gate(results, tmp_path / "out")
    out = tmp_path / "out"
    assert json.loads((out / "verdict.json").read_text())["context"]["local"] is True
    assert "local AWS" in (out / "summary.md").read_text()
    assert "local AWS" in (out / "junit.xml").read_text()


def test_cli_without_level_is_exit_2_with_one_line(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps([page(complete_rows(target="i-1"))]))
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "gate", "--results", str(results), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--level" in lines[0] and "Traceback" not in done.stderr
