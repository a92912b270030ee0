"""Inspector activation like the service: ENABLING, ENABLED after a delay; accountIds optional."""

from __future__ import annotations

from typing import Any

World = Any


def ec2_state(world: World) -> tuple[str, str]:
    (account,) = world.c.inspector.batch_get_account_status()["accounts"]
    return account["state"]["status"], account["resourceState"]["ec2"]["status"]


def test_enable_without_account_ids_goes_enabling_then_enabled(world: World) -> None:
    assert ec2_state(world) == ("DISABLED", "DISABLED")
    response = world.c.inspector.enable(resourceTypes=["EC2"])
    (account,) = response["accounts"]
    assert account["accountId"] == world.aws.account_id
    assert (
        account["status"],
        account["resourceStatus"]["ec2"],
        account["resourceStatus"]["ecr"],
    ) == (
        "ENABLING",
        "ENABLING",
        "DISABLED",
    )
    assert ec2_state(world) == ("ENABLING", "ENABLING")
    world.aws.advance(0.9)
    assert ec2_state(world) == ("ENABLING", "ENABLING")
    world.aws.advance(0.1)
    assert ec2_state(world) == ("ENABLED", "ENABLED")
    again = world.c.inspector.enable(resourceTypes=["EC2"])  # already enabled: stays enabled
    assert again["accounts"][0]["resourceStatus"]["ec2"] == "ENABLED"


def test_disable_goes_disabling_then_disabled(world: World) -> None:
    world.aws.load_scenario({"inspector": {"initially_enabled": True, "enable_after_s": 5}})
    assert ec2_state(world) == ("ENABLED", "ENABLED")
    world.c.inspector.disable(resourceTypes=["EC2"])
    assert ec2_state(world) == ("DISABLING", "DISABLING")
    world.aws.advance(5)
    assert ec2_state(world) == ("DISABLED", "DISABLED")


def test_other_accounts_are_failed_accounts(world: World) -> None:
    response = world.c.inspector.batch_get_account_status(
        accountIds=["111122223333", world.aws.account_id]
    )
    assert [a["accountId"] for a in response["accounts"]] == [world.aws.account_id]
    (failed,) = response["failedAccounts"]
    assert (failed["accountId"], failed["errorCode"]) == ("111122223333", "ACCESS_DENIED")
    only_other = world.c.inspector.enable(accountIds=["111122223333"], resourceTypes=["EC2"])
    assert only_other["accounts"] == [] and len(only_other["failedAccounts"]) == 1
    assert ec2_state(world) == ("DISABLED", "DISABLED")


def test_activation_is_regional(world: World) -> None:
    world.c.inspector.enable(resourceTypes=["EC2"])
    west = world.client(world.aws.endpoint, "inspector2", region="us-west-2")
    (account,) = west.batch_get_account_status()["accounts"]
    assert account["resourceState"]["ec2"]["status"] == "DISABLED"
