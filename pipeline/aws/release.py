"""The AWS calls of promote, revoke and retention: copies across regions, sharing, channel
parameters and their history, deprecation, deregistration. Nothing here decides anything.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3

from pipeline.aws import AwsClients, ClientError, aws_error, error_code, make_clients
from pipeline.aws._paginate import collect
from pipeline.aws.images import Image, image_from_api
from pipeline.errors import AwsError
from pipeline.polling import poll_until

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import FilterTypeDef

IAM_ACTIONS: tuple[str, ...] = (
    "ec2:CopyImage",
    "ec2:CreateTags",
    "ec2:DeleteSnapshot",
    "ec2:DeregisterImage",
    "ec2:DescribeImageAttribute",
    "ec2:DescribeImages",
    "ec2:DescribeSnapshotAttribute",
    "ec2:EnableImageDeprecation",
    "ec2:ModifyImageAttribute",
    "ec2:ModifySnapshotAttribute",
    "ssm:DeleteParameter",
    "ssm:GetParameter",
    "ssm:GetParameterHistory",
    "ssm:GetParametersByPath",
    "ssm:PutParameter",
    "sts:GetCallerIdentity",
    # CopyImage with Encrypted=True re-encrypts the snapshots with the region's KMS key.
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html#ami-copy-permissions
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


@dataclass(frozen=True, slots=True)
class OwnedImage:
    """An AMI of this account with the snapshots behind it."""

    image: Image
    snapshots: tuple[str, ...]

    def copied_from(self, region: str, ami: str) -> bool:
        """Whether EC2 says this image is a copy of ``region``/``ami`` (DescribeImages
        ``SourceImageId`` + ``SourceImageRegion``); an image EC2 names no source for
        (CreateImage, RegisterImage) is no copy, whatever its tags, name or description."""
        return self.image.source == (region, ami)


@dataclass(frozen=True, slots=True)
class ParameterVersion:
    """One version of an SSM parameter (GetParameterHistory)."""

    version: int
    value: str
    description: str


@functools.cache
def known_regions() -> tuple[str, ...]:
    """Every region botocore's endpoint data knows for EC2, across partitions (no API call)."""
    session = boto3.session.Session()
    names: set[str] = set()
    for partition in session.get_available_partitions():
        names.update(session.get_available_regions("ec2", partition_name=partition))
    return tuple(sorted(names))


_REGIONAL: dict[tuple[int, str], tuple[AwsClients, AwsClients]] = {}


def in_region(clients: AwsClients, region: str) -> AwsClients:
    """Clients for ``region`` built like ``clients`` (same credentials chain and endpoint),
    made once per home bundle and region (building a session costs ~0.3 s)."""
    if region == clients.region:
        return clients
    key = (id(clients), region)
    cached = _REGIONAL.get(key)
    if cached is None or cached[0] is not clients:
        cached = (clients, make_clients(region=region))
        _REGIONAL[key] = cached
    return cached[1]


def caller_arn(clients: AwsClients) -> str:
    """The ARN of the caller (sts:GetCallerIdentity): who promoted or revoked."""
    try:
        return str(clients.sts.get_caller_identity()["Arn"])
    except ClientError as exc:
        raise aws_error("sts:GetCallerIdentity", exc) from exc


def _owned(item: Mapping[str, Any], region: str) -> OwnedImage:
    snaps = tuple(
        str(m["Ebs"]["SnapshotId"])
        for m in item.get("BlockDeviceMappings", []) or []
        if m.get("Ebs", {}).get("SnapshotId")
    )
    return OwnedImage(image_from_api(item, region), snaps)


def owned_images(clients: AwsClients, filters: Sequence[FilterTypeDef]) -> list[OwnedImage]:
    """This account's AMIs matching ``filters`` (ec2:DescribeImages, Owners=self)."""
    try:
        items = collect(
            clients.ec2, "describe_images", "Images", Owners=["self"], Filters=list(filters)
        )
    except ClientError as exc:
        raise aws_error(f"ec2:DescribeImages ({clients.region})", exc) from exc
    return [_owned(item, clients.region) for item in items]


