"""The exact CopyImage request promote sends (moto ignores these fields, so pin them here)."""

from __future__ import annotations

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
