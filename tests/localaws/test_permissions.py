"""SSM registration and CIS access are decided by the actions a role's policies grant (iam_eval),
whatever policy grants them; and CIS scans need Inspector EC2 scanning activated."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.iam_eval import CIS_SESSION_ACTIONS, SSM_CORE_ACTIONS

World = Any  # the ``world`` fixture (tests/localaws/conftest.py)


def _allow(*actions: str, **extra: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*", **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def _deny(*actions: str) -> dict[str, Any]:
    statement = {"Effect": "Deny", "Action": list(actions), "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [statement]}


def _online(world: World, instance: str) -> bool:
    infos = world.c.ssm.describe_instance_information()["InstanceInformationList"]
    return instance in {i["InstanceId"] for i in infos}


def _target(world: World, instance: str) -> tuple[str, str | None, int]:
    target = world.targets(world.scan())[instance]
    counts = sum(target["statusCounts"].values())
    return target["targetStatus"], target.get("targetStatusReason"), counts


PROFILES: list[tuple[str, dict[str, Any], bool, bool]] = [
    ("inline, exact actions", {"inline": [_allow(*SSM_CORE_ACTIONS, *CIS_SESSION_ACTIONS)]},
     True, True),
    ("customer managed, wildcards", {"managed": [_allow(
        "ssm:UpdateInstanceInformation", "ssmmessages:*", "ec2messages:*", "inspector2:*Cis*"
    )]}, True, True),
    ("inline CIS + AWS managed SSM", {"inline": [_allow("inspector2:*CisSession*")],
     "aws_managed": ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]}, True, True),
    ("admin", {"inline": [_allow("*")]}, True, True),
    ("SSM only (the real trap)", {"managed": [_allow("ssm:*", "ssmmessages:*", "ec2messages:*")]},
     True, False),
    ("CIS actions denied", {"inline": [_allow("*"), _deny("inspector2:StopCisSession")]},
     True, False),
    ("SSM registration denied", {"inline": [_allow("*"), _deny("ssm:UpdateInstanceInformation")]},
     False, True),
    ("three of four CIS actions", {"inline": [_allow(*SSM_CORE_ACTIONS, *CIS_SESSION_ACTIONS[:3])]},
     True, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "policies", "registers", "scans"), PROFILES, ids=[p[0] for p in PROFILES]
)
def test_granted_actions_decide_registration_and_cis_access(
    world: World, name: str, policies: dict[str, Any], registers: bool, scans: bool
) -> None:
    (instance,) = world.launch(profile=world.custom_profile(**policies))
    world.aws.advance(2)
    assert _online(world, instance) is registers
    status, reason, checks = _target(world, instance)
    if not registers:
        assert (status, reason, checks) == ("COMPLETED", "SSM_UNMANAGED", 0)
    elif scans:
        assert (status, reason, checks > 200) == ("COMPLETED", None, True)
    else:
        assert (status, reason, checks) == ("TIMED_OUT", None, 0)


def test_cis_scans_need_ec2_scanning_activated(world: World) -> None:
    (instance,) = world.launch()
    world.aws.advance(2)
    config = world.create(activate=False)  # Inspector was never enabled in this account
    world.aws.advance(10)
    (scan,) = world.scans(config)
    assert (scan["status"], scan["totalChecks"]) == ("COMPLETED", 0)
    target = world.targets(scan["scanArn"])[instance]
    assert (target["targetStatus"], sum(target["statusCounts"].values())) == ("TIMED_OUT", 0)


def test_enabling_ec2_scanning_through_the_api_is_enough(world: World) -> None:
    (instance,) = world.launch()
    world.c.inspector.enable(resourceTypes=["EC2"])
    world.aws.advance(2)  # past the activation delay and SSM registration
    config = world.create(activate=False)
    world.aws.advance(10)
    target = world.targets(world.scans(config)[0]["scanArn"])[instance]
    assert target["targetStatus"] == "COMPLETED" and target["statusCounts"]["passed"] > 0


def test_an_unreported_target_can_stay_in_progress_for_good(world: World) -> None:
    """Users report both outcomes of a role without the CIS actions; the scenario picks one."""
    world.aws.load_scenario({"scan": {"unreported_target": "SCAN_IN_PROGRESS"}})
    (instance,) = world.launch(policies=[world.SSM_POLICY])
    scan_arn = world.scan()
    world.aws.advance(3600)
    (scan,) = world.c.inspector.list_cis_scans()["scans"]
    target = world.targets(scan_arn)[instance]
    assert (scan["status"], scan["totalChecks"]) == ("COMPLETED", 0)
    assert "targetStatus" not in target
    assert target["targetStatusReason"] == "SCAN_IN_PROGRESS"
