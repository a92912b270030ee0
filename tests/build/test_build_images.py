"""pipeline.aws.images against the local AWS over HTTP, and its pure helpers as data."""

from __future__ import annotations

import re

import pytest
from _local_aws import LocalEndpoint, eks_base_ami, raw_client

from pipeline.aws import AwsClients
from pipeline.aws.images import (
    IAM_ACTIONS,
    describe_image,
    eks_ami_parameter,
    infer_platform,
    resolve_eks_base_ami,
    tag_image,
    untag_image,
)
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError
from pipeline.packer import Arch

AL2023, AL2 = Platform.AMAZON_LINUX_2023, Platform.AMAZON_LINUX_2


@pytest.mark.parametrize(
    ("version", "platform", "arch", "want"),
    [
        (
            "1.33",
            AL2023,
            Arch.X86_64,
            "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id",
        ),
        (
            "1.34",
            AL2023,
            Arch.ARM64,
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/recommended/image_id",
        ),
        (
            "1.32",
            AL2,
            Arch.X86_64,
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2/recommended/image_id",
        ),
        (
            "1.29",
            AL2,
            Arch.ARM64,
            "/aws/service/eks/optimized-ami/1.29/amazon-linux-2-arm64/recommended/image_id",
        ),
    ],
)
def test_eks_ami_parameter(version: str, platform: Platform, arch: Arch, want: str) -> None:
    assert eks_ami_parameter(version, platform, arch) == want


@pytest.mark.parametrize(
    ("tags", "name", "description", "want"),
    [
        (
            {"cis-ami:platform": "AMAZON_LINUX_2"},
            "amazon-eks-node-al2023-x86_64-standard-1.33",
            None,
            AL2,
        ),
        ({}, "amazon-eks-node-al2023-x86_64-standard-1.33-v20251120", None, AL2023),
        ({}, "amazon-eks-node-1.32-v20251120", None, AL2),
        ({}, "amazon-eks-arm64-node-1.32-v20251120", None, AL2),
        ({}, "amazon-eks-node-linux", "EKS Kubernetes Worker AMI with AmazonLinux2 image", AL2),
        ({}, "x", "EKS-optimized Kubernetes node based on Amazon Linux 2023", AL2023),
        ({}, "al2023-ami-2023.6.20251110.0-kernel-6.1-x86_64", None, AL2023),
        ({}, "ubuntu-jammy-22.04-amd64-server", "Canonical, Ubuntu, 22.04", None),
        ({}, "internal2-image", None, None),
        ({"cis-ami:platform": "WINDOWS"}, "amazon-eks-node-1.32-v1", None, None),
    ],
)
def test_infer_platform(
    tags: dict[str, str], name: str, description: str | None, want: Platform | None
) -> None:
    assert infer_platform(tags, name, description) is want


@pytest.mark.parametrize(
    ("version", "platform", "arch"),
    [("1.33", AL2023, Arch.ARM64), ("1.32", AL2, Arch.X86_64), ("1.32", AL2, Arch.ARM64)],
)
def test_resolve_eks_base_ami(
    local_clients: AwsClients,
    local_endpoint: LocalEndpoint,
    version: str,
    platform: Platform,
    arch: Arch,
) -> None:
    want = eks_base_ami(local_endpoint.url, version, platform.short, arch.value)
    assert resolve_eks_base_ami(local_clients, version, platform, arch) == want
    assert local_clients.calls.as_dict() == {"ssm:GetParameter": 1}


def test_resolve_unknown_version_names_the_parameter(local_clients: AwsClients) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_eks_base_ami(local_clients, "1.20", AL2023, Arch.X86_64)
    message = str(err.value)
    assert (
        "/aws/service/eks/optimized-ami/1.20/amazon-linux-2023/x86_64/standard/recommended/image_id"
        in message
    )
    assert "us-east-1" in message and "--k8s-version" in message
    assert err.value.exit_code == 2


def test_resolve_al2_after_132_is_refused_before_any_call(local_clients: AwsClients) -> None:
    with pytest.raises(ConfigError, match=r"--k8s-version 1\.33"):
        resolve_eks_base_ami(local_clients, "1.33", AL2, Arch.ARM64)
    assert local_clients.calls.total == 0


def test_describe_image_of_the_base_ami(
    local_clients: AwsClients, local_endpoint: LocalEndpoint
) -> None:
    ami = eks_base_ami(local_endpoint.url, "1.32", "al2", "x86_64")
    image = describe_image(local_clients, ami)
    assert image.id == ami and image.available and image.region == "us-east-1"
    assert image.name and image.name.startswith("amazon-eks-")
    assert image.platform is AL2  # no cis-ami:platform tag: inferred from the name/description
    assert image.architecture == "x86_64"
    assert image.creation_date and not image.tags


@pytest.mark.parametrize("ami_id", ["ami-0000000000000dead", "ami-12345678"])
def test_describe_missing_image(local_clients: AwsClients, ami_id: str) -> None:
    with pytest.raises(AwsError, match=f"AMI {ami_id} not found in us-east-1"):
        describe_image(local_clients, ami_id)


def test_tag_image_then_platform_comes_from_the_tag(
    local_clients: AwsClients, local_endpoint: LocalEndpoint
) -> None:
    ec2 = raw_client("ec2", local_endpoint.url)
    ami = ec2.register_image(Name="tag-image-test", RootDeviceName="/dev/xvda")["ImageId"]
    assert describe_image(local_clients, ami).platform is None
    tag_image(local_clients, ami, {"cis-ami:platform": "AMAZON_LINUX_2023", "Name": "x"})
    image = describe_image(local_clients, ami)
    assert image.platform is AL2023
    assert dict(image.tags) == {"cis-ami:platform": "AMAZON_LINUX_2023", "Name": "x"}
    tag_image(local_clients, ami, {"Name": "y"})  # overwrite, others kept
    assert dict(describe_image(local_clients, ami).tags)["Name"] == "y"


@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ({"aws:cloudformation:stack": "x"}, "reserved"),
        ({f"k{i}": "v" for i in range(51)}, "51 tags"),
    ],
    ids=["aws_prefix", "too_many"],
)
def test_tag_image_refuses(local_clients: AwsClients, tags: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        tag_image(local_clients, "ami-0abc", tags)
    assert local_clients.calls.total == 0


def test_iam_actions_cover_every_call(
    local_clients: AwsClients, local_endpoint: LocalEndpoint
) -> None:
    """What the module calls is exactly what it declares (the least-privilege drift check)."""
    ami = raw_client("ec2", local_endpoint.url).register_image(Name="iam-test")["ImageId"]
    resolve_eks_base_ami(local_clients, "1.33", AL2023, Arch.X86_64)
    describe_image(local_clients, ami)
    tag_image(local_clients, ami, {"Name": "iam-test"})
    untag_image(local_clients, ami, ["Name"])
    assert set(local_clients.calls.as_dict()) == set(IAM_ACTIONS)
    assert all(re.fullmatch(r"(ec2|ssm):[A-Z][A-Za-z]+", a) for a in IAM_ACTIONS)
