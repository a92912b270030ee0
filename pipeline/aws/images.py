"""AMIs at the AWS boundary: the EKS-optimized base AMI (public SSM parameter), facts and tags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError
from pipeline.packer import TAG_PREFIX, Arch, check_k8s_version

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import TagTypeDef

IAM_ACTIONS: tuple[str, ...] = (
    "ssm:GetParameter",
    "ec2:DescribeImages",
    "ec2:CreateTags",
    "ec2:DeleteTags",
)

PLATFORM_TAG = f"{TAG_PREFIX}platform"
_AL2023 = re.compile(r"(?<![a-z0-9])al2023|amazon ?linux ?2023|amzn2023")
_AL2 = re.compile(r"(?<![a-z0-9])al2(?![0-9])|amazon ?linux ?2(?![0-9])|amzn2(?![0-9])")
_AL2_EKS_NAME = re.compile(r"^amazon-eks-(?:arm64-|gpu-)?node-1\.[0-9]+-v")
_MAX_TAGS = 50  # per resource, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html


def eks_ami_parameter(k8s_version: str, platform: Platform, arch: Arch) -> str:
    """The public SSM parameter holding the recommended EKS-optimized AMI ID.

    Raises ConfigError (naming --k8s-version) for AL2 with Kubernetes >= 1.33.
    https://docs.aws.amazon.com/eks/latest/userguide/retrieve-ami-id.html
    """
    version = check_k8s_version(platform, k8s_version)
    base = f"/aws/service/eks/optimized-ami/{version}"
    if platform is Platform.AMAZON_LINUX_2023:
        return f"{base}/amazon-linux-2023/{arch.value}/standard/recommended/image_id"
    suffix = "-arm64" if arch is Arch.ARM64 else ""
    return f"{base}/amazon-linux-2{suffix}/recommended/image_id"


def resolve_eks_base_ami(
    clients: AwsClients, k8s_version: str, platform: Platform, arch: Arch
) -> str:
    """The EKS-optimized AMI ID for Kubernetes ``k8s_version`` on ``platform``/``arch``.

    Calls ssm:GetParameter. Raises ConfigError when the parameter does not exist (it names the
    parameter and the region), AwsError on any other AWS failure or an unexpected value.
    """
    name = eks_ami_parameter(k8s_version, platform, arch)
    try:
        response = clients.ssm.get_parameter(Name=name)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            raise ConfigError(
                f"no EKS-optimized {platform.short} {arch.value} AMI for Kubernetes "
                f"{k8s_version} in {clients.region}: SSM parameter {name} not found "
                "(check --k8s-version)"
            ) from None
        raise aws_error(f"ssm:GetParameter {name} ({clients.region})", exc) from exc
    value = response.get("Parameter", {}).get("Value", "")
    if not value.startswith("ami-"):
        raise AwsError(f"SSM parameter {name} ({clients.region}) holds {value!r}, not an AMI ID")
    return value


@dataclass(frozen=True, slots=True)
class Image:
    """What the pipeline needs to know about one AMI."""

    id: str
    region: str
    state: str
    name: str | None
    architecture: str | None
    platform: Platform | None
    creation_date: str | None
    description: str | None = None
    owner_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    root_device_name: str | None = None
    snapshot_ids: tuple[str, ...] = ()  # of its EBS block devices, sorted
    root_volume_size: int | None = None  # GiB of the root device's EBS mapping, when given
    # What EC2 says a CopyImage copy was copied from: (SourceImageRegion, SourceImageId). Absent
    # for CreateImage and RegisterImage images: no tag, name or description can set it.
    source: tuple[str, str] | None = None

    @property
    def available(self) -> bool:
        return self.state == "available"


def infer_platform(
    tags: Mapping[str, str], name: str | None, description: str | None
) -> Platform | None:
    """The platform from the ``cis-ami:platform`` tag, else guessed from the name/description.

    EKS AMI names: ``amazon-eks-node-al2023-x86_64-standard-1.33-v…`` (AL2023),
    ``amazon-eks-node-1.32-v…`` / ``amazon-eks-arm64-node-1.32-v…`` (AL2, whose description reads
    "EKS Kubernetes Worker AMI with AmazonLinux2 image"). None when nothing matches.
    """
    tagged = tags.get(PLATFORM_TAG)
    if tagged:
        try:
            return Platform.parse(tagged)
        except ConfigError:
            return None
    text = f"{name or ''} {description or ''}".lower()
    if _AL2023.search(text):
        return Platform.AMAZON_LINUX_2023
    if _AL2.search(text) or _AL2_EKS_NAME.match(text):
        return Platform.AMAZON_LINUX_2
    return None


def image_from_api(item: Mapping[str, Any], region: str) -> Image:
    """Build an Image from one ``DescribeImages`` ``Images[]`` item."""
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in item.get("Tags", []) or []}
    name = item.get("Name")
    description = item.get("Description")
    return Image(
        id=str(item["ImageId"]),
        region=region,
        state=str(item.get("State", "unknown")),
        name=name,
        architecture=item.get("Architecture"),
        platform=infer_platform(tags, name, description),
        creation_date=item.get("CreationDate"),
        description=description,
        owner_id=item.get("OwnerId"),
        tags=MappingProxyType(tags),
        root_device_name=item.get("RootDeviceName"),
        root_volume_size=_root_volume_size(item),
        source=(
            (str(item["SourceImageRegion"]), str(item["SourceImageId"]))
            if item.get("SourceImageId") and item.get("SourceImageRegion")
            else None
        ),
        snapshot_ids=tuple(
            sorted(
                str(m["Ebs"]["SnapshotId"])
                for m in item.get("BlockDeviceMappings", []) or []
                if m.get("Ebs", {}).get("SnapshotId")
            )
        ),
    )


def _root_volume_size(item: Mapping[str, Any]) -> int | None:
    name = item.get("RootDeviceName")
    for mapping in item.get("BlockDeviceMappings", []) or []:
        if mapping.get("DeviceName") == name and "Ebs" in mapping:
            size = mapping["Ebs"].get("VolumeSize")
            return int(size) if size else None
    return None


def describe_image(clients: AwsClients, ami_id: str) -> Image:
    """The AMI ``ami_id`` in the clients' region (ec2:DescribeImages).

    Raises AwsError when the AMI does not exist there (also once deregistered) or the call fails.
    """
    try:
        items = collect(clients.ec2, "describe_images", "Images", ImageIds=[ami_id])
    except ClientError as exc:
        if (error_code(exc) or "").startswith("InvalidAMIID"):
            raise AwsError(f"AMI {ami_id} not found in {clients.region}") from None
        raise aws_error(f"ec2:DescribeImages {ami_id} ({clients.region})", exc) from exc
    if not items:
        raise AwsError(f"AMI {ami_id} not found in {clients.region} (deregistered?)")
    return image_from_api(items[0], clients.region)


def tag_image(clients: AwsClients, ami_id: str, tags: Mapping[str, str]) -> None:
    """Add or overwrite ``tags`` on the AMI (ec2:CreateTags). Snapshots are not touched.

    Raises ConfigError for keys AWS reserves (``aws:``) or too many tags, AwsError on failure.
    """
    if not tags:
        return
    bad = sorted(k for k in tags if not k or k.lower().startswith("aws:"))
    if bad:
        raise ConfigError(f"tags for {ami_id}: invalid or reserved keys {bad}")
    if len(tags) > _MAX_TAGS:
        raise ConfigError(f"tags for {ami_id}: {len(tags)} tags, EC2 allows {_MAX_TAGS}")
    payload: list[TagTypeDef] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    try:
        clients.ec2.create_tags(Resources=[ami_id], Tags=payload)
    except ClientError as exc:
        raise aws_error(f"ec2:CreateTags {ami_id} ({clients.region})", exc) from exc


def untag_image(clients: AwsClients, ami_id: str, keys: list[str]) -> None:
    """Remove the tags ``keys`` from the AMI (ec2:DeleteTags); absent keys are fine.

    Raises AwsError on failure.
    """
    if not keys:
        return
    try:
        clients.ec2.delete_tags(Resources=[ami_id], Tags=[{"Key": k} for k in sorted(keys)])
    except ClientError as exc:
        raise aws_error(f"ec2:DeleteTags {ami_id} ({clients.region})", exc) from exc