def owned_image(clients: AwsClients, ami_id: str) -> OwnedImage | None:
    """The AMI with its snapshots, or None when it does not exist (any more) in this region."""
    try:
        items = collect(clients.ec2, "describe_images", "Images", ImageIds=[ami_id])
    except ClientError as exc:
        if (error_code(exc) or "").startswith("InvalidAMIID"):
            return None
        raise aws_error(f"ec2:DescribeImages {ami_id} ({clients.region})", exc) from exc
    return _owned(items[0], clients.region) if items else None


def copy_image(
    clients: AwsClients,
    *,
    source_ami: str,
    source_region: str,
    name: str,
    description: str,
    kms_key_id: str | None,
    client_token: str,
    tags: Mapping[str, str],
) -> str:
    """Copy ``source_ami`` into the clients' region, encrypted (ec2:CopyImage); the new ID.

    ``tags`` go on the copy and its snapshots at creation (the promote role may only copy with
    the pipeline's ownership tag in the request). ``client_token`` makes a retried copy return
    the first copy instead of a second one. (moto ignores Encrypted, KmsKeyId, ClientToken and
    TagSpecifications here; callers re-check the tags after the copy.)
    """
    pairs = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    params: dict[str, Any] = {
        "SourceImageId": source_ami,
        "SourceRegion": source_region,
        "Name": name,
        "Description": description[:255],
        "Encrypted": True,
        "ClientToken": client_token[:64],
        "TagSpecifications": [
            {"ResourceType": "image", "Tags": pairs},
            {"ResourceType": "snapshot", "Tags": pairs},
        ],
    }
    if kms_key_id:
        params["KmsKeyId"] = kms_key_id
    try:
        return str(clients.ec2.copy_image(**params)["ImageId"])
    except ClientError as exc:
        raise aws_error(
            f"ec2:CopyImage {source_ami} {source_region} -> {clients.region}", exc
        ) from exc


def image_states(clients: AwsClients, ami_ids: Sequence[str]) -> dict[str, str]:
    """AMI ID -> state (``pending``, ``available``, ``failed``...); ``missing`` when not listed."""
    try:
        images = clients.ec2.describe_images(ImageIds=list(ami_ids))["Images"]
    except ClientError as exc:
        raise aws_error(f"ec2:DescribeImages {', '.join(ami_ids)} ({clients.region})", exc) from exc
    found = {str(i["ImageId"]): str(i.get("State", "pending")) for i in images}
    return {ami: found.get(ami, "missing") for ami in ami_ids}


def wait_available(
    clients: AwsClients,
    ami_ids: Sequence[str],
    timeout_s: float = 3600,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    echo: Callable[[str], None] = print,
) -> None:
    """Wait for the AMIs to be ``available`` (ec2:DescribeImages), printing progress while a
    cross-region copy runs (tens of minutes for a large image). A ``failed`` or ``error`` image,
    or none after ``timeout_s``, raises AwsError."""
    if not ami_ids:
        return

    def settled(states: dict[str, str]) -> bool:
        return all(v in {"available", "failed", "error", "invalid"} for v in states.values())

    def describe(states: dict[str, str]) -> str:
        pending = [f"{ami} {state}" for ami, state in states.items() if state != "available"]
        return f"{clients.region}: waiting for {', '.join(pending)} to be available"

    states = poll_until(
        lambda: image_states(clients, ami_ids),
        settled,
        timeout_s=timeout_s,
        describe=describe,
        sleep=sleep,
        clock=clock,
        echo=echo,
        first_interval_s=5.0,
        max_interval_s=60.0,
    )
    bad = {ami: state for ami, state in states.items() if state != "available"}
    if bad:
        what = ", ".join(f"{ami} is {state}" for ami, state in bad.items())
        when = "" if settled(states) else f" after {timeout_s:.0f}s"
        raise AwsError(f"{clients.region}: {what}{when}, not available")


