"""invoke promote on the local AWS: refusals, cross-region copies, sharing, idempotence, dry run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.channels import ReleaseSettings
from pipeline.errors import ConfigError, GateBlocked
from pipeline.evidence.trust import refusals
from pipeline.evidence.verify import Verification
from pipeline.localaws import LocalAws
from pipeline.release import promote
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.tags import CHANNEL_TAG_PREFIX, COPIED_FROM_TAG, COPY_TAG_PREFIX
from tests._dates import shifted_now
from tests.release.conftest import (
    ACCOUNT,
    POLICY_DIR,
    REGIONS,
    base_ami,
    current_policy_sha,
    image_keys,
    pipeline_ami,
    release,
    verified,
    verifier_ok,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"
SHA = "a" * 64


def _refusals(**changes: object) -> list[str]:
    real = bool(changes.pop("real", False))
    revoked = changes.pop("revoked", None)
    min_level = int(str(changes.pop("min_level", 2)))
    base = verified("ami-0123456789abcdef0", policy_sha256=(SHA,), time_verified=NOW)
    return refusals(
        replace(base, **changes),  # type: ignore[arg-type]
        ami="ami-0123456789abcdef0",
        region="us-east-1",
        now=NOW,
        max_age_days=30,
        policy_sha=SHA,
        min_level=min_level,
        real_endpoint=real,
        revoked=revoked if isinstance(revoked, str) else None,
    )


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        ({"ok": False, "reasons": ("signature invalid", "subject mismatch")},
         ["does not verify: signature invalid", "does not verify: subject mismatch"]),
        ({"policy_sha256": ("b" * 64,)}, ["validated under policy sha256 bbbbbbbbbbbb"]),
        ({"time_verified": NOW - timedelta(days=31)}, ["more than 30 days ago"]),
        ({"time_verified": None}, ["no verification time"]),
        ({"time_verified": NOW + timedelta(hours=1)}, ["in the future"]),
        ({"level": "LEVEL_1"}, ["the channel requires LEVEL_2"]),
        ({"level": None}, ["validated at no level"]),
        ({"real": True, "local": True}, ["validated on the local AWS"]),
        ({"revoked": "CVE-2026-1"}, ["revoked: CVE-2026-1"]),
        ({"ami_id": "ami-0fffffffffffffff0"}, ["record is for us-east-1/ami-0fffffffffffffff0"]),
        ({"region": "eu-west-1"}, ["record is for eu-west-1/"]),
    ],
    ids=[
        "not-ok", "other-policy", "stale", "no-time", "future", "low-level", "no-level",
        "local-on-real", "revoked", "other-ami", "other-region",
    ],
)  # fmt: skip
def test_each_refusal_is_reported(changes: dict[str, object], needles: list[str]) -> None:
    problems = _refusals(**changes)
    for needle in needles:
        assert any(needle in p for p in problems), (needle, problems)


def test_a_good_record_has_no_refusal_and_level_1_suffices_for_a_level_1_channel() -> None:
    assert _refusals() == []
    assert _refusals(level="LEVEL_1", min_level=1) == []
    assert _refusals(real=True, local=False) == []


def test_a_forged_pass_tag_on_a_stock_ami_is_refused(clients: AwsClients) -> None:
    """Tags are never a source of truth: a stock EKS AMI with every tag a pass would carry.

    Uses the real pipeline.evidence.verify (no record exists for a stock AMI, so it cannot
    verify); once evidence records are produced by `invoke validate` this stays the same test.
    """
    stock = base_ami(clients)
    forged = {
        "cis:verdict": "PASS",
        "cis:level": "LEVEL_2",
        "cis:policy-sha256": current_policy_sha(),
        "cis:validated-at": shifted_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cis-ami:platform": "AMAZON_LINUX_2023",
        "cis-ami:kubernetes-version": "1.32",
        "cis-ami:architecture": "x86_64",
    }
    clients.ec2.create_tags(
        Resources=[stock], Tags=[{"Key": k, "Value": v} for k, v in forged.items()]
    )
    with pytest.raises(GateBlocked) as caught:
        run_promote(
            PromoteRequest(ami=stock),
            release(),
            clients,
            shifted_now(),
            print,
            policy_dir=POLICY_DIR,
            known_regions=REGIONS,
        )
    assert caught.value.exit_code == 3
    assert any("does not verify" in line for line in caught.value.lines())
    assert all(line.startswith(f"--ami {stock}: ") for line in caught.value.lines())
    assert promote.aws.get_parameter(clients, PARAM) is None


def test_bad_input_is_exit_2_naming_the_flag(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "bad-input")
    cases = [
        (PromoteRequest(ami="ami-xyz"), "--ami"),
        (PromoteRequest(ami=ami, channel="Stable"), "--channel"),
        (PromoteRequest(ami=ami, channel="beta"), "--channel beta: not a configured channel"),
        (PromoteRequest(ami=ami, regions=("mars-north-1",)), "--regions mars-north-1"),
        (PromoteRequest(ami=ami, accounts=("12345",)), "--accounts 12345"),
    ]
    for request, needle in cases:
        with pytest.raises(ConfigError, match=needle):
            run_promote(
                request, release(), clients, NOW, print, policy_dir=POLICY_DIR,
                verify=verifier_ok(), known_regions=REGIONS,
            )  # fmt: skip


def _promote(
    clients: AwsClients,
    request: PromoteRequest,
    lines: list[str],
    settings: ReleaseSettings | None = None,
) -> promote.Promotion:
    """Promote as a user does after ``invoke setup --image-keys`` (``settings``: its keys)."""
    return run_promote(
        request,
        settings or release(),
        clients,
        shifted_now(),
        lines.append,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),
        known_regions=REGIONS,
    )


def test_promote_copies_shares_records_and_is_idempotent(
    aws: LocalAws, clients: AwsClients
) -> None:
    ami = pipeline_ami(clients, "promote-me")
    request = PromoteRequest(ami=ami, regions=("us-east-1", "eu-west-1"), accounts=(ACCOUNT,))
    keys = image_keys(clients, ("eu-west-1",), (ACCOUNT,))
    lines: list[str] = []
    done = _promote(clients, request, lines, keys)
    assert done.changed
    home, away = done.regions
    assert (home.image_id, home.copied) == (ami, False)
    assert away.copied and away.image_id and away.image_id != ami
    eu = make_clients(region="eu-west-1")
    copy = eu.ec2.describe_images(ImageIds=[away.image_id])["Images"][0]
    copy_tags = {t["Key"]: t["Value"] for t in copy.get("Tags", [])}
    assert copy["State"] == "available"
    assert copy_tags[COPIED_FROM_TAG] == f"us-east-1/{ami}"
    assert copy_tags["cis-ami:kubernetes-version"] == "1.32"  # the source's tags came along
    source = clients.ec2.describe_images(ImageIds=[ami])["Images"][0]
    source_tags = {t["Key"]: t["Value"] for t in source["Tags"]}
    assert source_tags[f"{COPY_TAG_PREFIX}eu-west-1"] == away.image_id
    # Every region: the channel parameter (aws:ec2:image), launch and snapshot permissions.
    for rc, image in ((clients, source), (eu, copy)):
        param = rc.ssm.get_parameter(Name=PARAM)["Parameter"]
        assert (param["Value"], param["DataType"]) == (image["ImageId"], "aws:ec2:image")
        history = rc.ssm.get_parameter_history(Name=PARAM)["Parameters"]
        assert "previous none" in history[-1]["Description"]
        assert "arn:aws:" in history[-1]["Description"]  # who
        perms = rc.ec2.describe_image_attribute(
            ImageId=image["ImageId"], Attribute="launchPermission"
        )["LaunchPermissions"]
        assert {"UserId": ACCOUNT} in perms
        for mapping in image["BlockDeviceMappings"]:
            snap = mapping["Ebs"]["SnapshotId"]
            vol = rc.ec2.describe_snapshot_attribute(
                SnapshotId=snap, Attribute="createVolumePermission"
            )["CreateVolumePermissions"]
            assert {"UserId": ACCOUNT} in vol
    after = {
        t["Key"]: t["Value"]
        for t in clients.ec2.describe_images(ImageIds=[ami])["Images"][0]["Tags"]
    }
    assert after[f"{CHANNEL_TAG_PREFIX}stable:previous"] == "none"
    assert after[f"{CHANNEL_TAG_PREFIX}stable:by"].startswith("arn:aws:")

    # Again: nothing copied, no new parameter version, said so.
    copies, puts = aws.count("CopyImage"), aws.count("PutParameter")
    again: list[str] = []
    second = _promote(clients, request, again, keys)
    assert not second.changed
    assert (aws.count("CopyImage"), aws.count("PutParameter")) == (copies, puts)
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Version"] == 1
    assert any("nothing to do" in line for line in again), again


def test_dry_run_prints_the_plan_and_changes_nothing(aws: LocalAws, clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "dry-run")
    keys = image_keys(clients, ("us-west-2",), (ACCOUNT,))
    lines: list[str] = []
    plan = _promote(
        clients,
        PromoteRequest(ami=ami, regions=("us-east-1", "us-west-2"), accounts=(ACCOUNT,),
                       dry_run=True),
        lines,
        keys,
    )  # fmt: skip
    assert plan.dry_run and plan.changed
    assert any("would copy" in line and "us-west-2" in line for line in lines), lines
    assert any("would set" in line for line in lines), lines
    assert aws.count("CopyImage") == aws.count("PutParameter") == 0
    assert aws.count("ModifyImageAttribute") == aws.count("ModifySnapshotAttribute") == 0
    assert promote.aws.get_parameter(clients, PARAM) is None
    perms = clients.ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")
    assert perms["LaunchPermissions"] == []


def test_a_new_image_replaces_the_channel_and_records_the_previous(clients: AwsClients) -> None:
    first = pipeline_ami(clients, "first")
    second = pipeline_ami(clients, "second")
    _promote(clients, PromoteRequest(ami=first), [])
    lines: list[str] = []
    done = _promote(clients, PromoteRequest(ami=second), lines)
    assert done.regions[0].previous == first
    param = clients.ssm.get_parameter(Name=PARAM)["Parameter"]
    assert (param["Value"], param["Version"]) == (second, 2)
    history = clients.ssm.get_parameter_history(Name=PARAM)["Parameters"]
    assert f"previous {first}" in history[-1]["Description"]


def test_min_level_per_channel(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "level-one")

    def level_1(c: AwsClients, a: str) -> Verification:
        return verified(a, region=c.region, level="LEVEL_1")

    common = {"policy_dir": POLICY_DIR, "verify": level_1, "known_regions": REGIONS}
    with pytest.raises(GateBlocked) as caught:
        run_promote(PromoteRequest(ami=ami), release(), clients, shifted_now(), print, **common)  # type: ignore[arg-type]
    assert any("requires LEVEL_2" in line for line in caught.value.lines())
    done = run_promote(
        PromoteRequest(ami=ami, channel="candidate"),
        release(),
        clients,
        shifted_now(),
        print,
        **common,  # type: ignore[arg-type]
    )
    assert done.regions[0].parameter.endswith("/candidate/image-id")


def test_every_call_of_promote_revoke_and_retention_is_declared(
    aws: LocalAws, clients: AwsClients
) -> None:
    """IAM_ACTIONS of pipeline/aws/release.py cover what these commands call, in every region."""
    from pipeline.aws import image_keys as aws_image_keys
    from pipeline.aws import release as aws_release
    from pipeline.reap import run_reap
    from pipeline.release.revoke import RevokeRequest, run_revoke

    first, second = pipeline_ami(clients, "iam-1"), pipeline_ami(clients, "iam-2")
    keys = image_keys(clients, ("eu-west-1",), (ACCOUNT,))
    before = len(aws.calls)
    for ami in (first, second):
        _promote(
            clients,
            PromoteRequest(ami=ami, regions=("us-east-1", "eu-west-1"), accounts=(ACCOUNT,)),
            [],
            keys,
        )
    run_revoke(RevokeRequest(ami=second, reason="iam test"), release(), clients, NOW, print)
    run_reap(
        clients, NOW + timedelta(days=90), print, dry_run=True,
        retention=release(retention={"keep": 0}),
    )  # fmt: skip
    made = aws.calls[before:]
    # The reaper's own listing is declared by its modules (pipeline/aws/ec2.py, inspector.py).
    mine = {
        f"{c.service}:{c.operation}"
        for c in made
        if c.service in {"ec2", "ssm", "sts", "kms"}
        and c.operation not in {"DescribeInstances", "DescribeSecurityGroups", "DescribeKeyPairs"}
    }
    assert {"ec2:CopyImage", "ssm:PutParameter", "ssm:GetParametersByPath"} <= mine
    assert {"kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"} <= mine  # the preflight
    declared = set(aws_release.IAM_ACTIONS) | set(aws_image_keys.IAM_ACTIONS)
    assert mine <= declared, mine - declared


def test_a_forged_copy_tag_in_another_region_is_not_published(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "genuine")
    eu = make_clients(region="eu-west-1")
    impostor = pipeline_ami(eu, "impostor", tags={COPIED_FROM_TAG: f"us-east-1/{ami}"})
    done = _promote(clients, PromoteRequest(ami=ami, regions=("eu-west-1",)), [])
    (region,) = done.regions
    assert region.copied and region.image_id not in (None, impostor)
    assert eu.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == region.image_id
