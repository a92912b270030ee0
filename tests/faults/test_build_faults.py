"""Packer failing mid-build, through ``build-and-validate --local`` on the local AWS: exit 1,
an ERROR verdict.json saying what failed, and nothing of the build left running."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.errors import ExitCode, PipelineError, Terminated
from pipeline.localaws import LocalAws
from pipeline.orchestration.chain import ChainSettings, run_chain
from tests.faults.conftest import Clock

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("packer") is None, reason="needs Debian's packer")


@pytest.mark.parametrize("operation", ["CreateImage", "StopInstances"])
def test_packer_fails_mid_build(
    aws: LocalAws, clock: Clock, tmp_path: Path, operation: str
) -> None:
    aws.load_scenario(
        {
            "inspector": {"initially_enabled": True},
            "faults": [{"operation": operation, "error": "UnauthorizedOperation", "times": 100}],
        }
    )
    cfg = ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version=None,
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=ROOT / "policies/exceptions",
        local=True,
    )
    with pytest.raises(PipelineError) as failed:
        run_chain(cfg, clock.runtime())
    assert failed.value.exit_code == ExitCode.UNEXPECTED
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["verdict"] == "ERROR" and written["exit_code"] == ExitCode.UNEXPECTED
    assert any("packer" in e.lower() for e in written["errors"]), written["errors"]
    aws.load_scenario(None)
    ec2 = aws_client(aws)
    building = ec2.describe_instances(
        Filters=[
            {"Name": "tag-key", "Values": ["cis-ami:run-id"]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]},
        ]
    )["Reservations"]
    assert building == [], "packer left its build instance"


def aws_client(aws: LocalAws) -> object:
    import boto3

    return boto3.client("ec2", endpoint_url=aws.endpoint, **_creds(aws))


def _creds(aws: LocalAws) -> dict[str, str]:
    env = aws.env()
    return {
        "region_name": env["AWS_DEFAULT_REGION"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.mark.parametrize(
    ("interrupt", "code"),
    [(KeyboardInterrupt(), ExitCode.INTERRUPTED), (Terminated(), ExitCode.TERMINATED)],
    ids=["SIGINT", "SIGTERM"],
)
def test_interrupted_build_records_its_exit_code(
    aws: LocalAws,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: BaseException,
    code: ExitCode,
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise interrupt

    monkeypatch.setattr("pipeline.orchestration.chain.nightly.build_or_reuse", interrupted)
    cfg = ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version=None,
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=ROOT / "policies/exceptions",
        local=True,
    )
    with pytest.raises(KeyboardInterrupt):
        run_chain(cfg, clock.runtime())
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["verdict"] == "ERROR" and written["exit_code"] == code
    assert any("interrupted by SIG" in e for e in written["errors"]), written["errors"]