def tag(clients: AwsClients, resource_ids: Sequence[str], tags: Mapping[str, str]) -> None:
    """Add or overwrite ``tags`` on the resources (ec2:CreateTags)."""
    if not tags or not resource_ids:
        return
    try:
        clients.ec2.create_tags(
            Resources=list(resource_ids),
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        )
    except ClientError as exc:
        raise aws_error(
            f"ec2:CreateTags {', '.join(resource_ids)} ({clients.region})", exc
        ) from exc


def launch_permissions(clients: AwsClients, ami_id: str) -> set[str]:
    """Account IDs with launch permission on the AMI (ec2:DescribeImageAttribute)."""
    try:
        resp = clients.ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
    except ClientError as exc:
        raise aws_error(f"ec2:DescribeImageAttribute {ami_id} ({clients.region})", exc) from exc
    return {str(p["UserId"]) for p in resp.get("LaunchPermissions", []) if p.get("UserId")}


def _launch_permission(clients: AwsClients, ami_id: str, accounts: Iterable[str], op: str) -> None:
    users = sorted(set(accounts))
    if not users:
        return
    try:
        clients.ec2.modify_image_attribute(
            ImageId=ami_id,
            LaunchPermission={op: [{"UserId": a} for a in users]},  # type: ignore[misc]
        )
    except ClientError as exc:
        raise aws_error(f"ec2:ModifyImageAttribute {ami_id} ({clients.region})", exc) from exc


def add_launch_permission(clients: AwsClients, ami_id: str, accounts: Iterable[str]) -> None:
    """Grant launch permission on the AMI to ``accounts`` (ec2:ModifyImageAttribute)."""
    _launch_permission(clients, ami_id, accounts, "Add")


def remove_launch_permission(clients: AwsClients, ami_id: str, accounts: Iterable[str]) -> None:
    """Take launch permission on the AMI away from ``accounts`` (ec2:ModifyImageAttribute)."""
    _launch_permission(clients, ami_id, accounts, "Remove")


def _volume_permission(
    clients: AwsClients, snapshot_id: str, accounts: Iterable[str], op: str
) -> None:
    users = sorted(set(accounts))
    if not users:
        return
    try:
        clients.ec2.modify_snapshot_attribute(
            SnapshotId=snapshot_id,
            Attribute="createVolumePermission",
            OperationType=op,  # type: ignore[arg-type]
            UserIds=users,
        )
    except ClientError as exc:
        raise aws_error(
            f"ec2:ModifySnapshotAttribute {snapshot_id} ({clients.region})", exc
        ) from exc


def add_volume_permission(clients: AwsClients, snapshot_id: str, accounts: Iterable[str]) -> None:
    """Let ``accounts`` create volumes from the snapshot (ec2:ModifySnapshotAttribute)."""
    _volume_permission(clients, snapshot_id, accounts, "add")


def remove_volume_permission(
    clients: AwsClients, snapshot_id: str, accounts: Iterable[str]
) -> None:
    """Take create-volume permission on the snapshot away (ec2:ModifySnapshotAttribute)."""
    _volume_permission(clients, snapshot_id, accounts, "remove")


def volume_permissions(clients: AwsClients, snapshot_id: str) -> set[str]:
    """Account IDs that may create volumes from the snapshot (ec2:DescribeSnapshotAttribute)."""
    try:
        resp = clients.ec2.describe_snapshot_attribute(
            SnapshotId=snapshot_id, Attribute="createVolumePermission"
        )
    except ClientError as exc:
        raise aws_error(
            f"ec2:DescribeSnapshotAttribute {snapshot_id} ({clients.region})", exc
        ) from exc
    return {str(p["UserId"]) for p in resp.get("CreateVolumePermissions", []) if p.get("UserId")}


def enable_deprecation(clients: AwsClients, ami_id: str, when: datetime) -> None:
    """Set the AMI's deprecation time (ec2:EnableImageDeprecation)."""
    try:
        clients.ec2.enable_image_deprecation(ImageId=ami_id, DeprecateAt=when)
    except ClientError as exc:
        raise aws_error(f"ec2:EnableImageDeprecation {ami_id} ({clients.region})", exc) from exc


