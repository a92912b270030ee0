"""Issue 19: images shared with other accounts need keys those accounts can use. On the local
AWS, which enforces what AWS does: the default key is refused before anything is copied or
shared (dry run too); after ``setup --image-keys`` promote to two regions and two accounts
works, each account sees the image and its snapshots, revoke takes the shares back, and a
second run of each has nothing to do."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from pipeline.aws import AwsClients, make_clients
from pipeline.aws.image_keys import read_key
from pipeline.channels import ReleaseSettings
from pipeline.errors import GateBlocked
from pipeline.key_setup import run_image_keys
from pipeline.kms_policy import IMAGE_KEY_ALIAS, admission, image_key_policy
from pipeline.localaws import LocalAws
from pipeline.release.promote import PromoteRequest, Promotion, run_promote
from pipeline.release.revoke import RevokeRequest, run_revoke
from tests.release.conftest import (
    ACCOUNT,
    POLICY_DIR,
    REGIONS,
    encrypted_ami,
    image_keys,
    promote,
    release,
    verifier_ok,
)

OTHER = "444455556666"
REGIONS2 = ("us-east-1", "eu-west-1")
WRITES = ("CopyImage", "ModifyImageAttribute", "ModifySnapshotAttribute", "PutParameter")


def _writes(aws: LocalAws) -> dict[str, int]:
    return {op: aws.count(op) for op in WRITES}


def _refused(
    clients: AwsClients, request: PromoteRequest, settings: ReleaseSettings | None = None
) -> list[str]:
    with pytest.raises(GateBlocked) as caught:
        promote(clients, request, settings)
    assert caught.value.exit_code == 3
    return list(caught.value.problems)


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_the_default_key_is_refused_before_any_copy_or_share(
    aws: LocalAws, clients: AwsClients, dry_run: bool
) -> None:
    ami = encrypted_ami(clients, "default-key")
    before = _writes(aws)
    request = PromoteRequest(ami=ami, regions=REGIONS2, accounts=(ACCOUNT, OTHER), dry_run=dry_run)
    problems = _refused(clients, request)
    assert _writes(aws) == before  # nothing copied, shared or published
    assert any("us-east-1: the source image" in p and "AWS-managed" in p for p in problems)
    assert any(
        "eu-west-1: the copy to make" in p and "invoke setup --image-keys" in p for p in problems
    ), problems
    assert all(len(p) <= 500 for p in problems)


def test_after_setup_two_regions_two_accounts_share_verify_revoke(
    aws: LocalAws, clients: AwsClients
) -> None:
    settings = image_keys(clients, REGIONS2, (ACCOUNT, OTHER))
    ami = encrypted_ami(clients, "own-key", key=settings.kms_keys["us-east-1"])
    lines: list[str] = []
    request = PromoteRequest(ami=ami, regions=REGIONS2)  # accounts: pipeline.release.accounts
    done = _promote(clients, request, settings, lines)
    assert [sorted(r.shared_with) for r in done.regions] == [sorted((ACCOUNT, OTHER))] * 2
    assert all(not r.unseen for r in done.regions)
    for region in REGIONS2:
        for account in (ACCOUNT, OTHER):
            assert any(line.startswith(f"{region}: {account} sees ami-") for line in lines), lines
    copy = done.regions[1].image_id
    assert copy is not None
    eu = make_clients(region="eu-west-1")
    snap = eu.ec2.describe_images(ImageIds=[copy])["Images"][0]["BlockDeviceMappings"][0]
    described = eu.ec2.describe_snapshots(SnapshotIds=[snap["Ebs"]["SnapshotId"]])["Snapshots"]
    assert described[0]["KmsKeyId"] == settings.kms_keys["eu-west-1"]  # the copy's own key

    # The receiving accounts can launch the copy (the local AWS checks the key policy).
    _launch_as(eu, ACCOUNT, copy)

    again = _promote(clients, request, settings, [])
    assert not again.changed

    revoked = run_revoke(
        RevokeRequest(ami, "CVE-2026-0019"), settings, clients, datetime.now(UTC), lambda _: None
    )
    assert len(revoked.unshared) == 2 * 2 * 2  # 2 regions x (image + snapshot) x 2 accounts
    with pytest.raises(ClientError, match=r"InvalidAMIID\.NotFound"):
        _launch_as(eu, OTHER, copy)
    second = run_revoke(
        RevokeRequest(ami, "CVE-2026-0019"), settings, clients, datetime.now(UTC), lambda _: None
    )
    assert second.unshared == () and second.newly_revoked == ()


def test_a_key_admitting_one_of_two_accounts_is_refused_naming_the_other(
    aws: LocalAws, clients: AwsClients
) -> None:
    settings = image_keys(clients, REGIONS2, (ACCOUNT,))
    ami = encrypted_ami(clients, "half", key=settings.kms_keys["us-east-1"])
    before = _writes(aws)
    request = PromoteRequest(ami=ami, regions=REGIONS2, accounts=(ACCOUNT, OTHER))
    problems = _refused(clients, request, settings)
    assert _writes(aws) == before
    assert problems and all(f"does not admit {OTHER}" in p for p in problems), problems
    assert not any(f"admit {ACCOUNT}" in p for p in problems)
    assert all('"kms:CallerAccount":"444455556666"' in p for p in problems)


def test_a_key_of_another_region_disabled_or_pending_deletion_is_refused(
    aws: LocalAws, clients: AwsClients
) -> None:
    settings = image_keys(clients, REGIONS2, (ACCOUNT,))
    ami = encrypted_ami(clients, "bad-keys", key=settings.kms_keys["us-east-1"])
    request = PromoteRequest(ami=ami, regions=("us-east-1", "eu-west-1", "us-west-2"))
    east = settings.kms_keys["us-east-1"]
    wrong = release(kms_keys={**settings.kms_keys, "us-west-2": east}, accounts=[ACCOUNT])
    problems = _refused(clients, request, wrong)
    assert any("us-west-2" in p and "is in us-east-1" in p for p in problems), problems

    eu = make_clients(region="eu-west-1")
    assert eu.kms is not None and clients.kms is not None
    # (moto finds a key to disable or delete by its ID only)
    eu.kms.disable_key(KeyId=settings.kms_keys["eu-west-1"].rsplit("/", 1)[1])
    clients.kms.schedule_key_deletion(KeyId=east.rsplit("/", 1)[1], PendingWindowInDays=7)
    before = _writes(aws)
    problems = _refused(clients, PromoteRequest(ami=ami, regions=REGIONS2), settings)
    assert any("is Disabled" in p for p in problems), problems
    assert any("pending deletion" in p for p in problems), problems
    assert _writes(aws) == before


def test_the_local_aws_refuses_what_aws_refuses(aws: LocalAws, clients: AwsClients) -> None:
    ami = encrypted_ami(clients, "enforced")
    image = clients.ec2.describe_images(ImageIds=[ami])["Images"][0]
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    with pytest.raises(ClientError, match="OperationNotPermitted") as caught:
        clients.ec2.modify_snapshot_attribute(
            SnapshotId=snapshot,
            Attribute="createVolumePermission",
            OperationType="add",
            UserIds=[ACCOUNT],
        )
    assert "EBS default key cannot be shared" in str(caught.value)
    with pytest.raises(ClientError, match="OperationNotPermitted"):
        clients.ec2.modify_image_attribute(
            ImageId=ami, LaunchPermission={"Add": [{"UserId": ACCOUNT}]}
        )
    assert clients.kms is not None
    east_key = clients.kms.create_key()["KeyMetadata"]["Arn"]
    eu = make_clients(region="eu-west-1")
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        eu.ec2.copy_image(
            SourceImageId=ami, SourceRegion="us-east-1", Name="wrong-key", Encrypted=True,
            KmsKeyId=east_key,
        )  # fmt: skip


def test_an_account_the_key_does_not_admit_cannot_launch(
    aws: LocalAws, clients: AwsClients
) -> None:
    assert clients.kms is not None
    owner_only = image_key_policy(aws.account_id, (), "us-east-1")
    key = clients.kms.create_key(Policy=json.dumps(owner_only))["KeyMetadata"]["Arn"]
    ami = encrypted_ami(clients, "owner-only", key=key)
    clients.ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": OTHER}]})
    with pytest.raises(ClientError, match=r"Client\.InternalError"):
        _launch_as(clients, OTHER, ami)
    # A grant instead of a key-policy statement admits the account.
    clients.kms.create_grant(
        KeyId=key,
        GranteePrincipal=f"arn:aws:iam::{OTHER}:root",
        Operations=["Decrypt", "DescribeKey", "CreateGrant", "ReEncryptFrom",
                    "GenerateDataKeyWithoutPlaintext"],
    )  # fmt: skip
    _launch_as(clients, OTHER, ami)


def test_setup_image_keys_is_idempotent_and_its_dry_run_creates_nothing(
    aws: LocalAws, clients: AwsClients
) -> None:
    plan = run_image_keys(clients, REGIONS2, (ACCOUNT,), {}, dry_run=True, echo=lambda _: None)
    assert plan.keys == {} and len(plan.changes) == 2
    assert aws.count("CreateKey") == 0
    made = run_image_keys(clients, REGIONS2, (ACCOUNT,), {}, echo=lambda _: None)
    assert set(made.keys) == set(REGIONS2) and len(made.changes) == 2
    lines: list[str] = []
    again = run_image_keys(clients, REGIONS2, (ACCOUNT,), made.keys, echo=lines.append)
    assert again.changes == () and again.keys == made.keys
    assert any("nothing to change" in line for line in lines)
    assert again.unrecorded(made.keys) == {}
    # A new release account: the pipeline's key policy is updated, not a second key made.
    wider = run_image_keys(clients, REGIONS2, (ACCOUNT, OTHER), made.keys, echo=lambda _: None)
    assert wider.keys == made.keys and len(wider.changes) == 2
    assert aws.count("CreateKey") == 2
    assert clients.kms is not None
    aliases = clients.kms.list_aliases()["Aliases"]
    assert [a["AliasName"] for a in aliases].count(IMAGE_KEY_ALIAS) == 1
    # An account that left pipeline.release.accounts is no longer admitted.
    narrower = run_image_keys(clients, REGIONS2, (OTHER,), made.keys, echo=lambda _: None)
    assert len(narrower.changes) == 2
    facts = read_key(clients, made.keys["us-east-1"])
    assert facts is not None
    assert admission(facts, OTHER, "us-east-1") is None
    assert admission(facts, ACCOUNT, "us-east-1") is not None


def test_a_brought_key_is_only_checked(aws: LocalAws, clients: AwsClients) -> None:
    assert clients.kms is not None
    key = clients.kms.create_key()["KeyMetadata"]["Arn"]  # KMS's default policy: owner only
    with pytest.raises(GateBlocked) as caught:
        run_image_keys(clients, ("us-east-1",), (ACCOUNT,), {"us-east-1": key}, echo=print)
    assert caught.value.exit_code == 3
    (line,) = caught.value.problems
    assert f"does not admit {ACCOUNT}" in line and '"Principal":{"AWS":"111122223333"}' in line
    assert aws.count("CreateKey") == 1 and aws.count("PutKeyPolicy") == 0


def _promote(
    clients: AwsClients, request: PromoteRequest, settings: ReleaseSettings, lines: list[str]
) -> Promotion:
    return run_promote(
        request,
        settings,
        clients,
        datetime.now(UTC),
        lines.append,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),
        known_regions=REGIONS,
    )


def _launch_as(clients: AwsClients, account: str, ami: str) -> None:
    """RunInstances of ``ami`` as ``account`` (the local AWS's x-moto-account-id)."""
    ec2 = make_clients(region=clients.region).ec2

    def as_account(request: object, **_: object) -> None:
        request.headers["x-moto-account-id"] = account  # type: ignore[attr-defined]

    ec2.meta.events.register("before-sign.ec2.RunInstances", as_account)
    ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)


