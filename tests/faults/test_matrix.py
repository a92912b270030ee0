"""The fault matrix, in process: ``run_validate`` on the local AWS under each injected failure.

For every case: the verdict is never PASS, the exit code is the documented one, verdict.json
records what was observed (errors) and the code, and the ``aws`` fixture checks afterwards
that no test instance, scan configuration or per-run security group is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import AwsClients
from pipeline.errors import ExitCode, PipelineError
from pipeline.localaws import LocalAws
from pipeline.reap import run_reap
from pipeline.validate import run_validate
from tests._dates import shifted_now
from tests.faults.conftest import Clock
from tests.validate.conftest import make_ami, settings

CIS_OPERATIONS = (
    "ListCisScanConfigurations",
    "CreateCisScanConfiguration",
    "ListCisScans",
    "ListCisScanResultsAggregatedByTargetResource",
    "GetCisScanResultDetails",
    "ListCisScanResultsAggregatedByChecks",
)
STORM = 20  # more than the clients' two attempts per call, and than any poll's patience


@dataclass(frozen=True)
class Case:
    scenario: dict[str, Any]
    code: ExitCode
    observed: str  # a fragment of the errors verdict.json must record
    overrides: dict[str, Any] = field(default_factory=dict)


def _storm(operation: str, error: str) -> dict[str, Any]:
    return {"faults": [{"operation": operation, "error": error, "times": STORM}]}


CASES: dict[str, Case] = {
    **{
        f"throttling-storm-{op}": Case(_storm(op, "ThrottlingException"), ExitCode.UNEXPECTED, op)
        for op in CIS_OPERATIONS
    },
    **{
        f"5xx-{op}": Case(_storm(op, "InternalServerException"), ExitCode.UNEXPECTED, op)
        for op in CIS_OPERATIONS
    },
    "scan-failed": Case({"scan": {"final_status": "FAILED"}}, ExitCode.UNTRUSTED_SCAN, "FAILED"),
    "scan-cancelled": Case(
        {"scan": {"final_status": "CANCELLED"}}, ExitCode.UNTRUSTED_SCAN, "CANCELLED"
    ),
    "target-timed-out": Case(
        {"scan": {"final_status": "FAILED"}}, ExitCode.UNTRUSTED_SCAN, "TIMED_OUT"
    ),
    "zero-checks": Case({"scan": {"zero_checks": True}}, ExitCode.UNTRUSTED_SCAN, "zero checks"),
    "ssm-never-online": Case(
        {"ssm": {"online_after_s": "never"}},
        ExitCode.UNTRUSTED_SCAN,
        "not Online in SSM",
        {"ssm_timeout_s": 120},
    ),
    "scan-never-ends": Case(
        {"scan": {"duration_s": 100_000}},
        ExitCode.UNTRUSTED_SCAN,
        "still IN_PROGRESS",
        {"scan_timeout_s": 600},
    ),
    "report-download-fails": Case(
        _storm("GetCisScanReport", "InternalServerException"),
        ExitCode.UNTRUSTED_SCAN,
        "CIS report",
    ),
}


def check_outcome(out: Path, got: int, want: ExitCode, observed: str) -> dict[str, Any]:
    """The documented code, never PASS, and verdict.json says what happened with that code."""
    written = json.loads((out / "verdict.json").read_text())
    assert got == want, (got, want, written["errors"])
    assert written["verdict"] != "PASS"
    assert written["exit_code"] == got
    assert written["errors"], written
    assert any(observed in e for e in written["errors"]), written["errors"]
    return written


def run(clients: AwsClients, clock: Clock, tmp_path: Path, ami: str, **overrides: Any) -> int:
    """Run validate; the exit code the command would have (verdict's or the error's)."""
    try:
        verdict = run_validate(settings(tmp_path, ami, **overrides), clients, clock.runtime())
    except PipelineError as exc:
        return int(exc.exit_code)
    return int(verdict.exit_code)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault(name: str, aws: LocalAws, clients: AwsClients, clock: Clock, tmp_path: Path) -> None:
    case = CASES[name]
    ami = make_ami(clients)
    aws.load_scenario(case.scenario)
    code = run(clients, clock, tmp_path, ami, **case.overrides)
    check_outcome(tmp_path / "out", code, case.code, case.observed)


def test_target_ssm_unmanaged(
    aws: LocalAws,
    clients: AwsClients,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Registered, then dropped before Inspector reached it: skip our own SSM wait (the seam) so
    # the scan itself meets an unmanaged instance.
    monkeypatch.setattr("pipeline.validate.run.wait_ssm", lambda *args: [])
    ami = make_ami(clients)
    aws.load_scenario({"ssm": {"online_after_s": "never"}})
    code = run(clients, clock, tmp_path, ami)
    check_outcome(tmp_path / "out", code, ExitCode.UNTRUSTED_SCAN, "SSM_UNMANAGED")


def test_target_unsupported_os(
    aws: LocalAws, clients: AwsClients, clock: Clock, tmp_path: Path
) -> None:
    # The name says EKS AL2023 (so the pipeline accepts it), but it carries no platform tag and
    # is no seeded base image: Inspector has no benchmark for its OS.
    base = make_ami(clients, level=None)
    instance = clients.ec2.run_instances(
        ImageId=base, InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    name = "amazon-eks-node-al2023-x86_64-standard-1.32-v20990101"
    ami = clients.ec2.create_image(InstanceId=instance, Name=name)["ImageId"]
    clients.ec2.terminate_instances(InstanceIds=[instance])
    code = run(clients, clock, tmp_path, ami)
    check_outcome(tmp_path / "out", code, ExitCode.UNTRUSTED_SCAN, "UNSUPPORTED_OS")


def test_instance_terminated_from_outside_mid_scan(
    aws: LocalAws, clients: AwsClients, clock: Clock, tmp_path: Path
) -> None:
    ami = make_ami(clients)
    aws.load_scenario({"scan": {"duration_s": 60}})

    def terminate_once_scanning(_: float) -> None:
        if clients.calls.counts["inspector2:ListCisScans"] and not done:
            done.append(True)
            running = clients.ec2.describe_instances(
                Filters=[
                    {"Name": "tag-key", "Values": ["cis-validate:run-id"]},
                    {"Name": "instance-state-name", "Values": ["running"]},
                ]
            )["Reservations"]
            ids = [i["InstanceId"] for r in running for i in r["Instances"]]
            clients.ec2.terminate_instances(InstanceIds=ids)

    done: list[bool] = []
    clock.hooks.append(terminate_once_scanning)
    code = run(clients, clock, tmp_path, ami)
    assert done
    check_outcome(tmp_path / "out", code, ExitCode.UNTRUSTED_SCAN, "no longer running")


def test_scan_configuration_deleted_from_outside(
    aws: LocalAws, clients: AwsClients, clock: Clock, tmp_path: Path
) -> None:
    ami = make_ami(clients)
    aws.load_scenario({"scan": {"duration_s": 60}})

    def delete_once_scanning(_: float) -> None:
        if clients.calls.counts["inspector2:ListCisScans"] and not done:
            done.append(True)
            for config in clients.inspector2.list_cis_scan_configurations()["scanConfigurations"]:
                clients.inspector2.delete_cis_scan_configuration(
                    scanConfigurationArn=config["scanConfigurationArn"]
                )

    done: list[bool] = []
    clock.hooks.append(delete_once_scanning)
    code = run(clients, clock, tmp_path, ami)
    assert done
    check_outcome(tmp_path / "out", code, ExitCode.UNTRUSTED_SCAN, "deleted from outside")


def test_tagging_fails_at_the_end(
    aws: LocalAws, clients: AwsClients, clock: Clock, tmp_path: Path
) -> None:
    ami = make_ami(clients)
    aws.load_scenario({"scan": {"duration_s": 30}})

    def break_tagging(_: float) -> None:  # from the scan on, every CreateTags fails
        if clients.calls.counts["inspector2:ListCisScans"] and not done:
            done.append(True)
            aws.load_scenario(
                {"faults": [{"operation": "CreateTags", "error": "InternalError", "times": 50}]}
            )

    done: list[bool] = []
    clock.hooks.append(break_tagging)
    code = run(clients, clock, tmp_path, ami)
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert code == ExitCode.UNEXPECTED and written["exit_code"] == code, written["errors"]
    assert any("verdict tags could not be written" in w for w in written["warnings"])
    aws.load_scenario(None)
    tags = clients.ec2.describe_images(ImageIds=[ami])["Images"][0].get("Tags", [])
    assert {t["Key"]: t["Value"] for t in tags}.get("cis:verdict") != "PASS"


@pytest.mark.parametrize("error", ["ThrottlingException", "InternalServerException"])
def test_cleanup_failing_is_exit_1_and_reap_takes_the_rest(
    aws: LocalAws, clients: AwsClients, clock: Clock, tmp_path: Path, error: str
) -> None:
    ami = make_ami(clients)
    aws.load_scenario(_storm("DeleteCisScanConfiguration", error))
    code = run(clients, clock, tmp_path, ami)
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert code == ExitCode.UNEXPECTED and written["exit_code"] == code
    assert any("cleanup left arn:aws:inspector2:" in w for w in written["warnings"])
    aws.load_scenario(None)
    # The run is over (its heartbeat stops): the next reap takes what it left.
    later = shifted_now() + timedelta(hours=1)
    report = run_reap(clients, later, lambda _: None, stale_after=timedelta(minutes=10))
    assert report.configurations and not report.failures
