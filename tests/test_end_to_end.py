"""``invoke build-and-validate --local`` as a user runs it: real packer, local AWS, reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline import commands
from pipeline.errors import ConfigError
from tests._dates import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).parent / "invoke")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("packer") is None, reason="needs Debian's packer (apt)"),
]


@dataclass
class Chain:
    """One ``invoke build-and-validate --local`` process: its out dir, GitHub outputs, and its
    stdout and stderr (files: two runs at once never block on a full pipe)."""

    proc: subprocess.Popen[bytes]
    tmp: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    @property
    def outputs(self) -> Path:
        return self.tmp / "github-output"

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def stdout(self) -> str:
        return (self.tmp / "stdout").read_text()

    @property
    def stderr(self) -> str:
        return (self.tmp / "stderr").read_text()


def start(tmp_path: Path, *extra: str, config: str | None = None) -> Chain:
    """``config``: an Invoke configuration file (``invoke -f FILE build-and-validate ...``)."""
    env = {
        **os.environ,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary"),
    }
    env.pop("AWS_ENDPOINT_URL", None)  # start an in-process local AWS
    env = subprocess_env(tmp_path, env)  # the shipped policies as of the real date
    with (tmp_path / "stdout").open("wb") as stdout, (tmp_path / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [
                INVOKE,
                *(("-f", config) if config else ()),
                "build-and-validate",
                "--local",
                "--out",
                str(tmp_path / "out"),
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    return Chain(proc, tmp_path)


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Chain]]:
    """The two runs, started together: each has its own local AWS (on a free port) and mostly
    waits for that local AWS's scripted latencies (SSM registration, the scan)."""
    scenario = ROOT / "examples/scenarios/unexcepted-failure.yaml"
    yield from finished(
        {
            "default": start(tmp_path_factory.mktemp("default")),
            "failure": start(tmp_path_factory.mktemp("failure"), "--scenario", str(scenario)),
        }
    )


def finished(started: dict[str, Chain]) -> Iterator[dict[str, Chain]]:
    """Wait for runs started together, yield them, and kill any still running at the end."""
    try:
        for run in started.values():
            run.proc.wait(timeout=300)
        yield started
    finally:
        for run in started.values():
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()


def test_hardened_al2023_image_passes_with_its_exceptions(chains: dict[str, Chain]) -> None:
    run = chains["default"]
    out, outputs = run.out, run.outputs
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "PASS"
    assert verdict["context"]["local"] is True
    excepted = {f["checkId"] for f in verdict["failed_excepted"]}
    assert {"3.2.1", "6.1.11", "6.1.12"} <= excepted
    assert all(f["exception"]["reason"] for f in verdict["failed_excepted"])
    assert "::group::build" in run.stdout and "::endgroup::" in run.stdout
    written = outputs.read_text()
    ami = verdict["context"]["amis"][0]["ami"]
    assert f"ami-ids={ami}" in written and "verdict=PASS" in written
    assert (out / "evidence/cis-report.csv").is_file()
    assert (out / "build/al2023-x86_64.manifest.json").is_file()


def test_a_failure_scenario_blocks_with_exit_3(chains: dict[str, Chain]) -> None:
    run = chains["failure"]
    out, outputs = run.out, run.outputs
    assert run.returncode == 3, run.stdout[-3000:] + run.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert sorted(f["checkId"] for f in verdict["failed_unexcepted"]) == ["1.1.1.4", "3.3.1"]
    assert "::error title=CIS 1.1.1.4 FAILED::" in run.stdout
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


def test_the_pass_covers_all_three_sections(chains: dict[str, Chain]) -> None:
    """The README's command proves the node works and ships no fixable critical CVE, too."""
    run = chains["default"]
    verdict = json.loads((run.out / "verdict.json").read_text())
    sections = verdict["sections"]
    assert {k: sections[k]["verdict"] for k in ("cis", "node", "vulnerabilities")} == {
        "cis": "PASS",
        "node": "PASS",
        "vulnerabilities": "PASS",
    }
    assert "PASS: CIS PASS, node PASS, vulnerabilities PASS" in run.stdout
    for name in ("node-probe.json", "coverage.json", "findings.json", "finding-counts.json"):
        assert (run.out / "evidence" / name).is_file(), name
    assert "| Section | Verdict |" in (run.out / "summary.md").read_text()


def test_invoke_gate_judges_all_three_sections_from_the_stored_evidence(
    chains: dict[str, Chain], tmp_path: Path
) -> None:
    """``invoke gate`` on a run's evidence folder reaches the run's verdict in every section,
    and a package-scan file missing beside the others is bad input, never a skipped section."""
    evidence = tmp_path / "evidence"
    shutil.copytree(chains["default"].out / "evidence", evidence)
    verdict = json.loads((chains["default"].out / "verdict.json").read_text())
    judged_on = date.fromisoformat(verdict["date"])

    def gate(out: str) -> Any:
        return commands.run_gate(
            str(evidence / "results.json"), [], judged_on, str(tmp_path / out),
            ROOT / "policies/exceptions", lambda _: None,
        )  # fmt: skip

    again = gate("again")
    assert again.node is not None and again.vulnerabilities is not None
    assert (again.verdict.value, again.node.verdict.value) == ("PASS", "PASS")
    assert again.vulnerabilities.verdict.value == "PASS"
    probe = json.loads((evidence / "node-probe.json").read_text())
    for invocation in probe["invocations"].values():  # the node says kubelet is gone
        invocation["StandardOutputContent"] = invocation["StandardOutputContent"].replace(
            "NODE|node.kubelet.installed|PASS|", "NODE|node.kubelet.installed|FAIL|"
        )
    (evidence / "node-probe.json").write_text(json.dumps(probe))
    assert gate("failed").verdict.value == "FAIL"
    (evidence / "findings.json").unlink()
    with pytest.raises(ConfigError, match="findings.json: missing beside"):
        gate("incomplete")
