"""The seed that makes a fresh local region look like a real one: EKS-optimized base AMIs.

Owns the table of public EKS-optimized AMIs (AL2023: Kubernetes 1.31-1.34, AL2: 1.31-1.32 as AL2
stops at 1.32; x86_64 and arm64), their realistic names and deterministic IDs, the public SSM
parameters that point at them, and the lookup from a base AMI ID to its platform (these AMIs
carry the stock host profiles). Every region is seeded on its first EC2 or SSM request.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass

from pipeline.catalog import Platform
from pipeline.localaws import moto_state

EKS_ACCOUNT = "602401143452"  # the AWS account that publishes the EKS-optimized AMIs
RELEASE = "20251112"
RELEASED = dt.datetime(2025, 11, 12, 21, 4, 0)
KUBERNETES: dict[Platform, tuple[str, ...]] = {
    Platform.AMAZON_LINUX_2023: ("1.31", "1.32", "1.33", "1.34"),
    Platform.AMAZON_LINUX_2: ("1.31", "1.32"),
}
PATCH = {"1.31": "1.31.13", "1.32": "1.32.9", "1.33": "1.33.5", "1.34": "1.34.1"}
ARCHITECTURES = ("x86_64", "arm64")
# Always seeded at start-up (any other region is seeded when first asked about).
WARM_REGIONS = ("us-east-1", "us-west-2")


@dataclass(frozen=True, slots=True)
class BaseImage:
    """One EKS-optimized AMI: platform, Kubernetes minor version, architecture."""

    platform: Platform
    kubernetes: str
    architecture: str

    @property
    def name(self) -> str:
        if self.platform is Platform.AMAZON_LINUX_2023:
            return (
                f"amazon-eks-node-al2023-{self.architecture}-standard-{self.kubernetes}-v{RELEASE}"
            )
        arm = "arm64-" if self.architecture == "arm64" else ""
        return f"amazon-eks-{arm}node-{self.kubernetes}-v{RELEASE}"

    @property
    def parameter_prefix(self) -> str:
        """``.../recommended``, parent of ``image_id``, ``image_name``, ``release_version``."""
        base = f"/aws/service/eks/optimized-ami/{self.kubernetes}"
        if self.platform is Platform.AMAZON_LINUX_2023:
            return f"{base}/amazon-linux-2023/{self.architecture}/standard/recommended"
        arm = "-arm64" if self.architecture == "arm64" else ""
        return f"{base}/amazon-linux-2{arm}/recommended"

    @property
    def release_version(self) -> str:
        return f"{PATCH[self.kubernetes]}-{RELEASE}"

    @property
    def description(self) -> str:
        k8s = PATCH[self.kubernetes]
        if self.platform is Platform.AMAZON_LINUX_2023:
            return (
                "EKS-optimized Kubernetes node based on Amazon Linux 2023,"
                f" (k8s: {k8s}, containerd: 2.1.*)"
            )
        return f"EKS Kubernetes Worker AMI with AmazonLinux2 image, (k8s: {k8s}, containerd: 1.7.*)"

    def image_id(self, region: str) -> str:
        """Deterministic per region and name: ``ami-0`` + 16 hex digits of sha256(region/name)."""
        digest = hashlib.sha256(f"{region}/{self.name}".encode()).hexdigest()
        return f"ami-0{digest[:16]}"

    def spec(self, region: str) -> moto_state.ImageSpec:
        boot = "uefi-preferred" if self.platform is Platform.AMAZON_LINUX_2023 else "legacy-bios"
        return moto_state.ImageSpec(
            image_id=self.image_id(region),
            name=self.name,
            description=self.description,
            owner_id=EKS_ACCOUNT,
            architecture=self.architecture,
            created=RELEASED,
            boot_mode=boot,
        )


BASE_IMAGES: tuple[BaseImage, ...] = tuple(
    BaseImage(platform, k8s, arch)
    for platform, versions in KUBERNETES.items()
    for k8s in versions
    for arch in ARCHITECTURES
)


@functools.cache
def _by_id(region: str) -> dict[str, BaseImage]:
    return {image.image_id(region): image for image in BASE_IMAGES}


def base_image(region: str, image_id: str) -> BaseImage | None:
    """The seeded base AMI with this ID in ``region``, if it is one."""
    return _by_id(region).get(image_id)


def marker(region: str) -> str:
    """An AMI ID whose presence tells that ``region`` is (still) seeded."""
    return BASE_IMAGES[0].image_id(region)


# A VPC and subnet (tag Name) with no route to Systems Manager: `--subnet-id` of it is refused
# by the network preflight of build and validate (pipeline.aws.network).
NO_SSM_ROUTE = "cis-no-ssm-route"


def seed_region(account: str, region: str) -> None:
    """Register the base AMIs and their public SSM parameters in ``region`` and give it a real
    account's network: an internet gateway route in the default VPC, and the NO_SSM_ROUTE
    subnet (idempotent)."""
    moto_state.seed_network(account, region, NO_SSM_ROUTE)
    for image in BASE_IMAGES:
        spec = image.spec(region)
        if not moto_state.has_image(account, region, spec.image_id):
            moto_state.register_image(account, region, spec)
        values = {
            "image_id": (spec.image_id, "aws:ec2:image"),
            "image_name": (image.name, "text"),
            "release_version": (image.release_version, "text"),
        }
        for leaf, (value, data_type) in values.items():
            moto_state.put_public_parameter(
                account, region, f"{image.parameter_prefix}/{leaf}", value, data_type
            )
