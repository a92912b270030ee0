"""The AWS calls of one ``invoke validate``, counted on the local AWS's manual clock, where the
count is deterministic: exactly what the code makes, by operation, for 1 and 4 AMIs, and issue
18's goals (at most one call per 5 s of the run on average; never two calls in one 5 s window
of a polling phase). Since issue 17's node and CVE stages (the probe over SSM Run Command,
Inspector's package scan looked at in the scan's loop, their evidence) and issue 21's network
preflight a 1-AMI run makes 85 calls: the loop still makes one call at a time, never two within
5 s (but once, when the package scan is still pending as the scan ends), and the average goal
of issue 18 is missed (the test that holds it is a strict xfail until validate meets it again).

The run is the benchmark's fixed point (``pipeline.orchestration.bench``): boot + SSM
registration 90 s, a 300 s scan, the package scan 180 s after registration, the probe 13.5 s,
real AWS's polling schedules. No wall time is measured here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import heartbeat
from pipeline.aws import make_clients
from pipeline.catalog import Platform
from pipeline.localaws import LocalAws
from pipeline.orchestration import bench
from pipeline.packer import Arch
from pipeline.polling import SCAN_WAIT, SSM_WAIT
from tests._dates import shifted_now

# One call per 5 s of what the run waits (the schedules say exactly: 393.4 s for 390 s of AWS
# time; its wall time is longer), less the heartbeats a real clock adds over that time (one
# ec2:CreateTags every 2 minutes, which the manual clock never lets tick).
WAITED_S = bench.predict(bench.BOOT_AND_SSM_S, bench.SCAN_S).waited_s
BEATS = int(WAITED_S // heartbeat.INTERVAL.total_seconds())
BUDGET = int(WAITED_S // bench.WINDOW_S) - BEATS

# The steady-state 1-AMI run, call by call: what each operation costs, and why.
CALLS: dict[str, tuple[int, str]] = {
    "sts:GetCallerIdentity": (1, "the account, once (setup is told it)"),
    "ec2:DescribeImages": (1, "preflight; launch reuses its root device"),
    "s3:HeadBucket": (1, "the evidence bucket exists and is the account's (ExpectedBucketOwner)"),
    "s3:GetBucketVersioning": (1, "the evidence bucket keeps every version"),
    "kms:DescribeKey": (1, "the signing key exists and can sign"),
    "iam:GetInstanceProfile": (1, "the test-instance profile and its role, read once"),
    "iam:ListAttachedRolePolicies": (1, "the role's managed policies"),
    "iam:GetPolicy": (2, "each managed policy's default version"),
    "iam:GetPolicyVersion": (2, "each managed policy's document (judged by actions)"),
    "iam:ListRolePolicies": (1, "the role's inline policies"),
    "inspector2:BatchGetAccountStatus": (1, "Inspector EC2 scanning is enabled"),
    "ec2:CreateTags": (2, "PENDING before the scan, the verdict after"),
    "ec2:DescribeSubnets": (1, "the default subnet (default-for-az)"),
    "ec2:DescribeInstanceTypeOfferings": (1, "a subnet in a zone offering the instance type"),
    "ec2:DescribeRouteTables": (1, "the subnet reaches SSM: the VPC's route tables"),
    "ec2:CreateSecurityGroup": (1, "the run's own group, no ingress"),
    "ec2:RunInstances": (1, "the test instance"),
    "ec2:DescribeInstances": (
        4,
        "running waiter, interference (and launch times, for the CVE gate), terminated waiter, "
        "leftovers",
    ),
    "ssm:DescribeInstanceInformation": (8, "SSM_WAIT polls until 90 s"),
    "ssm:SendCommand": (1, "the node probe, to every instance at once"),
    "inspector2:CreateCisScanConfiguration": (1, "the one-time scan"),
    "inspector2:ListCisScans": (16, "the scan loop (SCAN_WAIT) until the scan ends at 300 s"),
    "inspector2:ListCoverage": (
        2,
        "halfway through the loop's waits until the package scan is ACTIVE (178.5 s in)",
    ),
    "inspector2:ListCisScanConfigurations": (2, "deleted from outside? left behind?"),
    "inspector2:ListCisScanResultsAggregatedByTargetResource": (1, "Inspector's own counts"),
    "inspector2:GetCisScanResultDetails": (1, "the per-check rows, one page"),
    "inspector2:ListCisScanResultsAggregatedByChecks": (
        3,
        "the per-check view each row is cross-checked with: 243 checks, 100 a page",
    ),
    "inspector2:GetCisScanReport": (1, "the CSV report (evidence; each row cross-checked)"),
    "ssm:GetCommandInvocation": (1, "the probe's output, per instance (done long before)"),
    "inspector2:ListFindings": (1, "the package findings, per instance (one page)"),
    "inspector2:ListFindingAggregations": (1, "Inspector's counts, per instance"),
    "inspector2:DeleteCisScanConfiguration": (1, "cleanup"),
    "ec2:TerminateInstances": (1, "cleanup"),
    "ec2:DeleteSecurityGroup": (1, "cleanup"),
    "ec2:DescribeSecurityGroups": (1, "leftovers"),
    "s3:PutObject": (
        17,
        "9 reports, the policy, the catalogue identity, the signed envelope; the probe's "
        "output, coverage, findings, counts, launch times",
    ),
    "kms:Sign": (1, "the record"),
}
# The node and CVE stages' share of it, and of a 4-AMI run (per instance: the probe's output,
# findings, counts and 5 evidence files; per run: the probe sent once, one ListCoverage per
# look whatever the instance count).
NODE_AND_CVE_1_AMI = {
    "inspector2:ListCoverage": 2,
    "inspector2:ListFindingAggregations": 1,
    "inspector2:ListFindings": 1,
    "s3:PutObject": 5,
    "ssm:GetCommandInvocation": 1,
    "ssm:SendCommand": 1,
}
NODE_AND_CVE_4_AMIS = {
    **NODE_AND_CVE_1_AMI,
    "inspector2:ListFindingAggregations": 4,
    "inspector2:ListFindings": 4,
    "s3:PutObject": 20,
    "ssm:GetCommandInvocation": 4,
}
CALLS_4_AMIS = 169  # 132 before the node and CVE stages (+ 35) and the network preflight (+ 2)
# What makes a PASS mean something: a change that saves calls by dropping these must fail here.
SAFETY_CHECKS = (
    "s3:HeadBucket",
    "kms:DescribeKey",
    "iam:GetPolicyVersion",
    "inspector2:BatchGetAccountStatus",
    "ec2:CreateTags",
    "ssm:DescribeInstanceInformation",
    "ssm:GetCommandInvocation",
    "inspector2:ListCoverage",
    "inspector2:ListFindings",
    "inspector2:ListFindingAggregations",
    "inspector2:ListCisScanResultsAggregatedByTargetResource",
    "inspector2:ListCisScanResultsAggregatedByChecks",
    "inspector2:GetCisScanReport",
    "ec2:DescribeSecurityGroups",
    "kms:Sign",
)


def _run(aws: LocalAws, tmp: Path, n: int, amis: int = 1) -> dict[str, Any]:
    clients = make_clients()
    images = [
        bench.hardened_ami(clients, platform, arch, n * 10 + i)
        for i, (platform, arch) in enumerate(bench.FOUR_AMIS[:amis])
    ]
    return bench.measure_validate(aws, images, tmp / f"run{n}")


@pytest.fixture(scope="module")
def runs(
    local_aws_server: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """A first run in a fresh account (setup creates the store and role), then a steady one,
    then a steady one of 4 AMIs."""
    aws = local_aws_server
    aws.reset()
    aws.load_scenario(bench.SCENARIO)
    tmp = tmp_path_factory.mktemp("budget")
    with pytest.MonkeyPatch.context() as env:
        for key, value in aws.env().items():
            env.setenv(key, value)
        first = _run(aws, tmp, 0)
        steady = _run(aws, tmp, 1)
        four = _run(aws, tmp, 2, amis=4)
    aws.load_scenario({})
    return {"first": first, "steady": steady, "four": four}


def test_the_budget_leaves_room_for_the_heartbeats_of_a_real_clock() -> None:
    assert (round(WAITED_S, 1), BEATS, BUDGET) == (393.4, 3, 75)
    assert sum(n for n, _ in CALLS.values()) == 85


def test_a_steady_run_passes_with_exactly_the_calls_it_needs(
    runs: dict[str, dict[str, Any]],
) -> None:
    steady = runs["steady"]
    assert steady["verdict"] == "PASS"
    calls = steady["aws_calls_by_operation"]
    assert calls == {op: n for op, (n, _) in CALLS.items()}
    assert steady["aws_calls"] == 85 and steady["aws_calls_on_a_real_clock"] == 88


def test_what_the_node_and_cve_stages_call_per_ami(runs: dict[str, dict[str, Any]]) -> None:
    one, four = runs["steady"]["node_and_cve"], runs["four"]["node_and_cve"]
    assert one["aws_calls_by_operation"] == NODE_AND_CVE_1_AMI
    assert (one["aws_calls"], one["aws_calls_per_ami"]) == (11, 11.0)
    assert four["aws_calls_by_operation"] == NODE_AND_CVE_4_AMIS
    assert (four["aws_calls"], four["aws_calls_per_ami"]) == (35, 8.75)
    assert runs["four"]["verdict"] == "PASS" and runs["four"]["aws_calls"] == CALLS_4_AMIS
    assert set(bench.NODE_AND_CVE_OPERATIONS) <= set(NODE_AND_CVE_1_AMI)
    # They overlap the scan: the loop ends when the scan does, nothing is waited for them.
    for run in (one, four):
        assert run["waited_s"] == 0.0
        assert run["added_wall_ratio"] <= bench.GOALS["node_and_cve_added_wall_ratio"]


@pytest.mark.xfail(
    strict=True,
    reason="issue 17's node and CVE stages add 11 calls to the 1-AMI run (85 + 3 heartbeats in "
    "393.4 s: 1.12 per 5 s); issue 18's goal is at most 1",
)
def test_a_steady_run_makes_at_most_one_call_per_5s(runs: dict[str, dict[str, Any]]) -> None:
    steady = runs["steady"]
    assert steady["aws_calls"] <= BUDGET
    assert steady["aws_calls_on_a_real_clock"] * bench.WINDOW_S <= WAITED_S
    assert steady["aws_calls_per_5s_on_a_real_clock"] <= 1


def test_polls_are_never_closer_than_5s(runs: dict[str, dict[str, Any]]) -> None:
    """The schedules: no two polls in any 5 s window [t, t + 5 s), on the run's clock; and no
    call other than a poll while the run polls."""
    for run in runs.values():
        assert run["polls_peak_per_5s"] == 1
        assert run["other_calls_while_polling"] == 0  # on a real clock: a heartbeat at most
    # Outside the polling phases the run works in bursts: set-up, launch, results, evidence.
    assert runs["steady"]["calls_peak_per_5s"] > 1


def test_a_polling_phase_never_makes_two_calls_in_5s(runs: dict[str, dict[str, Any]]) -> None:
    """Peak call rate: the most calls in any 5 s window [t, t + 5 s) between a wait's first and
    last poll (polls, and anything else made then), on the run's clock: the scan loop looks at
    the package scan between its polls, never beside one."""
    for run in runs.values():
        assert run["polling_calls_peak_per_5s"] == 1


@pytest.mark.parametrize("operation", SAFETY_CHECKS)
def test_no_safety_check_was_dropped_to_save_calls(
    runs: dict[str, dict[str, Any]], operation: str
) -> None:
    assert runs["steady"]["aws_calls_by_operation"].get(operation, 0) >= 1


def test_polls_are_what_the_schedules_predict(runs: dict[str, dict[str, Any]]) -> None:
    calls = runs["steady"]["aws_calls_by_operation"]
    assert calls["ssm:DescribeInstanceInformation"] == SSM_WAIT.seen_at(bench.BOOT_AND_SSM_S)[0]
    assert calls["inspector2:ListCisScans"] == SCAN_WAIT.seen_at(bench.SCAN_S)[0]
    expected = bench.predict(bench.BOOT_AND_SSM_S, bench.SCAN_S, bench.PACKAGE_SCAN_S)
    for run in (runs["steady"], runs["four"]):
        assert run["polls_by_operation"] == expected.polls_by_operation()
    # What the run waited (its sleeps, on the manual clock) stays within the overhead goal.
    assert runs["steady"]["waited_s"] <= 1.05 * bench.EMULATED_AWS_S


def test_a_first_run_still_judges_the_new_role_by_its_policy_documents(
    runs: dict[str, dict[str, Any]],
) -> None:
    """Setup just created the role; validate reads its documents anyway (not names)."""
    first = runs["first"]
    calls = first["aws_calls_by_operation"]
    assert first["verdict"] == "PASS"
    assert calls.get("iam:CreateRole") == 2  # the test instances' and Packer's
    assert calls.get("iam:GetPolicyVersion", 0) >= 2
    assert "iam:CreateInstanceProfile" in calls and "s3:CreateBucket" in calls


def test_the_steady_run_reuses_setup_s_read_of_the_profile(
    runs: dict[str, dict[str, Any]],
) -> None:
    steady = runs["steady"]["aws_calls_by_operation"]
    assert steady["iam:GetInstanceProfile"] == 1 and steady["sts:GetCallerIdentity"] == 1
    absent = ("s3:ListObjectsV2", "s3:GetBucketPolicy", "ec2:DescribeVpcs", "iam:CreateRole")
    assert [op for op in absent if op in steady] == []


# What a run checks of the evidence store before it scans, and what it leaves to `invoke setup`:
# (change made to the bucket after setup, planned by a run's check, planned by a full audit)
BUCKET_CHANGES = [
    pytest.param(
        lambda s3, b: s3.put_bucket_versioning(
            Bucket=b, VersioningConfiguration={"Status": "Suspended"}
        ),
        "versioning",
        "versioning",
        id="versioning-suspended",
    ),
    pytest.param(
        lambda s3, b: s3.delete_bucket_encryption(Bucket=b),
        None,
        "default encryption",
        id="encryption-removed",
    ),
    pytest.param(
        lambda s3, b: s3.delete_public_access_block(Bucket=b),
        None,
        "public access block",
        id="public-access-block-removed",
    ),
]


@pytest.mark.parametrize(("change", "by_a_run", "by_setup"), BUCKET_CHANGES)
def test_a_run_checks_what_it_relies_on_and_setup_audits_the_rest(
    aws: LocalAws, change: Any, by_a_run: str | None, by_setup: str
) -> None:
    from pipeline.setup import SetupSettings, run_setup

    clients = make_clients()
    done = run_setup(SetupSettings(), clients, lambda _: None)
    change(clients.s3, done.bucket)
    quick = run_setup(
        SetupSettings(dry_run=True, run_checks_only=True), clients, lambda _: None
    ).changes
    full = run_setup(SetupSettings(dry_run=True), clients, lambda _: None).changes
    assert quick == ((f"s3://{done.bucket}: {by_a_run}",) if by_a_run else ())
    assert any(by_setup in c for c in full), full


def test_a_run_refuses_a_missing_evidence_bucket_after_one_call(aws: LocalAws) -> None:
    from pipeline.setup import SetupSettings, run_setup

    clients = make_clients()
    planned = run_setup(
        SetupSettings(dry_run=True, run_checks_only=True, account="123456789012"),
        clients,
        lambda _: None,
    )
    assert any(c.startswith("create evidence bucket") for c in planned.changes)
    assert clients.calls.counts.get("s3:HeadBucket") == 1
    assert "s3:GetBucketVersioning" not in clients.calls.counts
    assert "sts:GetCallerIdentity" not in clients.calls.counts  # the account was given


@pytest.mark.parametrize(
    ("run_id", "resume", "new", "fresh"),
    [
        (None, False, False, True),  # made by this run
        ("20261127T120000Z-abcdef", False, True, True),  # made just now by the chain
        ("20261127T120000Z-abcdef", False, False, False),  # from outside: may exist
        ("20261127T120000Z-abcdef", True, True, False),  # --run-id: resume, look everything up
    ],
)
def test_which_runs_skip_the_lookups_before_creating(
    run_id: str | None, resume: bool, new: bool, fresh: bool
) -> None:
    from pipeline.validate.settings import ValidateSettings, fresh_run

    given = ValidateSettings(amis=("ami-1",), run_id=run_id, resume=resume, run_id_is_new=new)
    assert fresh_run(given) is fresh


def test_a_given_run_id_is_still_looked_up_before_anything_is_created(
    aws: LocalAws, tmp_path: Path
) -> None:
    """The lookups a fresh run skips are all made when the run ID came from outside."""
    from pipeline.validate import Runtime, ValidateSettings, run_validate

    aws.load_scenario(bench.SCENARIO)
    ami = bench.hardened_ami(make_clients(), Platform.AMAZON_LINUX_2023, Arch.X86_64, 9)
    clients, clock = make_clients(), bench.VirtualTime(aws.advance)
    verdict = run_validate(
        ValidateSettings(
            amis=(ami,),
            out_dir=tmp_path,
            policy_dir=bench.ROOT / "policies/exceptions",
            enable_inspector=True,
            instance_types={"x86_64": "t3.medium"},
            run_id="20261127T120000Z-abcdef",
            real_aws_polling=True,
        ),
        clients,
        Runtime(now=shifted_now, echo=lambda _: None, sleep=clock.sleep, clock=clock.clock),
    )
    calls = clients.calls.as_dict()
    assert verdict.verdict.value == "PASS"
    looked_up = {
        "ec2:DescribeSecurityGroups": 2,
        "ec2:DescribeInstances": 5,  # the steady run's 4, and the lookup
        "inspector2:ListCisScanConfigurations": 3,
        "s3:ListObjectsV2": 1,
    }
    assert {op: calls.get(op) for op in looked_up} == looked_up
    aws.load_scenario({})
