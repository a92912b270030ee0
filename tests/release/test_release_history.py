"""Issue 20 #7: copies are missed. Promote records each regional copy it makes in the evidence
store's release history (``<account>/<region>/<ami>/releases/<region>/<copy>.json``, write-once,
before publishing it); revoke reads it, so removing every copy tag, with the copy's region not
among the configured ``regions``, no longer hides the copy. What the history names is confirmed
by EC2 (``SourceImageId``): a planted entry cannot make a bystander "the copy"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.aws import release as aws
from pipeline.errors import AwsError
from pipeline.evidence import store
from pipeline.release.promote import PromoteRequest
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.tags import COPIED_FROM_TAG, COPY_TAG_PREFIX, REVOKED_TAG
from tests.release.conftest import pipeline_ami, promote, release
from tests.validate.conftest import ami_tags

ACCOUNT = "123456789012"  # the local AWS's
BUCKET = store.default_bucket(ACCOUNT, "us-east-1")
PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _promote(clients: AwsClients, ami: str) -> str:
    done = promote(clients, PromoteRequest(ami=ami, regions=("us-east-1", "ap-southeast-2")))
    copy = done.regions[1].image_id
    assert copy is not None
    return copy


def test_promote_records_the_copy_and_revoke_finds_it_without_any_tag(
    clients: AwsClients,
) -> None:
    ami = pipeline_ami(clients, "history")
    copy = _promote(clients, ami)
    key = store.release_key(ACCOUNT, "us-east-1", ami, "ap-southeast-2", copy)
    assert clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[union-attr]
    away = make_clients(region="ap-southeast-2")
    clients.ec2.delete_tags(Resources=[ami], Tags=[{"Key": f"{COPY_TAG_PREFIX}ap-southeast-2"}])
    away.ec2.delete_tags(Resources=[copy], Tags=[{"Key": COPIED_FROM_TAG}])

    done = run_revoke(  # ap-southeast-2 is not among the configured regions
        RevokeRequest(ami, "CVE-2026-0060"), release(), clients, datetime.now(UTC), lambda _: None
    )

    assert f"ap-southeast-2/{copy}" in done.newly_revoked
    assert ami_tags(away, copy)[REVOKED_TAG] == "true"
    assert aws.get_parameter(away, PARAM) is None


def test_a_planted_history_entry_does_not_make_a_bystander_the_copy(
    clients: AwsClients,
) -> None:
    ami = pipeline_ami(clients, "planted-history")
    away = make_clients(region="ap-southeast-2")
    bystander = pipeline_ami(away, "bystander")
    key = store.release_key(ACCOUNT, "us-east-1", ami, "ap-southeast-2", bystander)
    clients.s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")  # type: ignore[union-attr]
    done = run_revoke(
        RevokeRequest(ami, "CVE-2026-0061"), release(), clients, datetime.now(UTC), lambda _: None
    )
    assert done.newly_revoked == (f"us-east-1/{ami}",)
    assert REVOKED_TAG not in ami_tags(away, bystander)


def test_a_copy_that_cannot_be_recorded_is_not_published(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "unrecorded")
    clients.s3.delete_bucket(Bucket=BUCKET)  # type: ignore[union-attr]
    with pytest.raises(AwsError, match="s3:PutObject"):
        _promote(clients, ami)
    assert aws.get_parameter(make_clients(region="ap-southeast-2"), PARAM) is None