def test_setup_image_keys_records_the_keys_in_the_project_invoke_yaml(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    from pipeline.cli.account import setup_image_keys
    from pipeline.cli.invocation import Invocation

    shipped = (Path(__file__).resolve().parents[2] / "invoke.yaml").read_text(encoding="utf-8")
    (tmp_path / "invoke.yaml").write_text(shipped, encoding="utf-8")
    config = yaml.safe_load(shipped)["pipeline"]
    config["release"].update(regions=list(REGIONS2), accounts=[ACCOUNT])
    inv = Invocation(config, tmp_path)
    lines: list[str] = []
    setup_image_keys(inv, clients, True, lines.append)  # dry run: nothing written
    assert (tmp_path / "invoke.yaml").read_text(encoding="utf-8") == shipped
    assert any("plan: record the keys in" in line for line in lines), lines
    made = setup_image_keys(inv, clients, False, lines.append)
    recorded = yaml.safe_load((tmp_path / "invoke.yaml").read_text(encoding="utf-8"))
    assert recorded["pipeline"]["release"]["kms_keys"] == dict(made.keys)
    assert set(made.keys) == set(REGIONS2)


def test_a_share_ec2_does_not_show_is_an_error(
    aws: LocalAws, clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.errors import AwsError
    from pipeline.release import keys

    settings = image_keys(clients, ("us-east-1",), (ACCOUNT,))
    ami = encrypted_ami(clients, "unseen", key=settings.kms_keys["us-east-1"])
    monkeypatch.setattr(keys.image_keys, "executable_by", lambda *_: False)
    lines: list[str] = []
    with pytest.raises(AwsError, match=f"EC2 does not show it to us-east-1: {ACCOUNT}"):
        _promote(clients, PromoteRequest(ami=ami), settings, lines)
    assert any(f"{ACCOUNT} does NOT see {ami}: no launch permission" in line for line in lines)
