"""pipeline.aws.iam.describe_profile reads every policy of the role and reports missing ACTIONS;
validate refuses only a role that lacks some, and a custom-policy profile scans end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import iam, make_clients
from pipeline.errors import ConfigError
from pipeline.iam_eval import CIS_SESSION_ACTIONS, SCAN_ROLE_ACTIONS, SSM_CORE_ACTIONS
from pipeline.validate import Runtime, ValidateSettings, run_validate
from tests._dates import shifted_now

World = Any  # the ``world`` fixture (tests/localaws/conftest.py)
ROOT = Path(__file__).resolve().parents[2]
SSM = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
CIS = "arn:aws:iam::aws:policy/AmazonInspector2ManagedCisPolicy"


def _doc(effect: str, *actions: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": list(actions), "Resource": "*"}],
    }


CUSTOM = _doc("Allow", "ssm:UpdateInstanceInformation", "ssmmessages:*", "ec2messages:*")
CIS_ONLY = _doc("Allow", "inspector2:*CisSession*")

CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("AWS managed", {"aws_managed": [SSM, CIS]}, ()),
    ("inline", {"inline": [CUSTOM, CIS_ONLY]}, ()),
    ("customer managed", {"managed": [CUSTOM, CIS_ONLY]}, ()),
    ("mixed", {"managed": [CIS_ONLY], "aws_managed": [SSM]}, ()),
    ("SSM only", {"aws_managed": [SSM]}, CIS_SESSION_ACTIONS),
    ("CIS only, inline", {"inline": [CIS_ONLY]}, SSM_CORE_ACTIONS),
    ("denied inline", {"aws_managed": [SSM, CIS],
                       "inline": [_doc("Deny", "inspector2:SendCisSessionHealth")]},
     ("inspector2:SendCisSessionHealth",)),
    ("nothing", {}, SCAN_ROLE_ACTIONS),
]  # fmt: skip


@pytest.mark.parametrize(("name", "policies", "missing"), CASES, ids=[c[0] for c in CASES])
def test_describe_profile_reports_missing_actions(
    world: World, name: str, policies: dict[str, Any], missing: tuple[str, ...]
) -> None:
    profile_name = world.custom_profile(**policies)
    profile = iam.describe_profile(make_clients(), profile_name)
    assert profile.missing == missing
    assert profile.role == profile_name


def test_only_the_default_version_of_a_managed_policy_counts(world: World) -> None:
    name = world.custom_profile(managed=[_doc("Allow", *SCAN_ROLE_ACTIONS)], aws_managed=[SSM])
    (attached,) = [
        p
        for p in world.c.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        if "managed" in p["PolicyName"]
    ]
    world.c.iam.create_policy_version(
        PolicyArn=attached["PolicyArn"],
        PolicyDocument=json.dumps(_doc("Allow", "ec2:DescribeInstances")),
        SetAsDefault=True,
    )
    assert iam.describe_profile(make_clients(), name).missing == CIS_SESSION_ACTIONS


def test_profile_without_a_role_misses_everything(world: World) -> None:
    world.c.iam.create_instance_profile(InstanceProfileName="empty")
    profile = iam.describe_profile(make_clients(), "empty")
    assert (profile.role, profile.missing) == (None, SCAN_ROLE_ACTIONS)


def test_unknown_profile_is_a_config_error(world: World) -> None:
    with pytest.raises(ConfigError, match="--instance-profile nope: no such instance profile"):
        iam.describe_profile(make_clients(), "nope")


def _settings(tmp_path: Path, ami: str, profile: str) -> ValidateSettings:
    return ValidateSettings(
        amis=(ami,),
        out_dir=tmp_path / "out",
        policy_dir=ROOT / "policies/exceptions",
        enable_inspector=True,
        instance_profile=profile,
        local=True,
    )


def _runtime(world: World) -> Runtime:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        world.aws.advance(seconds)

    return Runtime(now=shifted_now, echo=lambda line: None, sleep=sleep, clock=lambda: clock[0])


def test_validate_refuses_a_role_lacking_cis_actions_naming_them(
    world: World, tmp_path: Path
) -> None:
    name = world.custom_profile(managed=[CUSTOM])
    ami = world.hardened(world.Platform.AMAZON_LINUX_2023)
    before = world.aws.count("RunInstances")
    with pytest.raises(ConfigError) as caught:
        run_validate(_settings(tmp_path, ami, name), make_clients(), _runtime(world))
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    assert message.startswith(f"--instance-profile {name}: role {name} does not grant ")
    for action in CIS_SESSION_ACTIONS:
        assert action in message
    assert "ssm:UpdateInstanceInformation" not in message
    assert world.aws.count("RunInstances") == before


def test_custom_policy_profile_scans_end_to_end(world: World, tmp_path: Path) -> None:
    """Inline and customer-managed policies only, no AWS managed one: a real, complete scan."""
    from pipeline.setup import SetupSettings, run_setup

    run_setup(SetupSettings(), make_clients(), echo=lambda line: None)  # the evidence store
    name = world.custom_profile(inline=[CIS_ONLY], managed=[CUSTOM])
    ami = world.hardened(world.Platform.AMAZON_LINUX_2023)
    verdict = run_validate(_settings(tmp_path, ami, name), make_clients(), _runtime(world))
    assert verdict.exit_code in (0, 3)  # a verdict on real rows, never "untrusted scan" (4)
    assert verdict.total > 200
    (scan,) = world.c.inspector.list_cis_scans()["scans"]
    assert scan["totalChecks"] > 200
    (target,) = world.targets(scan["scanArn"]).values()
    assert target["targetStatus"] == "COMPLETED" and "targetStatusReason" not in target
