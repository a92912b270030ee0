"""The local AWS under a job policy (scenario ``iam.ec2_policy``, pipeline/localaws/iam_gate.py):
EC2 refuses, as a real account would, a create call whose tags on create the policy does not
allow (Packer's tagged network interface under issue 21's build.json) and a tag write on an
untagged resource (a copied AMI's snapshots); with the shipped build.json Packer's launch works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.aws import make_clients
from pipeline.localaws import LocalAws
from pipeline.tags import MANAGED_TAG, MANAGED_VALUE

ROOT = Path(__file__).resolve().parents[2]
RUN_TAGS = [
    {"Key": "Name", "Value": "eks-cis-ami-build-r1"},
    {"Key": "cis-ami:run-id", "Value": "r1"},
    {"Key": MANAGED_TAG, "Value": MANAGED_VALUE},
]


def _without_interface_tags(tmp_path: Path) -> str:
    """build.json as it was before issue 21: no network-interface in TagOnCreate."""
    doc = json.loads((ROOT / "policies/iam/build.json").read_text())
    for statement in doc["Statement"]:
        if statement["Sid"] == "TagOnCreate":
            statement["Resource"].remove("arn:aws:ec2:*:*:network-interface/*")
    path = tmp_path / "build-before.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _launch(image: str) -> dict[str, Any]:
    """RunInstances as Packer's step_run_source_instance.go sends it (v1.8.2)."""
    return {
        "ImageId": image, "InstanceType": "m6i.large", "MinCount": 1, "MaxCount": 1,
        "TagSpecifications": [
            {"ResourceType": kind, "Tags": RUN_TAGS}
            for kind in ("instance", "network-interface", "volume")
        ],
    }  # fmt: skip


def _image(clients: Any) -> str:
    return str(clients.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def test_a_tagged_network_interface_is_refused_without_its_tag_on_create_grant(
    aws: LocalAws, tmp_path: Path
) -> None:
    aws.load_scenario({"iam": {"ec2_policy": _without_interface_tags(tmp_path)}})
    clients = make_clients(region="us-east-1")
    with pytest.raises(ClientError) as err:
        clients.ec2.run_instances(**_launch(_image(clients)))
    assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert "network-interface" in err.value.response["Error"]["Message"]
    aws.load_scenario({"iam": {"ec2_policy": "policies/iam/build.json"}})
    assert clients.ec2.run_instances(**_launch(_image(clients)))["Instances"]


def test_tags_on_an_untagged_snapshot_and_an_untagged_copy_are_refused(aws: LocalAws) -> None:
    clients = make_clients(region="us-east-1")
    volume = clients.ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    snapshot = clients.ec2.create_snapshot(VolumeId=volume)["SnapshotId"]  # as a copy's: untagged
    aws.load_scenario({"iam": {"ec2_policy": "policies/iam/build.json"}})
    with pytest.raises(ClientError) as err:
        clients.ec2.create_tags(Resources=[snapshot], Tags=RUN_TAGS)
    assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        clients.ec2.copy_image(SourceImageId=_image(clients), SourceRegion="us-east-1", Name="copy")
    aws.load_scenario({})  # the default: no IAM
    clients.ec2.create_tags(Resources=[snapshot], Tags=RUN_TAGS)
