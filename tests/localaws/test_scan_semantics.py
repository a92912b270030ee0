"""Scan semantics as the real service behaves: targets, SSM_UNMANAGED, UNSUPPORTED_OS, the silent
zero-check traps (no CIS actions, conflicting configurations), progress and completion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.catalog import Platform

World = Any  # the ``world`` fixture (tests/localaws/conftest.py)


def test_one_time_configuration_starts_a_scan_that_completes_after_its_duration(
    world: World,
) -> None:
    (instance,) = world.launch()
    world.aws.advance(2)
    config = world.create()
    (scan,) = world.scans(config)
    assert scan["status"] == "IN_PROGRESS"
    assert scan["scanArn"].startswith(config.rsplit(":", 1)[0])
    assert "/cis-scan/" in scan["scanArn"]
    assert scan["targets"]["accountIds"] == [world.aws.account_id]  # SELF comes back literal
    assert world.targets(scan["scanArn"])[instance]["targetStatusReason"] == "SCAN_IN_PROGRESS"
    assert world.details(scan["scanArn"], instance) == []

    world.aws.advance(2.9)
    assert world.scans(config)[0]["status"] == "IN_PROGRESS"
    world.aws.advance(0.2)
    (done,) = world.scans(config)
    assert done["status"] == "COMPLETED"
    assert done["totalChecks"] > 200
    target = world.targets(done["scanArn"])[instance]
    assert target["targetStatus"] == "COMPLETED"
    assert "targetStatusReason" not in target
    counts = target["statusCounts"]
    assert counts["failed"] + counts["passed"] + counts["skipped"] == done["totalChecks"]
    assert counts["failed"] == done["failedChecks"]


RECURRING = [
    {"daily": {"startTime": {"timeOfDay": "03:00", "timezone": "UTC"}}},
    {"weekly": {"startTime": {"timeOfDay": "3:30", "timezone": "UTC"}, "days": ["MON", "FRI"]}},
    {"monthly": {"startTime": {"timeOfDay": "23:59", "timezone": "UTC"}, "day": "SUN"}},
]


def test_recurring_schedules_are_stored_but_start_no_scan(world: World) -> None:
    world.launch()
    for index, schedule in enumerate(RECURRING):
        assert world.scans(world.create({"n": [str(index)]}, schedule=schedule)) == []
    listed = world.c.inspector.list_cis_scan_configurations(sortBy="SCAN_NAME")[
        "scanConfigurations"
    ]
    assert sorted(json.dumps(c["schedule"], sort_keys=True) for c in listed) == sorted(
        json.dumps(s, sort_keys=True) for s in RECURRING
    )
    assert world.c.inspector.list_cis_scans()["scans"] == []


def test_instance_not_registered_with_ssm_ends_ssm_unmanaged(world: World) -> None:
    managed = world.launch(tags={"cis-scan": "run-1", "n": "1"})[0]
    unmanaged = world.launch(tags={"cis-scan": "run-1", "n": "2"}, policies=[])[0]
    no_profile = world.launch(tags={"cis-scan": "run-1", "n": "3"}, policies=None)[0]
    targets = world.targets(world.scan())
    assert "targetStatusReason" not in targets[managed]
    for instance in (unmanaged, no_profile):
        assert targets[instance]["targetStatus"] == "COMPLETED"
        assert targets[instance]["targetStatusReason"] == "SSM_UNMANAGED"
        assert targets[instance]["statusCounts"] == {"failed": 0, "skipped": 0, "passed": 0}


def test_scan_started_before_registration_finds_the_instance_unmanaged(world: World) -> None:
    (instance,) = world.launch()
    (scan,) = world.scans(world.create())  # no time has passed: the agent has not registered yet
    world.aws.advance(10)
    assert world.targets(scan["scanArn"])[instance]["targetStatusReason"] == "SSM_UNMANAGED"


def test_ami_of_unknown_platform_ends_unsupported_os(world: World) -> None:
    moto_builtin = (
        "ami-ekslinux"  # one of moto's own images: no cis-ami tags, not a seeded base AMI
    )
    (instance,) = world.launch(ami=moto_builtin)
    untagged_build = world.ami({"Name": "no platform tag"}, base=moto_builtin)
    (built,) = world.launch(ami=untagged_build, tags={"cis-scan": "run-1", "n": "2"})
    bad_tag = world.ami({"cis-ami:platform": "BOTTLEROCKET"})
    (bottlerocket,) = world.launch(ami=bad_tag, tags={"cis-scan": "run-1", "n": "3"})
    targets = world.targets(world.scan())
    for target in (instance, built, bottlerocket):
        assert targets[target]["targetStatusReason"] == "UNSUPPORTED_OS"
        assert targets[target]["statusCounts"]["passed"] == 0


def test_role_without_the_cis_actions_leaves_the_target_timed_out_with_zero_checks(
    world: World,
) -> None:
    (instance,) = world.launch(policies=[world.SSM_POLICY])
    scan_arn = world.scan()
    (scan,) = world.c.inspector.list_cis_scans()["scans"]
    assert (scan["status"], scan["totalChecks"], scan["failedChecks"]) == ("COMPLETED", 0, 0)
    target = world.targets(scan_arn)[instance]
    assert target["targetStatus"] == "TIMED_OUT"  # as users report; the scan still COMPLETED
    assert "targetStatusReason" not in target  # silent: nothing says why
    assert target["statusCounts"] == {"failed": 0, "skipped": 0, "passed": 0}
    assert world.details(scan_arn, instance) == []


def test_instance_targeted_by_two_configurations_gets_zero_checks(world: World) -> None:
    (instance,) = world.launch(tags={"cis-scan": "run-1", "team": "cis"})
    world.aws.advance(2)
    daily = {"daily": {"startTime": {"timeOfDay": "01:00", "timezone": "UTC"}}}
    world.create({"team": ["cis"]}, schedule=daily)  # another configuration targeting it
    config = world.create()
    world.aws.advance(10)
    (scan,) = world.scans(config)
    assert (scan["status"], scan["totalChecks"], scan["failedChecks"]) == ("COMPLETED", 0, 0)
    target = world.targets(scan["scanArn"])[instance]
    assert target["targetStatus"] == "COMPLETED"
    assert "targetStatusReason" not in target
    assert target["statusCounts"] == {"failed": 0, "skipped": 0, "passed": 0}


def test_deleting_the_stale_configuration_resolves_the_conflict(world: World) -> None:
    world.launch()
    stale = world.create()
    world.aws.advance(10)
    world.c.inspector.delete_cis_scan_configuration(scanConfigurationArn=stale)
    scan_arn = world.scan()
    (scan,) = [s for s in world.c.inspector.list_cis_scans()["scans"] if s["scanArn"] == scan_arn]
    assert scan["totalChecks"] > 0


# Target tag rules: AND across keys, OR across the values of one key, case-sensitive.
WANTED = {"env": ["ci", "dev"], "team": ["cis"]}
TAG_CASES = [
    ("same key and value", {"env": "ci", "team": "cis"}, True),
    ("another value of the same key", {"env": "dev", "team": "cis"}, True),
    ("extra tags do not matter", {"env": "ci", "team": "cis", "Name": "node"}, True),
    ("value not listed", {"env": "prod", "team": "cis"}, False),
    ("one key missing", {"env": "ci"}, False),
    ("one key's value wrong", {"env": "ci", "team": "ops"}, False),
    ("key case differs", {"Env": "ci", "team": "cis"}, False),
    ("value case differs", {"env": "CI", "team": "cis"}, False),
    ("untagged for the scan", {"Name": "other"}, False),
]


def test_target_resource_tags_and_across_keys_or_across_values_case_sensitive(world: World) -> None:
    launched = {name: world.launch(tags=tags)[0] for name, tags, _ in TAG_CASES}
    targets = world.targets(world.scan(WANTED))
    got = {name: launched[name] in targets for name, _, _ in TAG_CASES}
    assert got == {name: expected for name, _, expected in TAG_CASES}
    shown = targets[launched["extra tags do not matter"]]["targetResourceTags"]
    assert shown == {"env": ["ci"], "team": ["cis"]}  # the configuration's keys, with its values


def test_only_running_instances_are_targets(world: World) -> None:
    running, stopped, terminated = world.launch(count=3)
    world.c.ec2.stop_instances(InstanceIds=[stopped])
    world.c.ec2.terminate_instances(InstanceIds=[terminated])
    assert set(world.targets(world.scan())) == {running}


def test_update_changes_the_configuration_and_unknown_arns_are_not_found(world: World) -> None:
    config = world.create(
        schedule={"daily": {"startTime": {"timeOfDay": "01:00", "timezone": "UTC"}}}
    )
    world.c.inspector.update_cis_scan_configuration(
        scanConfigurationArn=config,
        scanName="renamed",
        securityLevel="LEVEL_1",
        targets={"targetResourceTags": {"a": ["b"]}},
    )
    (item,) = world.c.inspector.list_cis_scan_configurations()["scanConfigurations"]
    assert (item["scanName"], item["securityLevel"], item["targets"]["targetResourceTags"]) == (
        "renamed",
        "LEVEL_1",
        {"a": ["b"]},
    )
    world.c.inspector.delete_cis_scan_configuration(scanConfigurationArn=config)
    errors = world.c.inspector.exceptions
    with pytest.raises(errors.ResourceNotFoundException):
        world.c.inspector.delete_cis_scan_configuration(scanConfigurationArn=config)
    with pytest.raises(errors.ResourceNotFoundException):
        world.c.inspector.update_cis_scan_configuration(scanConfigurationArn=config, scanName="x")


def test_level_1_scan_evaluates_level_1_only_and_level_2_includes_it(world: World) -> None:
    (instance,) = world.launch(ami=world.hardened(Platform.AMAZON_LINUX_2023, 2))
    level1 = world.scan(level="LEVEL_1")
    world.c.inspector.delete_cis_scan_configuration(
        scanConfigurationArn=world.c.inspector.list_cis_scan_configurations()["scanConfigurations"][
            0
        ]["scanConfigurationArn"]
    )
    level2 = world.scan(level="LEVEL_2")
    rows1 = world.details(level1, instance)
    rows2 = world.details(level2, instance)
    assert {r["level"] for r in rows1} == {"LEVEL_1"}
    assert {r["level"] for r in rows2} == {"LEVEL_1", "LEVEL_2"}
    assert {r["checkId"] for r in rows1} < {r["checkId"] for r in rows2}


def test_hardened_profile_passes_what_the_manifest_remediates(world: World) -> None:
    states = {
        "1.1.1.1": "excepted",
        "1.1.2.1": "base",
        "1.1.2.2": "not_applicable",
        "1.1.2.3": "gap",
    }
    world.aws.use_manifests(lambda platform: world.manifest(platform, states))
    hardened = world.launch(
        ami=world.hardened(Platform.AMAZON_LINUX_2023, 2), tags={"cis-scan": "run-1", "n": "1"}
    )[0]
    stock = world.launch(tags={"cis-scan": "run-1", "n": "2"})[0]
    scan_arn = world.scan()
    got = world.outcome(scan_arn, hardened)
    assert {"1.1.1.1", "1.1.2.3"} <= got["FAILED"]
    assert {"1.1.2.1", "1.1.2.2"} <= got["PASSED"]
    assert got["FAILED"] == {"1.1.1.1", "1.1.2.3"}
    stock_got = world.outcome(scan_arn, stock)
    assert stock_got["PASSED"] == {"1.1.2.1", "1.1.2.2"}
    (row,) = [r for r in world.details(scan_arn, hardened) if r["checkId"] == "1.1.2.2"]
    assert row["statusReason"].startswith("Not applicable")
