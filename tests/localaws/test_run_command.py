"""SSM Run Command (AWS-RunShellScript) and the node probe's answer, through boto3."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline import node
from pipeline.localaws import run_command

World = Any
PROBE = "#!/bin/bash\n# node-probe\nprintf 'NODE-PROBE|1|%s\\n' 14\n"


def managed(world: World, ami: str | None = None, count: int = 1) -> list[str]:
    """Running instances that are Online managed nodes (past the SSM registration delay)."""
    ids: list[str] = world.launch(ami=ami, policies=[world.SSM_POLICY], count=count)
    world.aws.advance(2)
    return ids


def send(world: World, ids: list[str], script: str = PROBE, **kwargs: Any) -> str:
    response = world.c.ssm.send_command(
        InstanceIds=ids,
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": [script], **kwargs.pop("parameters", {})},
        **kwargs,
    )
    return str(response["Command"]["CommandId"])


def invocation(world: World, command_id: str, instance_id: str) -> dict[str, Any]:
    result: dict[str, Any] = world.c.ssm.get_command_invocation(
        CommandId=command_id, InstanceId=instance_id
    )
    return result


def code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def judged(world: World, instance_id: str, response: dict[str, Any]) -> node.NodeVerdict:
    document = {"invocations": {instance_id: response}, "probe": {"sha256": "0" * 64}}
    return node.evaluate(document, [instance_id])


@pytest.mark.parametrize("kind", ["stock", "hardened"])
def test_the_probe_passes_on_stock_and_hardened_images(world: World, kind: str) -> None:
    ami = None if kind == "stock" else world.hardened(world.Platform.AMAZON_LINUX_2023)
    (instance,) = managed(world, ami)
    command_id = send(world, [instance], TimeoutSeconds=600, Comment="node probe")
    with pytest.raises(ClientError) as caught:  # "normal for a moment" after SendCommand
        invocation(world, command_id, instance)
    assert code(caught) == "InvocationDoesNotExist"
    world.aws.advance(0.5)
    pending = invocation(world, command_id, instance)
    assert (pending["Status"], pending["ResponseCode"]) == ("Pending", -1)
    assert "ExecutionStartDateTime" not in pending
    world.aws.advance(0.5)
    running = invocation(world, command_id, instance)
    assert (running["Status"], running["StatusDetails"]) == ("InProgress", "InProgress")
    assert running["StandardOutputContent"] == ""
    world.aws.advance(3)
    done = invocation(world, command_id, instance)
    assert (done["Status"], done["StatusDetails"]) == ("Success", "Success")
    assert done["ResponseCode"] == 0
    assert (done["PluginName"], done["Comment"]) == ("aws:runShellScript", "node probe")
    assert done["ExecutionEndDateTime"].endswith("Z")
    lines = done["StandardOutputContent"].splitlines()
    assert lines[0] == node.header(len(node.load_catalogue().checks))
    assert lines[-1] == node.trailer(len(node.load_catalogue().checks))
    verdict = judged(world, instance, done)
    assert verdict.verdict.name == "PASS", verdict.errors
    assert len(verdict.passed) == len(node.load_catalogue().checks)


def test_any_other_script_succeeds_with_empty_output(world: World) -> None:
    (instance,) = managed(world)
    command_id = send(world, [instance], "uname -r")
    world.aws.advance(10)
    done = invocation(world, command_id, instance)
    assert (done["Status"], done["StandardOutputContent"], done["StandardErrorContent"]) == (
        "Success",
        "",
        "",
    )


def test_errors(world: World) -> None:
    (instance,) = managed(world)
    (no_ssm_role,) = world.launch(policies=[world.CIS_POLICY])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"InstanceIds": [no_ssm_role]}, "InvalidInstanceId"),
        ({"InstanceIds": ["i-00000000000000000"]}, "InvalidInstanceId"),
        ({"InstanceIds": [instance, instance]}, "DuplicateInstanceId"),
        ({"DocumentName": "AWS-RunPowerShellScript"}, "InvalidDocument"),
        ({"Parameters": {"commands": []}}, "InvalidParameters"),
        ({"Parameters": {"commands": ["id"], "shell": ["zsh"]}}, "InvalidParameters"),
        ({"Parameters": {"commands": ["id"], "executionTimeout": ["0"]}}, "InvalidParameters"),
        ({"Parameters": {"commands": ["id"], "executionTimeout": ["172801"]}}, "InvalidParameters"),
    ]
    for overrides, expected in cases:
        kwargs = {
            "InstanceIds": [instance],
            "DocumentName": "AWS-RunShellScript",
            "Parameters": {"commands": ["id"]},
            **overrides,
        }
        with pytest.raises(ClientError) as caught:
            world.c.ssm.send_command(**kwargs)
        assert code(caught) == expected, overrides
    command_id = send(world, [instance])
    world.aws.advance(5)
    for command, target, expected in [
        (command_id, no_ssm_role, "InvocationDoesNotExist"),
        ("00000000-0000-4000-8000-000000000000", instance, "InvocationDoesNotExist"),
        ("x" * 36, instance, "InvalidCommandId"),
    ]:
        with pytest.raises(ClientError) as caught:
            invocation(world, command, target)
        assert code(caught) == expected


def test_a_node_not_yet_registered_is_no_target(world: World) -> None:
    (instance,) = world.launch(policies=[world.SSM_POLICY])
    with pytest.raises(ClientError) as caught:
        send(world, [instance])
    assert code(caught) == "InvalidInstanceId"
    assert "not in a valid state" in str(caught.value)


def test_the_request_is_validated_against_the_model(shared: World) -> None:
    with pytest.raises(ClientError) as caught:
        shared.c.ssm.get_command_invocation(CommandId="0" * 36, InstanceId="not-an-instance")
    assert code(caught) == "ValidationException"


SCENARIO_FAIL = {
    "node": {
        "fail": {"node.sysctl.ip_forward": "net.ipv4.ip_forward=0 (want 1)"},
        "drop_lines": ["node.time.sync"],
    }
}


def test_knobs_fail_and_drop_checks(world: World) -> None:
    world.aws.load_scenario(SCENARIO_FAIL)
    (instance,) = managed(world)
    command_id = send(world, [instance])
    world.aws.advance(5)
    done = invocation(world, command_id, instance)
    out = done["StandardOutputContent"]
    assert "NODE|node.sysctl.ip_forward|FAIL|net.ipv4.ip_forward=0 (want 1)" in out.splitlines()
    assert "node.time.sync" not in out
    total = len(node.load_catalogue().checks)
    assert out.splitlines()[-1] == node.trailer(total - 1)  # consistent: one line not printed
    verdict = judged(world, instance, done)
    assert verdict.verdict.name == "FAIL"
    assert {r.check_id for r in verdict.failed} == {"node.sysctl.ip_forward", "node.time.sync"}


@pytest.mark.parametrize(
    "section",
    [{"drop_trailer": True}, {"miscount_trailer": True}, {"padding": 30_000}],
    ids=["no-trailer", "miscounted", "cut"],
)
def test_a_lying_or_cut_probe_is_an_error(world: World, section: dict[str, Any]) -> None:
    world.aws.load_scenario({"node": section})
    (instance,) = managed(world)
    command_id = send(world, [instance])
    world.aws.advance(5)
    done = invocation(world, command_id, instance)
    out = done["StandardOutputContent"]
    if "padding" in section:
        assert len(out) == run_command.node_probe.STDOUT_LIMIT  # cut as SSM cuts it
        assert not out.rstrip("\n").endswith(node.trailer(14))
    assert judged(world, instance, done).verdict.name == "ERROR"


@pytest.mark.parametrize(
    ("command", "params", "steps", "final"),
    [
        ({"outcome": "Failed", "exit_code": 2}, {}, [(2, "InProgress")], ("Failed", "Failed", 2)),
        (
            {"outcome": "TimedOut"},
            {"parameters": {"executionTimeout": ["60"]}},
            [(30, "InProgress")],
            ("TimedOut", "ExecutionTimedOut", -1),
        ),
        (
            {"duration_s": 120},
            {"parameters": {"executionTimeout": ["60"]}},
            [(30, "InProgress")],
            ("TimedOut", "ExecutionTimedOut", -1),
        ),
        (
            {"outcome": "Undeliverable", "duration_s": 10},
            {},
            [(5, "Pending")],
            ("Failed", "Undeliverable", -1),
        ),
        (
            {"outcome": "DeliveryTimedOut"},
            {"TimeoutSeconds": 60},
            [(30, "Delayed")],
            ("TimedOut", "DeliveryTimedOut", -1),
        ),
    ],
    ids=["failed", "hangs", "too-slow", "undeliverable", "delivery-timeout"],
)
def test_outcomes_over_time(
    world: World,
    command: dict[str, Any],
    params: dict[str, Any],
    steps: list[tuple[float, str]],
    final: tuple[str, str, int],
) -> None:
    world.aws.load_scenario({"node": {"command": command}})
    (instance,) = managed(world)
    command_id = send(world, [instance], **params)
    for seconds, status in steps:
        world.aws.advance(seconds)
        assert invocation(world, command_id, instance)["Status"] == status
    world.aws.advance(200)
    done = invocation(world, command_id, instance)
    assert (done["Status"], done["StatusDetails"], done["ResponseCode"]) == final
    assert done["StandardOutputContent"] == ""
    if final[0] == "Failed" and final[1] == "Failed":
        assert "exit status 2" in done["StandardErrorContent"]
    assert judged(world, instance, done).verdict.name == "ERROR"


def test_list_command_invocations_details_filters_and_pages(world: World) -> None:
    world.aws.load_scenario({"node": {"padding": 5_000}})
    first, second = managed(world, count=2)
    command_id = send(world, [first, second])
    assert world.c.ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"] == []
    world.aws.advance(1)
    listed = world.c.ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert {i["InstanceId"] for i in listed} == {first, second}
    assert all(i["CommandPlugins"] == [] for i in listed)
    world.aws.advance(5)
    pages = world.c.ssm.get_paginator("list_command_invocations").paginate(
        CommandId=command_id, Details=True, PaginationConfig={"PageSize": 1}
    )
    seen = [i for page in pages for i in page["CommandInvocations"]]
    assert sorted(i["InstanceId"] for i in seen) == sorted([first, second])
    plugin = seen[0]["CommandPlugins"][0]
    assert (plugin["Name"], plugin["Status"], plugin["ResponseCode"]) == (
        "aws:runShellScript",
        "Success",
        0,
    )
    assert len(plugin["Output"]) == run_command.node_probe.PLUGIN_OUTPUT_LIMIT
    one = world.c.ssm.list_command_invocations(CommandId=command_id, InstanceId=first)
    assert [i["InstanceId"] for i in one["CommandInvocations"]] == [first]
    success = [{"key": "Status", "value": "Success"}]
    assert len(world.c.ssm.list_command_invocations(Filters=success)["CommandInvocations"]) == 2
    running = [{"key": "ExecutionStage", "value": "Executing"}]
    assert world.c.ssm.list_command_invocations(Filters=running)["CommandInvocations"] == []


def test_cancel(world: World) -> None:
    world.aws.load_scenario({"node": {"command": {"duration_s": 100}}})
    (instance,) = managed(world)
    command_id = send(world, [instance])
    world.aws.advance(2)
    world.c.ssm.cancel_command(CommandId=command_id)
    assert invocation(world, command_id, instance)["Status"] == "Cancelling"
    world.aws.advance(1)
    assert invocation(world, command_id, instance)["Status"] == "Cancelled"
    with pytest.raises(ClientError) as caught:
        world.c.ssm.cancel_command(CommandId="00000000-0000-4000-8000-000000000000")
    assert code(caught) == "InvalidCommandId"


def test_a_response_that_breaks_the_model_is_a_500(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server checks every response against botocore's output shape: a wrong date format
    (the model's StringDateTime pattern) would be a local AWS bug, never sent."""
    (instance,) = managed(world)
    command_id = send(world, [instance])
    world.aws.advance(5)
    monkeypatch.setattr(run_command, "_iso", lambda at: "2026-12-04 07:40:00.123")
    with pytest.raises(ClientError) as caught:
        invocation(world, command_id, instance)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "breaks the model" in str(caught.value)


def test_the_invocation_appears_after_the_scripted_moment(world: World) -> None:
    world.aws.load_scenario({"node": {"command": {"visible_after_s": 5}}})
    (instance,) = managed(world)
    command_id = send(world, [instance])
    world.aws.advance(4.9)
    with pytest.raises(ClientError) as caught:
        invocation(world, command_id, instance)
    assert code(caught) == "InvocationDoesNotExist"
    world.aws.advance(0.1)
    assert invocation(world, command_id, instance)["Status"] == "Pending"
