"""The fault matrix, in process: ``run_validate`` on the local AWS under each injected failure.

For every case: the verdict is never PASS, the exit code is the documented one, verdict.json
records what was observed (errors) and the code, and the ``aws`` fixture checks afterwards
that no test instance, scan configuration or per-run security group is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import AwsClients
from pipeline.errors import ExitCode, PipelineError
from pipeline.localaws import LocalAws
from pipeline.validate import run_validate
from tests.faults.conftest import Clock
from tests.validate.conftest import make_ami, settings

CIS_OPERATIONS = (
    "CreateCisScanConfiguration",
    "ListCisScans",
    "ListCisScanResultsAggregatedByTargetResource",
    "GetCisScanResultDetails",
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


def check_outcome(
    out: Path, got: int, want: ExitCode, observed: str, verdict_value: str | None
) -> dict[str, Any]:
    """The documented code, never PASS, and verdict.json says what happened with that code."""
    written = json.loads((out / "verdict.json").read_text())
    assert got == want, (got, want, written["errors"])
    assert written["verdict"] != "PASS" and verdict_value != "PASS"
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
def test_fault(
    name: str, aws: LocalAws, clients: AwsClients, clock: Clock, tmp_path: Path
) -> None:
    case = CASES[name]
    ami = make_ami(clients)
    aws.load_scenario(case.scenario)
    code = run(clients, clock, tmp_path, ami, **case.overrides)
    check_outcome(tmp_path / "out", code, case.code, case.observed, None)
