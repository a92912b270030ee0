"""``invoke build-and-validate --local`` as a user runs it: real packer, local AWS, reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).parent / "invoke")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("packer") is None, reason="needs Debian's packer (apt)"),
]


def chain(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    out = tmp_path / "out"
    outputs = tmp_path / "github-output"
    summary = tmp_path / "step-summary"
    env = {
        **os.environ,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    env.pop("AWS_ENDPOINT_URL", None)  # start an in-process local AWS
    proc = subprocess.run(
        [INVOKE, "build-and-validate", "--local", "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, out, outputs


def test_hardened_al2023_image_passes_with_its_exceptions(tmp_path: Path) -> None:
    proc, out, outputs = chain(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "PASS"
    assert verdict["context"]["local"] is True
    excepted = {f["checkId"] for f in verdict["failed_excepted"]}
    assert {"3.2.1", "6.1.11", "6.1.12"} <= excepted
    assert all(f["exception"]["reason"] for f in verdict["failed_excepted"])
    assert "::group::build" in proc.stdout and "::endgroup::" in proc.stdout
    written = outputs.read_text()
    ami = verdict["context"]["amis"][0]["ami"]
    assert f"ami-ids={ami}" in written and "verdict=PASS" in written
    assert (out / "evidence/cis-report.csv").is_file()
    assert (out / "build/al2023-x86_64.manifest.json").is_file()


def test_a_failure_scenario_blocks_with_exit_3(tmp_path: Path) -> None:
    scenario = ROOT / "examples/scenarios/unexcepted-failure.yaml"
    proc, out, outputs = chain(tmp_path, "--scenario", str(scenario))
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert sorted(f["checkId"] for f in verdict["failed_unexcepted"]) == ["1.1.1.4", "3.3.1"]
    assert "::error title=CIS 1.1.1.4 FAILED::" in proc.stdout
    assert "verdict=FAIL" in outputs.read_text()


def test_scenario_without_local_is_refused() -> None:
    proc = subprocess.run(
        [INVOKE, "build-and-validate", "--scenario", "examples/scenarios/zero-checks.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "error: --scenario rehearses failures on the local AWS: add --local" in proc.stderr
