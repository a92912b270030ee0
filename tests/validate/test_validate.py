"""``invoke validate`` against the local AWS over HTTP: outcomes, failure modes, cleanup, cost."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.aws import AwsClients
from pipeline.errors import ConfigError, ExitCode, ScanError
from pipeline.gate import Outcome
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests.test_policy import SEED_AL2
from tests.validate.conftest import (
    ami_tags,
    base_ami,
    make_ami,
    settings,
)

CIS_OPERATIONS = [
    "CreateCisScanConfiguration",
    "ListCisScanConfigurations",
    "DeleteCisScanConfiguration",
    "ListCisScans",
    "ListCisScanResultsAggregatedByTargetResource",
    "GetCisScanResultDetails",
    "GetCisScanReport",
]


def test_one_hardened_ami_passes_with_evidence_and_tags(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients, "al2023", "x86_64")
    lines: list[str] = []
    verdict = run_validate(settings(tmp_path, ami), clients, runtime(lines))
    assert verdict.verdict is Outcome.PASS, verdict.errors or verdict.failed_unexcepted[:3]
    assert verdict.failed_excepted and not verdict.failed_unexcepted
    out = tmp_path / "out"
    written = ["verdict.json", "junit.xml", "summary.md", "evidence/results.json"]
    written += ["evidence/scan.json", "evidence/targets.json", "evidence/cis-report.csv"]
    for name in written:
        assert (out / name).is_file(), name
    data = json.loads((out / "verdict.json").read_text())
    assert data["verdict"] == "PASS" and data["context"]["amis"][0]["ami"] == ami
    assert data["context"]["aws_calls_total"] == sum(data["context"]["aws_calls"].values())
    tags = ami_tags(clients, ami)
    assert tags["cis:verdict"] == "PASS"
    assert tags["cis:level"] == "LEVEL_2"
    assert tags["cis:scan-arn"] == data["context"]["scan_arn"]
    assert tags["cis:run-id"] == data["context"]["run_id"]
    assert len(tags["cis:policy-sha256"]) == 64 and tags["cis:validated-at"].endswith("Z")
    assert any("Online" in line for line in lines)


def _scan_calls(clients: AwsClients) -> int:
    """Calls other than the evidence store's (S3, KMS, and setup's IAM on the local AWS)."""
    evidence = ("s3:", "kms:", "iam:")
    return sum(n for op, n in clients.calls.counts.items() if not op.startswith(evidence))


def test_three_amis_share_one_scan_and_cost_less_than_three_runs(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    aws.load_scenario({"scan": {"duration_s": 300}})
    one = make_ami(clients, "al2023", "x86_64")
    single = run_validate(settings(tmp_path / "a", one), clients, runtime())
    calls_one = _scan_calls(clients)  # the evidence store's per-AMI calls are counted apart
    assert single.verdict is Outcome.PASS
    assert calls_one <= 60, clients.calls.as_dict()

    amis = [
        make_ami(clients, "al2023", "x86_64"),
        make_ami(clients, "al2023", "arm64"),
        make_ami(clients, "al2", "x86_64"),
    ]
    before = _scan_calls(clients)
    verdict = run_validate(settings(tmp_path / "b", *amis), clients, runtime())
    calls_three = _scan_calls(clients) - before
    assert verdict.verdict is Outcome.PASS, verdict.errors or verdict.failed_unexcepted[:3]
    assert len(verdict.targets) == 3
    assert clients.calls.counts["inspector2:CreateCisScanConfiguration"] == 2  # one per run
    assert calls_three < 2 * calls_one, (calls_one, calls_three)
    assert {ami_tags(clients, a)["cis:verdict"] for a in amis} == {"PASS"}
    assert any(amis[1] in w and "arm64" in w for w in verdict.warnings), verdict.warnings


def test_unexcepted_failure_blocks_tags_fail_and_keeps_evidence(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    stock = base_ami(clients, "al2023", "x86_64")
    verdict = run_validate(settings(tmp_path, stock), clients, runtime())
    assert verdict.verdict is Outcome.FAIL
    assert verdict.exit_code == ExitCode.GATE_BLOCKED
    assert ami_tags(clients, stock)["cis:verdict"] == "FAIL"
    pages = json.loads((tmp_path / "out/evidence/results.json").read_text())
    assert sum(len(p.get("scanResultDetails", [])) for p in pages) == verdict.total
    assert "Blocking failures" in (tmp_path / "out/summary.md").read_text()


def test_role_without_cis_policy_is_refused_before_launch(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    clients.iam.create_role(RoleName="ssm-only", AssumeRolePolicyDocument="{}")
    clients.iam.attach_role_policy(
        RoleName="ssm-only", PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    )
    clients.iam.create_instance_profile(InstanceProfileName="ssm-only")
    clients.iam.add_role_to_instance_profile(InstanceProfileName="ssm-only", RoleName="ssm-only")
    ami = make_ami(clients)
    launched = clients.calls.counts["ec2:RunInstances"]
    with pytest.raises(ConfigError, match="AmazonInspector2ManagedCisPolicy"):
        run_validate(settings(tmp_path, ami, instance_profile="ssm-only"), clients, runtime())
    assert clients.calls.counts["ec2:RunInstances"] == launched


@pytest.mark.parametrize(
    ("scenario", "needle"),
    [
        ({"scan": {"zero_checks": True}}, "zero checks"),
        ({"scan": {"final_status": "FAILED"}}, "ended FAILED"),
        ({"scan": {"final_status": "CANCELLED"}}, "ended CANCELLED"),
        ({"ssm": {"online_after_s": "never"}}, "not Online in SSM after 900s"),
        ({"scan": {"duration_s": 99999}}, "still IN_PROGRESS"),
    ],
    ids=["zero-checks", "scan-failed", "scan-cancelled", "ssm-never-online", "scan-timeout"],
)
def test_untrustworthy_scans_are_errors_with_reports(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    scenario: dict[str, object],
    needle: str,
) -> None:
    aws.load_scenario(scenario)
    ami = make_ami(clients)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())
    assert verdict.verdict is Outcome.ERROR
    assert verdict.exit_code == ExitCode.UNTRUSTED_SCAN
    assert any(needle in e for e in verdict.errors), verdict.errors
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["verdict"] == "ERROR" and written["errors"]
    assert ami_tags(clients, ami)["cis:verdict"] == "ERROR"


def test_throttling_on_every_cis_operation_is_retried(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    aws.load_scenario(
        {
            "faults": [
                {"operation": op, "error": "ThrottlingException", "times": 2}
                for op in CIS_OPERATIONS
            ]
        }
    )
    ami = make_ami(clients)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())
    assert verdict.verdict is Outcome.PASS, verdict.errors
    for op in CIS_OPERATIONS:
        assert aws.count(op) >= 3, op  # two throttled attempts, then the answer


def test_inspector_disabled_without_flag_names_the_command(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    with pytest.raises(ScanError, match="aws inspector2 enable --resource-types EC2"):
        run_validate(settings(tmp_path, ami, enable_inspector=False), clients, runtime())


def test_unknown_ami_is_invalid_input(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="--ami ami-0000000000000dead"):
        run_validate(settings(tmp_path, "ami-0000000000000dead"), clients, runtime())


def test_resume_reuses_instances_and_the_scan_configuration(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    first = run_validate(
        settings(tmp_path / "a", ami, run_id="cisv-resume-1", keep=True), clients, runtime()
    )
    assert first.verdict is Outcome.PASS
    created = clients.calls.counts["inspector2:CreateCisScanConfiguration"]
    launched = clients.calls.counts["ec2:RunInstances"]
    second = run_validate(settings(tmp_path / "b", ami, run_id="cisv-resume-1"), clients, runtime())
    assert second.verdict is Outcome.PASS
    assert clients.calls.counts["inspector2:CreateCisScanConfiguration"] == created
    assert clients.calls.counts["ec2:RunInstances"] == launched


def test_target_ssm_unmanaged_at_scan_time_is_an_error(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The agent registered, then dropped before Inspector reached it: skip our SSM wait (the
    # seam) so the scan itself meets an unmanaged instance, as the service would.
    monkeypatch.setattr("pipeline.validate.run.wait_ssm", lambda *args: [])
    aws.load_scenario({"ssm": {"online_after_s": "never"}})
    ami = make_ami(clients)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())
    assert verdict.verdict is Outcome.ERROR
    assert any("SSM_UNMANAGED" in e for e in verdict.errors), verdict.errors


def test_every_aws_call_of_a_run_is_declared_in_the_iam_policy(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    from pipeline.aws.iam_policy import declared_actions

    before = dict(clients.calls.counts)
    run_validate(settings(tmp_path, base_ami(clients)), clients, runtime())
    from pipeline.aws.s3 import OPERATION_ACTIONS  # S3 operations named differently in IAM

    made = {
        OPERATION_ACTIONS.get(op, op)
        for op, n in clients.calls.counts.items()
        if n > before.get(op, 0)
    }
    assert "inspector2:CreateCisScanConfiguration" in made
    undeclared = made - set(declared_actions(include_packer=False))
    assert not undeclared, f"add these to IAM_ACTIONS of their pipeline/aws module: {undeclared}"


def test_hardened_al2_reproduces_the_workshop_scan(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """The seed: a hardened EKS AL2 node, LEVEL_2: 13 failed (all excepted), 20 skipped, 207,
    plus 4.1.2.3 (auditd does not halt the node: audit_full_action) and 1.6.1.5 (SELinux stays
    permissive: selinux_mode), also excepted."""
    ami = make_ami(clients, "al2", "x86_64", level=2)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())
    assert verdict.verdict is Outcome.PASS
    assert (len(verdict.failed_excepted), len(verdict.skipped), len(verdict.passed)) == (
        15,
        20,
        205,
    )
    assert {f.result.check_id for f in verdict.failed_excepted} == SEED_AL2 | {"4.1.2.3", "1.6.1.5"}
    assert verdict.unused_exceptions == ()


def test_a_run_against_the_local_aws_says_so(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())  # local not asked for
    assert verdict.context["local"] is True
    assert ami_tags(clients, ami)["cis:local"] == "true"
    assert "on the local AWS, not a real account" in (tmp_path / "out/summary.md").read_text()
