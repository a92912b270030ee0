"""``invoke setup`` on the local AWS: a dry run changes nothing, the first run creates the bucket
(protected), the signing key and the role, a second run changes nothing and says so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.aws import AwsClients, iam, kms, s3
from pipeline.errors import ConfigError
from pipeline.evidence import store
from pipeline.localaws import LocalAws
from pipeline.setup import MANAGED_PROFILE, SetupSettings, run_setup, setup_settings
from pipeline.tags import MANAGED_TAG
from pipeline.validate import Runtime, run_validate
from tests.validate.conftest import ami_tags, make_ami, settings

ACCOUNT = "123456789012"
BUCKET = store.default_bucket(ACCOUNT, "us-east-1")
MUTATIONS = ("CreateBucket", "PutBucketVersioning", "CreateKey", "CreateAlias", "CreateRole")


def _mutations(server: LocalAws) -> int:
    return sum(server.count(op) for op in MUTATIONS)


def test_dry_run_plans_and_changes_nothing(aws: LocalAws, clients: AwsClients) -> None:
    lines: list[str] = []
    result = run_setup(
        SetupSettings(dry_run=True, manage_instance_profile=True), clients, lines.append
    )
    assert _mutations(aws) == 0
    assert result.key_arn is None and len(result.changes) == 5
    assert lines.pop(0).startswith("setup: plain-HTTP endpoint: ")  # the local AWS: no TLS
    assert lines[0] == f"setup: plan: create evidence bucket s3://{BUCKET}"
    assert lines[1] == (
        f"setup: plan: s3://{BUCKET}: versioning, public access block, default encryption"
    )
    assert lines[2].startswith("setup: plan: create KMS signing key alias/eks-cis-ami-pipeline")
    assert lines[-1] == (
        "setup: plan: Packer build role/profile eks-cis-ami-pipeline-packer: "
        "AmazonSSMManagedInstanceCore"
    )
    assert s3.bucket_state(clients, BUCKET, ACCOUNT) is None


def test_setup_creates_once_then_changes_nothing(
    aws: LocalAws,
    clients: AwsClients,
    tmp_path: Path,
) -> None:
    pem = tmp_path / "signing.pem"
    first = run_setup(
        SetupSettings(manage_instance_profile=True, public_key_out=pem), clients, lambda _: None
    )
    state = s3.bucket_state(clients, BUCKET, ACCOUNT)
    assert state is not None and state.versioning and state.public_access_blocked
    assert state.encrypted
    key = kms.describe_key(clients, store.DEFAULT_KEY_ALIAS)
    assert key is not None and key.arn == first.key_arn and not key.problems()
    assert key.key_spec == "ECC_NIST_P256" and key.key_usage == "SIGN_VERIFY"
    assert iam.profile_exists(clients, "eks-cis-ami-pipeline-packer")  # Packer's, SSM core only
    packer_role = clients.iam.list_attached_role_policies(RoleName="eks-cis-ami-pipeline-packer")
    assert [p["PolicyName"] for p in packer_role["AttachedPolicies"]] == [
        "AmazonSSMManagedInstanceCore"
    ]
    tags = clients.kms.list_resource_tags(KeyId=key.arn)["Tags"]  # type: ignore[union-attr]
    assert {"TagKey": MANAGED_TAG, "TagValue": "true"} in tags
    profile = iam.describe_profile(clients, MANAGED_PROFILE)
    assert not profile.missing and profile.policies == frozenset(iam.REQUIRED_POLICIES)
    assert pem.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")

    before = _mutations(aws)
    lines: list[str] = []
    second = run_setup(SetupSettings(manage_instance_profile=True), clients, lines.append)
    assert _mutations(aws) == before and second.changes == ()
    assert second.key_arn == first.key_arn
    assert lines == [
        f"setup: nothing to change: s3://{BUCKET}, alias/eks-cis-ami-pipeline-signing, "
        f"{MANAGED_PROFILE}"
    ]


def test_a_failing_revalidation_is_signed_failed_and_the_older_pass_cannot_be_replayed(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
) -> None:
    from pipeline.evidence.verify import verify_ami

    ami = make_ami(clients)
    assert run_validate(settings(tmp_path / "a", ami), clients, runtime()).verdict.value == "PASS"
    passed = ami_tags(clients, ami)
    assert verify_ami(clients, ami).ok

    root = Path(__file__).resolve().parents[2]
    aws.load_scenario(root / "examples/scenarios/unexcepted-failure.yaml")
    verdict = run_validate(settings(tmp_path / "b", ami), clients, runtime())
    assert verdict.verdict.value == "FAIL"
    result = verify_ami(clients, ami)
    assert not result.ok
    assert result.statement is not None
    assert result.statement["predicate"]["verificationResult"] == "FAILED"
    assert result.statement["predicate"]["verifiedLevels"] == []
    assert result.reasons == ("the record's result is FAILED (gate verdict FAIL), not PASSED",)

    # someone who may tag puts back every tag of the earlier, genuine PASS
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in passed.items()]
    )
    replayed = verify_ami(clients, ami)
    assert not replayed.ok
    assert any(
        r.startswith(f"tag cis:attestation points to {passed['cis:attestation']}, but the newest")
        for r in replayed.reasons
    ), replayed.reasons


def test_against_a_real_endpoint_validate_needs_setup_first_and_creates_no_role(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    import pytest

    from pipeline.errors import ConfigError

    ami = make_ami(clients)
    # Only the recorded endpoint changes (validate then acts as against AWS); calls stay local.
    real = replace(clients, endpoint_url="https://ec2.us-east-1.amazonaws.com")
    with pytest.raises(ConfigError, match=r"evidence store not ready .*run `invoke setup`"):
        run_validate(settings(tmp_path, ami), real, runtime())
    run_setup(SetupSettings(), clients, lambda _: None)  # bucket and key, no role
    with pytest.raises(ConfigError, match="invoke setup --manage-instance-profile"):
        run_validate(settings(tmp_path, ami), real, runtime())
    assert aws.count("CreateRole") == 0 and aws.count("RunInstances") == 1  # make_ami's only


def test_each_ami_of_one_scan_gets_its_own_prefix_and_record(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
) -> None:
    from pipeline.evidence.verify import verify_ami

    amis = [make_ami(clients, "al2023", "x86_64"), make_ami(clients, "al2023", "arm64")]
    assert run_validate(settings(tmp_path, *amis), clients, runtime()).verdict.value == "PASS"
    results = [verify_ami(clients, ami) for ami in amis]
    assert [r.reasons for r in results] == [(), ()]
    uris = [r.record_uri or "" for r in results]
    for ami, uri, result in zip(amis, uris, results, strict=True):
        assert f"/123456789012/us-east-1/{ami}/" in uri
        assert result.statement is not None
        assert result.statement["subject"][0]["name"].endswith(f"image/{ami}")
    assert uris[0].rsplit("/", 2)[1] == uris[1].rsplit("/", 2)[1]  # the same run ID


def test_object_lock_comes_with_a_default_retention_that_protects_every_object(
    aws: LocalAws, clients: AwsClients
) -> None:
    """Object Lock without a default retention protects nothing: setup sets one (mode and days
    configurable), a second run changes nothing, and a locked bucket without one gets it."""
    locked = "eks-cis-locked-evidence"
    lines: list[str] = []
    wanted = SetupSettings(
        evidence_bucket=locked, object_lock=True, object_lock_mode="COMPLIANCE", object_lock_days=30
    )
    run_setup(wanted, clients, lines.append)
    state = s3.bucket_state(clients, locked, ACCOUNT)
    assert state is not None and state.object_lock
    assert state.retention == ("COMPLIANCE", 30)
    assert any("object lock default retention" in line for line in lines), lines
    lines.clear()
    run_setup(wanted, clients, lines.append)
    assert any(line.startswith("setup: nothing to change") for line in lines), lines
    # a bucket created with Object Lock by hand, without a default retention, is completed
    bare = "eks-cis-locked-bare"
    clients.s3.create_bucket(Bucket=bare, ObjectLockEnabledForBucket=True)
    plan = run_setup(replace(wanted, evidence_bucket=bare, dry_run=True), clients, lambda _: None)
    assert any("object lock default retention" in c for c in plan.changes), plan.changes
    run_setup(replace(wanted, evidence_bucket=bare), clients, lambda _: None)
    fixed = s3.bucket_state(clients, bare, ACCOUNT)
    assert fixed is not None and fixed.retention == ("COMPLIANCE", 30)


def test_object_lock_settings_are_checked() -> None:
    made = setup_settings({"object_lock_mode": "compliance", "object_lock_days": 7}, {}, local=True)
    assert (made.object_lock_mode, made.object_lock_days) == ("COMPLIANCE", 7)
    for bad in (
        {"object_lock_mode": "FOREVER"},
        {"object_lock_days": 0},
        {"object_lock_days": 1e9},
    ):
        with pytest.raises(ConfigError, match="object_lock"):
            setup_settings(bad, {}, local=True)
