"""Issue 20 #4: a fake regional copy. An attacker with ec2:RegisterImage and ec2:CreateTags
makes, in another region, an image with the source's name, the ``Copy of <region>/<ami>:``
description CopyImage gives, the ``cis-release:copied-from`` tag, and tags the source's
``cis-release:copy:<region>`` to point at it. Only EC2's ``SourceImageId`` and
``SourceImageRegion`` (absent for CreateImage/RegisterImage images) make an image a copy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.aws.images import describe_image
from pipeline.channels import DEFAULT_PREFIX
from pipeline.evidence.revocation import copy_description, is_copy_of, revocation
from pipeline.release.promote import PromoteRequest
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.tags import COPIED_FROM_TAG, COPY_TAG_PREFIX, REVOKED_TAG
from tests.release.conftest import pipeline_ami, promote, release
from tests.validate.conftest import ami_tags

PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _promote(clients: AwsClients, ami: str) -> str | None:
    done = promote(clients, PromoteRequest(ami=ami, regions=("eu-west-1",)))
    return done.regions[0].image_id


def _lookalike(clients: AwsClients, ami: str, how: str) -> str:
    """In eu-west-1: the source's name, CopyImage's description, the copy tags, both ways."""
    eu = make_clients(region="eu-west-1")
    source = describe_image(clients, ami)
    origin = f"us-east-1/{ami}"
    name = source.name or ami
    if how == "register-image":
        fake = eu.ec2.register_image(
            Name=name,
            Description=copy_description(origin, source.description),
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
        )["ImageId"]
    else:  # create-image: from an instance of the attacker's, then the description is moot
        fake = pipeline_ami(eu, name)
    tags = {k: v for k, v in ami_tags(clients, ami).items() if not k.startswith("aws:")}
    tags[COPIED_FROM_TAG] = origin
    eu.ec2.create_tags(Resources=[fake], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": f"{COPY_TAG_PREFIX}eu-west-1", "Value": fake}]
    )
    return fake


def test_the_local_aws_says_what_a_copy_was_copied_from(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "source-of-a-copy")
    eu = make_clients(region="eu-west-1")
    copy = eu.ec2.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="copy-of-it")
    image = describe_image(eu, copy["ImageId"])
    assert image.source == ("us-east-1", ami)
    assert is_copy_of(image, f"us-east-1/{ami}")
    assert not is_copy_of(image, f"us-west-2/{ami}")
    made = describe_image(eu, _lookalike(clients, ami, "register-image"))
    assert made.source is None and not is_copy_of(made, f"us-east-1/{ami}")
    assert describe_image(clients, ami).source is None  # CreateImage


@pytest.mark.parametrize("how", ["register-image", "create-image"])
def test_promote_never_publishes_a_lookalike_as_the_copy(clients: AwsClients, how: str) -> None:
    ami = pipeline_ami(clients, "promoted-source")
    fake = _lookalike(clients, ami, how)
    published = _promote(clients, ami)
    assert published is not None and published != fake
    eu = make_clients(region="eu-west-1")
    assert describe_image(eu, published).source == ("us-east-1", ami)
    assert eu.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == published


@pytest.mark.parametrize("configured", [False, True], ids=["tags-only", "regions-searched"])
def test_revoke_marks_the_genuine_copy_and_never_the_lookalike(
    clients: AwsClients, configured: bool
) -> None:
    ami = pipeline_ami(clients, "revoked-source")
    genuine = _promote(clients, ami)
    assert genuine is not None
    fake = _lookalike(clients, ami, "register-image")  # the source's copy tag now names it
    eu = make_clients(region="eu-west-1")
    done = run_revoke(
        RevokeRequest(ami, "CVE-2026-0020"),
        release(regions=["eu-west-1"] if configured else []),
        clients,
        datetime.now(UTC),
        lambda _: None,
    )
    assert REVOKED_TAG not in ami_tags(eu, fake)
    assert f"eu-west-1/{fake}" not in done.newly_revoked
    if configured:  # found by EC2's record although the source's tag was re-pointed
        assert ami_tags(eu, genuine)[REVOKED_TAG] == "true"


def test_a_copy_revoke_cannot_find_is_revoked_with_its_source(clients: AwsClients) -> None:
    """A copy made outside promote (no tags, no release history, its region not configured):
    revoke does not find it, yet verify and promote see it revoked, since EC2 names its source."""
    ami = pipeline_ami(clients, "revoked-source-2")
    eu = make_clients(region="eu-west-1")
    copy = eu.ec2.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="manual-copy")
    done = run_revoke(
        RevokeRequest(ami, "CVE-2026-0021"), release(), clients, datetime.now(UTC), lambda _: None
    )
    assert done.newly_revoked == (f"us-east-1/{ami}",)
    image = describe_image(eu, copy["ImageId"])
    assert COPIED_FROM_TAG not in image.tags and REVOKED_TAG not in image.tags
    why = revocation(eu, DEFAULT_PREFIX, image)
    assert why is not None and why.startswith("CVE-2026-0021 (revoked "), why
