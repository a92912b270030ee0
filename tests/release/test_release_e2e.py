"""As a user: `build-and-validate --skip-unchanged` twice (build, then re-validate), the drift
section, and the promote/revoke commands' exit codes and one-line errors through invoke."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.aws import AwsClients
from pipeline.localaws import LocalAws
from pipeline.orchestration.chain import ChainSettings, run_chain
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.validate import Runtime
from tests._dates import shifted_now
from tests.release.conftest import POLICY_DIR, REGIONS, base_ami, release, verifier_ok
from tests.validate.conftest import FakeTime

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")


def _runtime(aws: LocalAws, lines: list[str]) -> Runtime:
    fake = FakeTime(aws)
    return Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("packer") is None, reason="needs Debian's packer (apt)")
def test_nightly_builds_once_then_revalidates_and_reports_drift(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    settings = ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version="1.32",
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=POLICY_DIR,
        local=True,
        skip_unchanged=True,
        release=release(),
    )
    lines: list[str] = []
    first = run_chain(settings, _runtime(aws, lines))
    assert first.exit_code == 0, "\n".join(lines[-40:])
    (built,) = first.context["rebuild"]  # type: ignore[misc]
    assert built["action"] == "built" and "no earlier pipeline AMI" in built["why"]
    ami = first.context["amis"][0]["ami"]  # type: ignore[index]
    run_promote(
        PromoteRequest(ami=ami),
        release(),
        clients,
        shifted_now(),
        print,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),
        known_regions=REGIONS,
    )

    manifest = tmp_path / "out" / "build" / "al2023-x86_64.manifest.json"
    builds = len(json.loads(manifest.read_text())["builds"])
    lines.clear()
    second = run_chain(settings, _runtime(aws, lines))
    assert second.exit_code == 0, "\n".join(lines[-40:])
    (again,) = second.context["rebuild"]  # type: ignore[misc]
    assert (again["action"], again["ami"]) == ("re-validated", ami)
    assert len(json.loads(manifest.read_text())["builds"]) == builds  # Packer did not run
    assert any(f"skip build, re-validate {ami}: inputs unchanged" in line for line in lines)
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    (drift,) = verdict["context"]["drift"]
    assert drift["baseline"]["ami"] == ami
    assert drift["baseline"]["source"] == "signed record"  # its evidence, not its tags
    assert drift["counts"]["before"] == drift["counts"]["after"]
    assert drift["new_failures"] == [] and drift["newly_passing"] == []
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "### Nightly rebuild" in summary and "### Drift against" in summary


def _invoke(aws: LocalAws, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **aws.env()}
    return subprocess.run(
        [INVOKE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_refused_promote_is_exit_3_with_one_line_per_reason(
    aws: LocalAws, clients: AwsClients
) -> None:
    stock = base_ami(clients)
    refused = _invoke(aws, "promote", "--ami", stock, "--channel", "candidate")
    assert refused.returncode == 3, refused.stderr
    errors = refused.stderr.strip().splitlines()
    assert errors and all(line.startswith(f"error: --ami {stock}: ") for line in errors)
    assert "Traceback" not in refused.stderr


def test_a_bad_account_id_is_exit_2_in_one_line(aws: LocalAws, clients: AwsClients) -> None:
    bad = _invoke(aws, "promote", "--ami", base_ami(clients), "--accounts", "12345")
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "error: --accounts 12345: not a 12-digit AWS account ID",
    )


def test_revoke_and_reap_dry_runs_exit_0(aws: LocalAws, clients: AwsClients) -> None:
    dry = _invoke(aws, "revoke", "--ami", base_ami(clients), "--reason", "test", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would mark" in dry.stdout
    reap = _invoke(aws, "reap", "--dry-run")
    assert reap.returncode == 0, reap.stdout + reap.stderr
