"""EC2 for validation: the per-run security group and tagged, self-terminating test instances."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import WaiterError

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect
from pipeline.errors import AwsError
from pipeline.tags import MANAGED_TAG, MANAGED_VALUE

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import EbsBlockDeviceTypeDef, FilterTypeDef, TagTypeDef

IAM_ACTIONS: tuple[str, ...] = (
    "ec2:DescribeSubnets",
    "ec2:CreateSecurityGroup",
    "ec2:DeleteSecurityGroup",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeImages",
    "ec2:RunInstances",
    "ec2:CreateTags",
    "ec2:DescribeInstances",
    "ec2:TerminateInstances",
    "ec2:ModifyImageAttribute",
    "ec2:DescribeKeyPairs",
    "ec2:DeleteKeyPair",
)
RUN_TAG = "cis-validate:run-id"


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Everything one test instance is launched with."""

    ami_id: str
    instance_type: str
    instance_profile: str
    subnet_id: str
    security_group_id: str
    tags: Mapping[str, str]
    ttl_minutes: int
    public_ip: bool = False
    kms_key_id: str | None = None
    # (root device name, size in GiB) when the caller has described the AMI already; else
    # launch reads it (ec2:DescribeImages). A None name also makes launch read it.
    root_device: tuple[str | None, int | None] | None = None


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    state: str
    ami_id: str
    tags: Mapping[str, str]
    launched: datetime | None = None


def _instance(item: Mapping[str, Any]) -> Instance:
    launched = item.get("LaunchTime")
    return Instance(
        id=str(item["InstanceId"]),
        state=str(item["State"]["Name"]),
        ami_id=str(item["ImageId"]),
        tags={t["Key"]: t["Value"] for t in item.get("Tags", [])},
        launched=launched if isinstance(launched, datetime) else None,
    )


def find_security_group(clients: AwsClients, vpc_id: str, name: str) -> str | None:
    groups = collect(
        clients.ec2,
        "describe_security_groups",
        "SecurityGroups",
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [name]},
        ],
    )
    return str(groups[0]["GroupId"]) if groups else None


