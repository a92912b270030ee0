"""Fails loudly when a moto upgrade moves an internal the emulation relies on.

The emulation reads and writes moto's in-process state (pipeline/localaws/moto_state.py is the
only module that does). If this test fails, moto changed: update moto_state.py (and the pin of
moto in pyproject.toml) before anything else.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import moto

from pipeline.catalog import Platform
from pipeline.localaws import moto_state

World = Any
PINNED = "5.2.5"


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == PINNED, (
        f"moto {moto.__version__} installed, the local AWS is built against {PINNED}: "
        "run tests/localaws/test_moto_internals.py and review pipeline/localaws/moto_state.py"
    )


def test_every_moto_internal_used_is_still_there() -> None:
    problems = moto_state.self_check()
    assert problems == [], "moto internals changed:\n  " + "\n  ".join(problems)


def test_the_views_read_what_the_api_wrote(world: World) -> None:
    ami = world.hardened(Platform.AMAZON_LINUX_2, 1)
    (instance,) = world.launch(ami=ami, tags={"cis-scan": "run-1", "team": "cis"})
    account = world.aws.account_id
    (view,) = [v for v in moto_state.instances(account, "us-east-1") if v.instance_id == instance]
    assert (view.state, view.image_id, view.tags) == (
        "running",
        ami,
        {"cis-scan": "run-1", "team": "cis"},
    )
    assert view.profile_arn and view.profile_arn.endswith(":instance-profile/" + world.profile())
    role = moto_state.profile_role(account, view.profile_arn)
    assert role is not None and role.policy_arns == {world.SSM_POLICY, world.CIS_POLICY}
    assert moto_state.image_tags(account, "us-east-1", ami) == {
        "cis-ami:platform": "AMAZON_LINUX_2",
        "cis-ami:hardening-level": "1",
    }
    assert moto_state.image_tags(account, "us-east-1", "ami-00000000000000000") is None


def test_instance_profile_goes_to_every_instance_of_a_launch(world: World) -> None:
    """moto gives RunInstances' IamInstanceProfile to the first instance only; AWS to all."""
    instances = world.launch(count=3)
    world.aws.advance(2)
    infos = world.c.ssm.describe_instance_information()["InstanceInformationList"]
    assert sorted(i["InstanceId"] for i in infos) == sorted(instances)


def test_a_reset_lets_the_discarded_backends_go(world: World) -> None:
    """Nothing keeps a reset's discarded backends alive (two moto caches did: EC2's backend with
    its AMI catalogue stayed in memory, and in every GC pass, after each reset)."""
    world.launch()  # an instance: its subnet caches an IP iterator
    old = weakref.ref(moto_state.ec2(world.aws.account_id, "us-east-1"))
    world.aws.reset()
    gc.collect()
    assert old() is None, "the EC2 backend outlived the reset"