def deregister(clients: AwsClients, owned: OwnedImage) -> None:
    """Deregister the AMI, then delete its snapshots (ec2:DeregisterImage, ec2:DeleteSnapshot)."""
    ami = owned.image.id
    try:
        clients.ec2.deregister_image(ImageId=ami)
    except ClientError as exc:
        if not (error_code(exc) or "").startswith("InvalidAMIID"):
            raise aws_error(f"ec2:DeregisterImage {ami} ({clients.region})", exc) from exc
    for snapshot in owned.snapshots:
        try:
            clients.ec2.delete_snapshot(SnapshotId=snapshot)
        except ClientError as exc:
            if error_code(exc) != "InvalidSnapshot.NotFound":
                raise aws_error(
                    f"ec2:DeleteSnapshot {snapshot} of {ami} ({clients.region})", exc
                ) from exc


def get_parameter(clients: AwsClients, name: str) -> str | None:
    """The parameter's value, or None when it does not exist (ssm:GetParameter)."""
    try:
        return str(clients.ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise aws_error(f"ssm:GetParameter {name} ({clients.region})", exc) from exc


def parameter_history(clients: AwsClients, name: str) -> list[ParameterVersion]:
    """Every stored version of the parameter, newest first; [] when it does not exist."""
    try:
        items = collect(clients.ssm, "get_parameter_history", "Parameters", Name=name)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return []
        raise aws_error(f"ssm:GetParameterHistory {name} ({clients.region})", exc) from exc
    versions = [
        ParameterVersion(int(i["Version"]), str(i.get("Value", "")), str(i.get("Description", "")))
        for i in items
    ]
    return sorted(versions, key=lambda v: v.version, reverse=True)


def parameters_under(clients: AwsClients, path: str) -> dict[str, str]:
    """Name → value of every parameter below ``path`` (ssm:GetParametersByPath, recursive)."""
    try:
        items = collect(
            clients.ssm, "get_parameters_by_path", "Parameters", Path=path, Recursive=True
        )
    except ClientError as exc:
        raise aws_error(f"ssm:GetParametersByPath {path} ({clients.region})", exc) from exc
    return {str(i["Name"]): str(i.get("Value", "")) for i in items}


def put_parameter(
    clients: AwsClients, name: str, value: str, description: str, *, image: bool = True
) -> int:
    """Write the parameter (data type aws:ec2:image when ``image``); its new version."""
    try:
        resp = clients.ssm.put_parameter(
            Name=name,
            Value=value,
            Type="String",
            DataType="aws:ec2:image" if image else "text",
            Overwrite=True,
            Description=description[:1024],
        )
    except ClientError as exc:
        raise aws_error(f"ssm:PutParameter {name} ({clients.region})", exc) from exc
    return int(resp.get("Version", 0))


def wait_parameter(
    clients: AwsClients,
    name: str,
    value: str,
    *,
    timeout_s: float = 120,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    echo: Callable[[str], None] = print,
) -> None:
    """Wait until the parameter holds ``value`` (ssm:GetParameter). SSM validates an
    aws:ec2:image value after PutParameter returned, and keeps the old value when it fails:
    https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
    Raises AwsError when the value never appears."""
    got = poll_until(
        lambda: get_parameter(clients, name),
        lambda current: current == value,
        timeout_s=timeout_s,
        describe=lambda current: f"{name} in {clients.region} is {current}, waiting for {value}",
        sleep=sleep,
        clock=clock,
        echo=echo,
        first_interval_s=1.0,
        max_interval_s=10.0,
    )
    if got != value:
        raise AwsError(
            f"ssm:PutParameter {name} = {value} ({clients.region}): SSM did not accept the value "
            f"within {timeout_s:.0f}s (its aws:ec2:image validation failed?); it is {got}"
        )


def delete_parameter(clients: AwsClients, name: str) -> bool:
    """Delete the parameter; False when it did not exist (ssm:DeleteParameter)."""
    try:
        clients.ssm.delete_parameter(Name=name)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return False
        raise aws_error(f"ssm:DeleteParameter {name} ({clients.region})", exc) from exc
    return True
