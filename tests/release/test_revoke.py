"""invoke revoke on the local AWS: tags on the AMI and its copies, rollback of every channel that
pointed at it (or removal), promote refusing it afterwards, idempotence."""

from __future__ import annotations

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.errors import ConfigError, GateBlocked
from pipeline.localaws import LocalAws
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.tags import REVOKED_REASON_TAG, REVOKED_TAG
from tests._dates import shifted_now
from tests.release.conftest import POLICY_DIR, REGIONS, pipeline_ami, release, verifier_ok
from tests.validate.conftest import ami_tags

PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"
TWO = ("us-east-1", "eu-west-1")


def _promote(clients: AwsClients, ami: str, **kw: object) -> None:
    run_promote(
        PromoteRequest(ami=ami, **kw),  # type: ignore[arg-type]
        release(),
        clients,
        shifted_now(),
        print,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),
        known_regions=REGIONS,
    )


def _revoke(clients: AwsClients, ami: str, lines: list[str], **kw: object) -> object:
    return run_revoke(
        RevokeRequest(ami=ami, reason="CVE-2026-0001 in containerd", **kw),  # type: ignore[arg-type]
        release(),
        clients,
        shifted_now(),
        lines.append,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),  # these images' records verify; tests/release/test_rollback_trust.py
    )


def test_revoke_rolls_every_region_back_and_promote_then_refuses(
    aws: LocalAws, clients: AwsClients
) -> None:
    good, bad = pipeline_ami(clients, "good"), pipeline_ami(clients, "bad")
    _promote(clients, good, regions=TWO)
    _promote(clients, bad, regions=TWO)
    eu = make_clients(region="eu-west-1")
    good_eu = eu.ssm.get_parameter_history(Name=PARAM)["Parameters"][0]["Value"]
    bad_eu = eu.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"]
    assert bad_eu != good_eu

    lines: list[str] = []
    done = _revoke(clients, bad, lines)
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == good
    assert eu.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == good_eu
    for rc, ami in ((clients, bad), (eu, bad_eu)):
        tags = ami_tags(rc, ami)
        assert tags[REVOKED_TAG] == "true"
        assert tags[REVOKED_REASON_TAG] == "CVE-2026-0001 in containerd"
    assert len(done.changes) == 2  # type: ignore[attr-defined]

    with pytest.raises(GateBlocked) as caught:
        _promote(clients, bad)
    assert any("revoked: CVE-2026-0001" in line for line in caught.value.lines())

    # Removing the tag does not un-revoke: the record in SSM still refuses it.
    clients.ec2.delete_tags(Resources=[bad], Tags=[{"Key": REVOKED_TAG}])
    with pytest.raises(GateBlocked, match="not promoted"):
        _promote(clients, bad)

    # Again: nothing to do, no parameter written.
    puts = aws.count("PutParameter")
    again: list[str] = []
    _revoke(clients, bad, again)
    assert aws.count("PutParameter") == puts
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == good


def test_revoking_the_only_image_deletes_the_channel(clients: AwsClients) -> None:
    only = pipeline_ami(clients, "only")
    _promote(clients, only)
    lines: list[str] = []
    _revoke(clients, only, lines)
    with pytest.raises(clients.ssm.exceptions.ParameterNotFound):
        clients.ssm.get_parameter(Name=PARAM)
    assert any("delete" in line and PARAM in line for line in lines), lines


def test_rollback_skips_revoked_earlier_images(clients: AwsClients) -> None:
    a, b, c = (pipeline_ami(clients, n) for n in ("img-a", "img-b", "img-c"))
    for ami in (a, b, c):
        _promote(clients, ami)
    _revoke(clients, b, [])  # not current: only marked
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == c
    _revoke(clients, c, [])
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == a


def test_dry_run_and_bad_input(aws: LocalAws, clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "dry")
    _promote(clients, ami)
    lines: list[str] = []
    _revoke(clients, ami, lines, dry_run=True)
    assert REVOKED_TAG not in ami_tags(clients, ami)
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == ami
    assert any("would" in line for line in lines), lines
    with pytest.raises(ConfigError, match="--reason"):
        run_revoke(RevokeRequest(ami=ami, reason=" "), release(), clients, shifted_now(), print)
    with pytest.raises(ConfigError, match="--channel"):
        _revoke(clients, ami, [], channel="nightly")


def test_a_copy_whose_revoked_tag_was_removed_is_not_rolled_back_to(clients: AwsClients) -> None:
    older, bad, newest = (pipeline_ami(clients, n) for n in ("older", "bad-2", "newest"))
    for ami in (older, bad, newest):
        _promote(clients, ami, regions=TWO)
    eu = make_clients(region="eu-west-1")
    bad_eu = ami_tags(clients, bad)["cis-release:copy:eu-west-1"]
    older_eu = ami_tags(clients, older)["cis-release:copy:eu-west-1"]
    _revoke(clients, bad, [])
    eu.ec2.delete_tags(Resources=[bad_eu], Tags=[{"Key": REVOKED_TAG}])
    _revoke(clients, newest, [])
    assert eu.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == older_eu


def test_retagging_a_published_image_cannot_dodge_the_rollback(clients: AwsClients) -> None:
    """Channels are found by their value, not by names derived from the image's tags."""
    good, bad = pipeline_ami(clients, "good-3"), pipeline_ami(clients, "bad-3")
    _promote(clients, good)
    _promote(clients, bad)
    clients.ec2.create_tags(
        Resources=[bad], Tags=[{"Key": "cis-ami:kubernetes-version", "Value": "1.29"}]
    )
    _revoke(clients, bad, [])
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == good


def test_channel_of_parses_only_the_naming_scheme() -> None:
    from pipeline.channels import channel_of

    assert channel_of("/eks-cis-ami", PARAM) == "stable"
    for other in (
        "/eks-cis-ami/revoked/ami-0123456789abcdef0",
        "/eks-cis-ami/al2023/x86_64/1.32/stable/other",
        "/eks-cis-ami/al2024/x86_64/1.32/stable/image-id",
        "/other/al2023/x86_64/1.32/stable/image-id",
        "/eks-cis-ami/al2023/x86_64/1.32/Stable/image-id",
    ):
        assert channel_of("/eks-cis-ami", other) is None, other