def create_security_group(
    clients: AwsClients, vpc_id: str, name: str, tags: Mapping[str, str]
) -> str:
    """A security group with no ingress (egress open: SSM and Inspector endpoints need HTTPS)."""
    try:
        resp = clients.ec2.create_security_group(
            GroupName=name,
            Description="EKS CIS AMI pipeline test instance: no ingress",
            VpcId=vpc_id,
            TagSpecifications=[
                {
                    "ResourceType": "security-group",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
    except ClientError as exc:
        raise aws_error(f"ec2:CreateSecurityGroup {name}", exc) from exc
    return resp["GroupId"]


def delete_security_group(clients: AwsClients, group_id: str) -> bool:
    """Delete a security group; False if already gone."""
    try:
        clients.ec2.delete_security_group(GroupId=group_id)
    except ClientError as exc:
        if error_code(exc) == "InvalidGroup.NotFound":
            return False
        raise aws_error(f"ec2:DeleteSecurityGroup {group_id}", exc) from exc
    return True


def dead_mans_switch(ttl_minutes: int) -> str:
    """User data that powers the instance off after the TTL (shutdown behaviour: terminate)."""
    return (
        "#!/bin/sh\n"
        "# eks-cis-ami-pipeline: never outlive the pipeline that launched this test instance\n"
        f"shutdown -P +{int(ttl_minutes)} 'CIS validation TTL reached'\n"
    )


def launch(clients: AwsClients, spec: LaunchSpec) -> str:
    """Launch a test instance: IMDSv2 only, no key pair, encrypted root, terminate on power-off."""
    tags: list[TagTypeDef] = [{"Key": k, "Value": v} for k, v in spec.tags.items()]
    known = spec.root_device
    if known is not None and known[0]:
        device, size = str(known[0]), known[1]
    else:
        device, size = root_device(clients, spec.ami_id)
    ebs: EbsBlockDeviceTypeDef = {"Encrypted": True, "DeleteOnTermination": True}
    if size:
        ebs["VolumeSize"] = size
    if spec.kms_key_id:
        ebs["KmsKeyId"] = spec.kms_key_id
    try:
        resp = clients.ec2.run_instances(
            ImageId=spec.ami_id,
            InstanceType=spec.instance_type,  # type: ignore[arg-type]
            MinCount=1,
            MaxCount=1,
            IamInstanceProfile={"Name": spec.instance_profile},
            NetworkInterfaces=[
                {
                    "DeviceIndex": 0,
                    "SubnetId": spec.subnet_id,
                    "Groups": [spec.security_group_id],
                    "AssociatePublicIpAddress": spec.public_ip,
                    "DeleteOnTermination": True,
                }
            ],
            MetadataOptions={
                "HttpTokens": "required",
                "HttpPutResponseHopLimit": 1,
                "HttpEndpoint": "enabled",
                "InstanceMetadataTags": "enabled",
            },
            BlockDeviceMappings=[{"DeviceName": device, "Ebs": ebs}],
            InstanceInitiatedShutdownBehavior="terminate",
            UserData=base64.b64encode(dead_mans_switch(spec.ttl_minutes).encode()).decode(),
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
        )
    except ClientError as exc:
        raise aws_error(f"ec2:RunInstances {spec.ami_id}", exc) from exc
    return resp["Instances"][0]["InstanceId"]


def root_device(clients: AwsClients, ami_id: str) -> tuple[str, int | None]:
    """(root device name, root volume size in GiB) of an AMI, to encrypt the root volume."""
    try:
        image = clients.ec2.describe_images(ImageIds=[ami_id])["Images"][0]
    except (ClientError, IndexError) as exc:
        raise AwsError(f"ec2:DescribeImages {ami_id}: cannot read its root device") from exc
    name = str(image.get("RootDeviceName") or "/dev/xvda")
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == name and "Ebs" in mapping:
            size = mapping["Ebs"].get("VolumeSize")
            return name, int(size) if size else None
    return name, None


def run_instances(clients: AwsClients, run_id: str) -> list[Instance]:
    """Instances tagged with ``run_id`` that are not terminated (for resume and cleanup)."""
    return _live_instances(clients, {"Name": f"tag:{RUN_TAG}", "Values": [run_id]})


def _live_instances(clients: AwsClients, tag_filter: FilterTypeDef) -> list[Instance]:
    """Instances matching ``tag_filter`` that are not terminated (ec2:DescribeInstances)."""
    live = ["pending", "running", "stopping", "stopped"]
    reservations = collect(
        clients.ec2,
        "describe_instances",
        "Reservations",
        Filters=[tag_filter, {"Name": "instance-state-name", "Values": live}],
    )
    return [_instance(i) for r in reservations for i in r.get("Instances", [])]


def wait_running(clients: AwsClients, instance_ids: Sequence[str], timeout_s: int = 600) -> None:
    """Waiter ``instance_running`` with an explicit budget."""
    try:
        clients.ec2.get_waiter("instance_running").wait(
            InstanceIds=list(instance_ids),
            WaiterConfig={"Delay": 5, "MaxAttempts": max(1, timeout_s // 5)},
        )
    except WaiterError as exc:
        raise AwsError(f"instances {', '.join(instance_ids)} did not reach running: {exc}") from exc


def terminate(clients: AwsClients, instance_ids: Sequence[str]) -> None:
    """Terminate instances (idempotent: terminating a terminated instance is fine)."""
    if not instance_ids:
        return
    try:
        clients.ec2.terminate_instances(InstanceIds=list(instance_ids))
    except ClientError as exc:
        if error_code(exc) == "InvalidInstanceID.NotFound":
            return
        raise aws_error(f"ec2:TerminateInstances {', '.join(instance_ids)}", exc) from exc


def wait_terminated(clients: AwsClients, instance_ids: Sequence[str], timeout_s: int = 600) -> None:
    if not instance_ids:
        return
    try:
        clients.ec2.get_waiter("instance_terminated").wait(
            InstanceIds=list(instance_ids),
            WaiterConfig={"Delay": 5, "MaxAttempts": max(1, timeout_s // 5)},
        )
    except WaiterError as exc:
        raise AwsError(f"instances {', '.join(instance_ids)} did not terminate: {exc}") from exc


def tagged_instances(clients: AwsClients, tag_key: str, *more_keys: str) -> list[Instance]:
    """Live instances (not terminated) carrying any of the tag keys, any value (the reaper)."""
    return _live_instances(clients, {"Name": "tag-key", "Values": [tag_key, *more_keys]})


def tagged_security_groups(
    clients: AwsClients, tag_key: str, *more_keys: str
) -> dict[str, dict[str, str]]:
    """Security groups carrying any of the tag keys: {group id: tags}."""
    groups = collect(
        clients.ec2,
        "describe_security_groups",
        "SecurityGroups",
        Filters=[{"Name": "tag-key", "Values": [tag_key, *more_keys]}],
    )
    return {str(g["GroupId"]): {t["Key"]: t["Value"] for t in g.get("Tags", [])} for g in groups}


def write_tags(clients: AwsClients, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
    """Add or overwrite ``tags`` on EC2 resources (ec2:CreateTags), e.g. a run's heartbeat."""
    if not resource_ids:
        return
    try:
        clients.ec2.create_tags(
            Resources=list(resource_ids), Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    except ClientError as exc:
        raise aws_error(f"ec2:CreateTags {', '.join(resource_ids)}", exc) from exc


def run_resource_ids(clients: AwsClients, run_key: str, run_ids: Sequence[str]) -> list[str]:
    """IDs of the live instances, security groups and key pairs whose ``run_key`` tag is one of
    ``run_ids`` and that carry the ownership tag (ec2:DescribeInstances, DescribeSecurityGroups,
    DescribeKeyPairs): what a build's heartbeat keeps alive."""
    if not run_ids:
        return []
    run_filter: FilterTypeDef = {"Name": f"tag:{run_key}", "Values": list(run_ids)}
    owned: FilterTypeDef = {"Name": f"tag:{MANAGED_TAG}", "Values": [MANAGED_VALUE]}
    ids = [i.id for i in _live_instances(clients, run_filter) if _owned(i.tags)]
    groups = collect(
        clients.ec2, "describe_security_groups", "SecurityGroups", Filters=[run_filter, owned]
    )
    ids += [str(g["GroupId"]) for g in groups]
    try:
        pairs = clients.ec2.describe_key_pairs(Filters=[run_filter, owned]).get("KeyPairs", [])
    except ClientError as exc:
        raise aws_error("ec2:DescribeKeyPairs", exc) from exc
    return ids + [str(k["KeyPairId"]) for k in pairs if "KeyPairId" in k]


def _owned(tags: Mapping[str, str]) -> bool:
    return tags.get(MANAGED_TAG) == MANAGED_VALUE


def tagged_key_pairs(
    clients: AwsClients, tag_key: str, *more_keys: str
) -> dict[str, dict[str, str]]:
    """Key pairs carrying any of the tag keys (ec2:DescribeKeyPairs): {key pair name: tags}."""
    keys = [tag_key, *more_keys]
    try:
        pairs = clients.ec2.describe_key_pairs(Filters=[{"Name": "tag-key", "Values": keys}])
    except ClientError as exc:
        raise aws_error("ec2:DescribeKeyPairs", exc) from exc
    return {
        str(k["KeyName"]): {t["Key"]: t["Value"] for t in k.get("Tags", [])}
        for k in pairs.get("KeyPairs", [])
        if "KeyName" in k
    }


def delete_key_pair(clients: AwsClients, key_name: str) -> None:
    """Delete a key pair by name (ec2:DeleteKeyPair; idempotent on AWS's side)."""
    try:
        clients.ec2.delete_key_pair(KeyName=key_name)
    except ClientError as exc:
        raise aws_error(f"ec2:DeleteKeyPair {key_name}", exc) from exc


def share_image(clients: AwsClients, ami_id: str, accounts: list[str]) -> None:
    """Grant launch permission on the AMI to ``accounts`` (ec2:ModifyImageAttribute)."""
    if not accounts:
        return
    try:
        clients.ec2.modify_image_attribute(
            ImageId=ami_id,
            LaunchPermission={"Add": [{"UserId": a} for a in accounts]},
        )
    except ClientError as exc:
        raise aws_error(f"ec2:ModifyImageAttribute {ami_id}", exc) from exc
