"""The seed: public EKS-optimized AMI parameters pointing at Amazon-owned base AMIs, per region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog import Platform
from pipeline.localaws import seed

World = Any


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2", "eu-central-1"])
def test_every_parameter_points_at_a_realistic_base_ami(world: World, region: str) -> None:
    ssm = world.client(world.aws.endpoint, "ssm", region=region)
    ec2 = world.client(world.aws.endpoint, "ec2", region=region)
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path="/aws/service/eks", Recursive=True
    )
    values = {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}
    assert len(values) == 3 * len(seed.BASE_IMAGES)
    images = {
        i["ImageId"]: i
        for i in ec2.describe_images(ImageIds=[i.image_id(region) for i in seed.BASE_IMAGES])[
            "Images"
        ]
    }
    for image in seed.BASE_IMAGES:
        prefix = image.parameter_prefix
        assert values[f"{prefix}/image_id"] == image.image_id(region)
        ami = images[image.image_id(region)]
        assert (ami["Name"], ami["OwnerId"], ami["Architecture"]) == (
            image.name,
            "602401143452",
            image.architecture,
        )
        assert (ami["Public"], ami["State"], ami["ImageOwnerAlias"]) == (
            True,
            "available",
            "amazon",
        )
        assert values[f"{prefix}/image_name"] == image.name
        assert values[f"{prefix}/release_version"] == image.release_version
        assert image.release_version.endswith("-20251112")


def test_the_seeded_versions_and_paths(world: World) -> None:
    names = {
        p["Name"]
        for page in world.c.ssm.get_paginator("get_parameters_by_path").paginate(
            Path="/aws/service/eks/optimized-ami", Recursive=True
        )
        for p in page["Parameters"]
        if p["Name"].endswith("/image_id")
    }
    expected = {
        f"/aws/service/eks/optimized-ami/{k}/amazon-linux-2023/{a}/standard/recommended/image_id"
        for k in ("1.31", "1.32", "1.33", "1.34")
        for a in ("x86_64", "arm64")
    }
    expected |= {
        f"/aws/service/eks/optimized-ami/{k}/amazon-linux-2{s}/recommended/image_id"
        for k in ("1.31", "1.32")
        for s in ("", "-arm64")
    }
    assert names == expected
    with pytest.raises(world.c.ssm.exceptions.ParameterNotFound):  # AL2 stops at 1.32
        world.c.ssm.get_parameter(
            Name="/aws/service/eks/optimized-ami/1.33/amazon-linux-2/recommended/image_id"
        )


def test_amazon_owned_name_filter_finds_the_base_ami(world: World) -> None:
    images = world.c.ec2.describe_images(
        Owners=["amazon"],
        Filters=[{"Name": "name", "Values": ["amazon-eks-node-al2023-arm64-standard-1.34-*"]}],
    )["Images"]
    assert [i["Name"] for i in images] == ["amazon-eks-node-al2023-arm64-standard-1.34-v20251112"]


def test_base_amis_carry_the_stock_profile_of_their_platform() -> None:
    for image in seed.BASE_IMAGES:
        assert seed.base_image("us-east-1", image.image_id("us-east-1")) == image
    assert {i.platform for i in seed.BASE_IMAGES} == set(Platform)
    assert (
        len(
            {i.image_id("us-east-1") for i in seed.BASE_IMAGES}
            | {i.image_id("us-west-2") for i in seed.BASE_IMAGES}
        )
        == 24
    )


def test_readme_example_ami_id_is_the_code_s() -> None:
    readme = (Path(seed.__file__).parent / "README.md").read_text()
    example = seed.BaseImage(Platform.AMAZON_LINUX_2023, "1.32", "x86_64").image_id("us-east-1")
    assert f"us-east-1 AL2023 1.32 x86_64 is `{example}`" in readme


def test_reset_reseeds_on_the_next_request(world: World) -> None:
    image_id = world.base_ami()
    world.c.ec2.deregister_image(ImageId=image_id)
    assert world.c.ec2.describe_images(ImageIds=[image_id])["Images"] == []
    world.aws.reset()
    assert world.c.ec2.describe_images(ImageIds=[image_id])["Images"][0]["ImageId"] == image_id
