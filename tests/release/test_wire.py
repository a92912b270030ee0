"""The exact CopyImage request promote sends (moto ignores these fields, so pin them here)."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from pipeline.aws import AwsClients, make_clients
from pipeline.aws.release import copy_image


def test_copy_image_is_encrypted_with_the_region_key_and_tagged_on_create(
    clients: AwsClients,
) -> None:
    eu: AwsClients = make_clients(region="eu-west-1")
    tags = [{"Key": "cis-pipeline:managed", "Value": "true"}]
    with Stubber(eu.ec2) as stub:
        stub.add_response(
            "copy_image",
            {"ImageId": "ami-0123456789abcdef0"},
            {
                "SourceImageId": "ami-0fedcba9876543210",
                "SourceRegion": "us-east-1",
                "Name": "eks-cis-al2023",
                "Description": "copy",
                "Encrypted": True,
                "KmsKeyId": "alias/eu-images",
                "ClientToken": "promote-ami-0fedcba9876543210-eu-west-1",
                "TagSpecifications": [
                    {"ResourceType": "image", "Tags": tags},
                    {"ResourceType": "snapshot", "Tags": tags},
                ],
            },
        )
        got = copy_image(
            eu,
            source_ami="ami-0fedcba9876543210",
            source_region="us-east-1",
            name="eks-cis-al2023",
            description="copy",
            kms_key_id="alias/eu-images",
            client_token="promote-ami-0fedcba9876543210-eu-west-1",
            tags={"cis-pipeline:managed": "true"},
        )
        stub.assert_no_pending_responses()
    assert got == "ami-0123456789abcdef0"


def test_a_parameter_value_ssm_never_accepts_is_an_error(clients: AwsClients) -> None:
    """SSM validates aws:ec2:image asynchronously and keeps the old value when that fails."""
    from pipeline.aws.release import put_parameter, wait_parameter
    from pipeline.errors import AwsError

    name = "/eks-cis-ami/al2023/x86_64/1.33/stable/image-id"
    put_parameter(clients, name, "ami-0123456789abcdef0", "test")
    wait_parameter(clients, name, "ami-0123456789abcdef0", sleep=pytest.fail, echo=print)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(AwsError, match="did not accept the value"):
        wait_parameter(
            clients, name, "ami-0fffffffffffffff0", timeout_s=30, sleep=sleep,
            clock=lambda: now[0], echo=print,
        )  # fmt: skip


def test_revoke_deprecates_with_enable_image_deprecation(clients: AwsClients) -> None:
    """moto does not implement EnableImageDeprecation; pin the request revoke sends on AWS."""
    from datetime import UTC, datetime

    from pipeline.aws.release import enable_deprecation

    when = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    with Stubber(clients.ec2) as stub:
        stub.add_response(
            "enable_image_deprecation",
            {"Return": True},
            {"ImageId": "ami-0123456789abcdef0", "DeprecateAt": when},
        )
        enable_deprecation(clients, "ami-0123456789abcdef0", when)
        stub.assert_no_pending_responses()


def test_the_deprecation_time_is_in_the_future_in_whole_minutes() -> None:
    from datetime import UTC, datetime

    from pipeline.release.revoke import deprecation_time

    now = datetime(2026, 11, 27, 12, 0, 59, 999, tzinfo=UTC)
    assert deprecation_time(now) == datetime(2026, 11, 27, 12, 2, tzinfo=UTC)
    assert deprecation_time(now) > now
