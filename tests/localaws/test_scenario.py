"""Scenarios: strict validation (data-driven: cases/scenarios/) and what each key does to a scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ConfigError
from pipeline.localaws import scenario
from pipeline.localaws.scenario import Fault

World = Any
CASES = Path(__file__).parent / "cases" / "scenarios"
INVALID = sorted(CASES.glob("invalid/*.yaml"))


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_scenarios_name_file_and_json_path(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each line of ``<name>.errors.txt`` starts the matching problem line, in order."""
    monkeypatch.chdir(path.parent)
    with pytest.raises(ConfigError) as caught:
        scenario.load(path.name)
    expected = path.with_suffix(".errors.txt").read_text().splitlines()
    got = caught.value.lines()
    assert len(got) == len(expected), "\n".join(got)
    for want, line in zip(expected, got, strict=True):
        assert line.startswith(want), f"GOT  {line}\nWANT {want}"
    assert caught.value.exit_code == 2


def test_every_key_is_read() -> None:
    loaded = scenario.load(CASES / "valid" / "everything.yaml")
    assert dict(loaded.checks) == {"1.1.22": "PASSED", "3.2.1": "SKIPPED", "1.1.1.1": "FAILED"}
    assert (loaded.final_status, loaded.scan_duration_s, loaded.zero_checks) == (
        "CANCELLED",
        300.0,
        False,
    )
    assert loaded.ssm_online_after_s == 30.5
    assert (loaded.enable_after_s, loaded.inspector_initially_enabled) == (5.0, True)
    assert loaded.faults == (
        Fault("ListCisScans", "ThrottlingException", 3),
        Fault("DescribeInstances", "RequestLimitExceeded", 1),
        Fault("ListRoles", "Throttling", 1, "iam", "Rate exceeded"),
    )
    assert loaded.results == scenario.Results(
        drop_status=frozenset({"FAILED"}),
        max_pages=1,
        page_size=50,
        duplicate=("1.1.1.1",),
        conflicting_duplicate={"1.1.1.2": "PASSED"},
        status_counts_delta={"failed": 1, "passed": -1, "skipped": 0},
        scan_counts_delta={"total_checks": 2, "failed_checks": -1},
        scan_level="LEVEL_1",
        title_overrides={"1.1.22": "Another benchmark's title"},
        benchmark="AMAZON_LINUX_2",
        skip_automated=frozenset({"3.2.1"}),
    )
    assert loaded.ssm_timeout_s == 5.0
    assert loaded.unreported_target == "SCAN_IN_PROGRESS"
    never = scenario.load(CASES / "valid" / "ssm-never.json")
    assert (never.ssm_online_after_s, never.zero_checks) == (None, True)
    assert scenario.load(CASES / "valid" / "empty.yaml") == scenario.Scenario(
        source=str(CASES / "valid" / "empty.yaml")
    )


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario"):
        scenario.load(tmp_path / "nope.yaml")


def test_checks_override_outcomes_on_every_target(world: World) -> None:
    world.aws.load_scenario(
        {"checks": {"1.1.22": "PASSED", "1.1.1.1": "SKIPPED", "6.1.10": "FAILED"}}
    )
    stock = world.launch(
        ami=world.base_ami("amazon-linux-2", "1.31"), tags={"cis-scan": "run-1", "n": "1"}
    )[0]
    other = world.launch(
        ami=world.base_ami("amazon-linux-2", "1.32", "arm64"), tags={"cis-scan": "run-1", "n": "2"}
    )[0]
    scan_arn = world.scan()
    for instance in (stock, other):
        got = world.outcome(scan_arn, instance)
        assert (
            "1.1.22" in got["PASSED"] and "1.1.1.1" in got["SKIPPED"] and "6.1.10" in got["FAILED"]
        )
        row = next(r for r in world.details(scan_arn, instance) if r["checkId"] == "1.1.22")
        assert "scenario" in row["statusReason"]


@pytest.mark.parametrize(
    ("final", "target_status"), [("FAILED", "TIMED_OUT"), ("CANCELLED", "CANCELLED")]
)
def test_final_status(world: World, final: str, target_status: str) -> None:
    world.aws.load_scenario({"scan": {"final_status": final}})
    (instance,) = world.launch()
    scan_arn = world.scan()
    (scan,) = world.c.inspector.list_cis_scans()["scans"]
    assert (scan["status"], scan["totalChecks"]) == (final, 0)
    assert world.targets(scan_arn)[instance]["targetStatus"] == target_status
    assert world.c.inspector.get_cis_scan_report(scanArn=scan_arn)["status"] == "FAILED"


def test_duration_and_zero_checks(world: World) -> None:
    world.aws.load_scenario({"scan": {"duration_s": 300, "zero_checks": True}})
    world.launch()
    world.aws.advance(2)
    config = world.create()
    world.aws.advance(299.9)
    assert world.scans(config)[0]["status"] == "IN_PROGRESS"
    world.aws.advance(0.1)
    (scan,) = world.scans(config)
    assert (scan["status"], scan["totalChecks"]) == ("COMPLETED", 0)


@pytest.mark.parametrize(
    ("online_after", "wait", "listed"), [("never", 10_000, False), (30, 29, False), (30, 30, True)]
)
def test_ssm_online_after(world: World, online_after: Any, wait: float, listed: bool) -> None:
    world.aws.load_scenario({"ssm": {"online_after_s": online_after}})
    (instance,) = world.launch()
    world.aws.advance(wait)
    infos = world.c.ssm.describe_instance_information()["InstanceInformationList"]
    assert bool(infos) is listed
    (config,) = [world.create()]
    world.aws.advance(10)
    reason = world.targets(world.scans(config)[0]["scanArn"])[instance].get("targetStatusReason")
    assert reason == (None if listed else "SSM_UNMANAGED")


def test_reset_restores_the_start_up_scenario(world: World) -> None:
    world.aws.load_scenario({"scan": {"final_status": "FAILED"}})
    assert world.aws.emulation.scenario().final_status == "FAILED"
    world.aws.reset()
    assert world.aws.emulation.scenario() == scenario.DEFAULT
