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


def test_stopped_and_terminated_nodes_are_not_listed(world: World) -> None:
    """ "This operation does not return information for nodes that are either Stopped or
    Terminated" (DescribeInstanceInformation)."""
    running, stopped, terminated = world.launch(count=3)
    world.aws.advance(2)
    world.c.ec2.stop_instances(InstanceIds=[stopped])
    world.c.ec2.terminate_instances(InstanceIds=[terminated])
    assert {i: info["PingStatus"] for i, info in listed(world).items()} == {running: "Online"}
    by_id = listed(world, Filters=[{"Key": "InstanceIds", "Values": [stopped, terminated]}])
    assert by_id == {}  # own instances: no error, just not listed


def test_filters(world: World) -> None:
    a = world.launch(tags={"team": "cis", "env": "ci"})[0]
    b = world.launch(tags={"team": "ops"})[0]
    world.aws.advance(2)
    assert set(listed(world, Filters=[{"Key": "InstanceIds", "Values": [b]}])) == {b}
    assert set(listed(world, Filters=[{"Key": "PingStatus", "Values": ["Online"]}])) == {a, b}
    assert set(listed(world, Filters=[{"Key": "tag:team", "Values": ["ops", "cis"]}])) == {a, b}
    assert set(listed(world, Filters=[{"Key": "tag-key", "Values": ["env"]}])) == {a}
    two_tags = [
        {"Key": "tag:team", "Values": ["cis", "ops"]},
        {"Key": "tag-key", "Values": ["env"]},
    ]
    assert set(listed(world, Filters=two_tags)) == {a}
    assert set(listed(world, Filters=[{"Key": "SourceIds", "Values": [a]}])) == {a}
    source_types = [{"Key": "SourceTypes", "Values": ["AWS::EC2::Instance"]}]
    assert set(listed(world, Filters=source_types)) == {a, b}
    other_type = [{"Key": "SourceTypes", "Values": ["AWS::IoT::Thing"]}]
    assert listed(world, Filters=other_type) == {}
    legacy = [
        {"key": "InstanceIds", "valueSet": [a, b]},
        {"key": "PingStatus", "valueSet": ["ConnectionLost"]},
    ]
    assert set(listed(world, InstanceInformationFilterList=legacy)) == set()
    legacy[1]["valueSet"] = ["Online"]
    assert set(listed(world, InstanceInformationFilterList=legacy)) == {a, b}


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        ([{"Key": "InstanceIds", "Values": ["i-00000000000000000"]}], "InvalidInstanceId"),
        ([{"Key": "InstanceIds", "Values": ["not-an-id"]}], "InvalidInstanceId"),
        (
            [{"Key": "tag:team", "Values": ["cis"]}, {"Key": "PingStatus", "Values": ["Online"]}],
            "InvalidFilterKey",
        ),
        ([{"Key": "SourceTypes", "Values": ["AWS::EC2::Volume"]}],
         "InvalidInstanceInformationFilterValue"),
        ([{"Key": "AssociationStatus", "Values": ["Done"]}],
         "InvalidInstanceInformationFilterValue"),
    ],
    ids=["unknown-id", "malformed-id", "tag-with-other", "source-type", "association-status"],
)  # fmt: skip
def test_documented_errors(world: World, filters: list[dict[str, Any]], code: str) -> None:
    world.launch(tags={"team": "cis"})
    world.aws.advance(2)
    with pytest.raises(world.c.ssm.exceptions.ClientError) as caught:
        world.c.ssm.describe_instance_information(Filters=filters)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["Error"]["Message"]


def test_invalid_instance_id_through_the_legacy_list(world: World) -> None:
    legacy = [{"key": "InstanceIds", "valueSet": ["i-0123456789abcdef0"]}]
    with pytest.raises(world.c.ssm.exceptions.InvalidInstanceId):
        world.c.ssm.describe_instance_information(InstanceInformationFilterList=legacy)


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
