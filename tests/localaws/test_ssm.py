"""ssm:DescribeInstanceInformation: registration delay, the SSM role, states, filters."""

from __future__ import annotations

from typing import Any

import pytest

World = Any


def listed(world: World, **kwargs: Any) -> dict[str, dict[str, Any]]:
    infos = world.c.ssm.describe_instance_information(**kwargs)["InstanceInformationList"]
    return {info["InstanceId"]: info for info in infos}


def test_registration_needs_time_and_the_ssm_role(world: World) -> None:
    (managed,) = world.launch(policies=[world.SSM_POLICY])
    (without_policy,) = world.launch(policies=[world.CIS_POLICY])
    (without_profile,) = world.launch(policies=None)
    assert listed(world) == {}
    world.aws.advance(1)
    infos = listed(world)
    assert set(infos) == {managed}
    info = infos[managed]
    assert (info["PingStatus"], info["ResourceType"], info["PlatformType"]) == (
        "Online",
        "EC2Instance",
        "Linux",
    )
    assert (info["PlatformName"], info["PlatformVersion"]) == ("Amazon Linux", "2023")
    assert info["IamRole"].startswith("cis-test-")
    assert info["ComputerName"].endswith(".ec2.internal")


def test_stopped_nodes_lose_connection_and_terminated_ones_disappear(world: World) -> None:
    running, stopped, terminated = world.launch(count=3)
    world.aws.advance(2)
    world.c.ec2.stop_instances(InstanceIds=[stopped])
    world.c.ec2.terminate_instances(InstanceIds=[terminated])
    infos = listed(world)
    assert {i: info["PingStatus"] for i, info in infos.items()} == {
        running: "Online",
        stopped: "ConnectionLost",
    }


def test_filters(world: World) -> None:
    a = world.launch(tags={"team": "cis", "env": "ci"})[0]
    b = world.launch(tags={"team": "ops"})[0]
    world.aws.advance(2)
    world.c.ec2.stop_instances(InstanceIds=[b])
    assert set(listed(world, Filters=[{"Key": "InstanceIds", "Values": [b]}])) == {b}
    assert set(listed(world, Filters=[{"Key": "PingStatus", "Values": ["Online"]}])) == {a}
    assert set(listed(world, Filters=[{"Key": "tag:team", "Values": ["ops", "cis"]}])) == {a, b}
    assert set(listed(world, Filters=[{"Key": "tag-key", "Values": ["env"]}])) == {a}
    assert (
        set(
            listed(
                world,
                Filters=[
                    {"Key": "tag:team", "Values": ["cis"]},
                    {"Key": "PingStatus", "Values": ["ConnectionLost"]},
                ],
            )
        )
        == set()
    )
    legacy = [
        {"key": "InstanceIds", "valueSet": [a, b]},
        {"key": "PingStatus", "valueSet": ["ConnectionLost"]},
    ]
    assert set(listed(world, InstanceInformationFilterList=legacy)) == {b}


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"Filters": [{"Key": "Colour", "Values": ["red"]}]}, "InvalidFilterKey"),
        (
            {"Filters": [{"Key": "PingStatus", "Values": ["Sleeping"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        (
            {"InstanceInformationFilterList": [{"key": "PlatformTypes", "valueSet": ["Amiga"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        (
            {
                "InstanceInformationFilterList": [{"key": "PingStatus", "valueSet": ["Online"]}],
                "Filters": [{"Key": "PingStatus", "Values": ["Online"]}],
            },
            "ValidationException",
        ),
        (
            {"InstanceInformationFilterList": [{"key": "Colour", "valueSet": ["red"]}]},
            "ValidationException",
        ),
    ],
)
def test_bad_filters(world: World, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(world.c.ssm.exceptions.ClientError) as caught:
        world.c.ssm.describe_instance_information(**kwargs)
    assert caught.value.response["Error"]["Code"] == code
