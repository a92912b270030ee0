"""The server's own surface: HTTP controls, env(), the foreground command, start and stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ConfigError
from pipeline.localaws import LocalAws, local_aws
from pipeline.localaws.__main__ import main

World = Any


def call(endpoint: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        endpoint + path, data=data, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_health_and_env(aws: LocalAws) -> None:
    status, health = call(aws.endpoint, "/_localaws/health")
    assert status == 200
    assert (health["status"], health["ready"], health["endpoint"], health["accountId"]) == (
        "ok",
        True,
        aws.endpoint,
        "123456789012",
    )
    assert aws.endpoint == f"http://127.0.0.1:{aws.port}"
    assert aws.env() == {
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint  # set by the aws fixture


def test_scenario_clock_and_reset_over_http(world: World) -> None:
    endpoint = world.aws.endpoint
    status, body = call(endpoint, "/_localaws/scenario", {"scan": {"final_status": "DONE"}})
    assert status == 400
    assert body["problems"] == [
        "POST /_localaws/scenario: $.scan.final_status: 'DONE' is not one of"
        " ['FAILED', 'COMPLETED', 'CANCELLED']"
    ]
    assert call(endpoint, "/_localaws/scenario", {"scan": {"duration_s": 60}})[0] == 200
    world.launch()
    world.aws.advance(2)
    config = world.create()
    before = world.aws.clock.now()
    status, body = call(endpoint, "/_localaws/clock/advance", {"seconds": 60})
    assert status == 200 and body["now"] == before + 60
    assert world.scans(config)[0]["status"] == "COMPLETED"
    assert call(endpoint, "/_localaws/clock/advance", {"seconds": -1})[0] == 400
    assert call(endpoint, "/_localaws/clock/advance", {"sec": 1})[0] == 400

    status, calls = call(endpoint, "/_localaws/calls")
    assert status == 200
    assert any(
        c["operation"] == "CreateCisScanConfiguration" and c["by"] == "emulation"
        for c in calls["calls"]
    )
    assert call(endpoint, "/_localaws/reset", {})[0] == 200
    assert world.c.inspector.list_cis_scan_configurations()["scanConfigurations"] == []
    assert world.c.iam.list_roles()["Roles"] == []
    assert world.aws.emulation.scenario().scan_duration_s == 3.0


def test_moto_api_reset_resets_the_emulation_too(world: World) -> None:
    world.create()
    assert call(world.aws.endpoint, "/moto-api/reset", {})[0] == 200
    assert world.c.inspector.list_cis_scan_configurations()["scanConfigurations"] == []


def test_local_aws_context_manager_loads_a_scenario_file(
    tmp_path: Path, local_aws_server: LocalAws
) -> None:
    """A second server in the same process (it shares moto's state: never reset it here)."""
    scenario = tmp_path / "slow.yaml"
    scenario.write_text("scan: {duration_s: 120}\n")
    with local_aws(scenario=scenario) as second:
        endpoint = second.endpoint
        status, health = call(endpoint, "/_localaws/health")
        assert status == 200 and health["scenario"] == str(scenario)
        assert second.port != local_aws_server.port
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(endpoint + "/_localaws/health", timeout=2)


def test_a_bad_scenario_or_a_taken_port_is_a_config_error(
    tmp_path: Path, local_aws_server: LocalAws
) -> None:
    (tmp_path / "bad.yaml").write_text("scan: {final_status: DONE}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: \$.scan.final_status"):
        LocalAws(scenario=tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot listen"):
        LocalAws(port=local_aws_server.port).start()


def test_python_m_serves_until_sigterm(tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text('{"ssm": {"online_after_s": "never"}}')
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.localaws", "--port", "0", "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n") for _ in range(5)]
        endpoint = lines[0]
        assert endpoint.startswith("http://127.0.0.1:")
        assert lines[1:] == [
            f"export AWS_ENDPOINT_URL={endpoint}",
            "export AWS_ACCESS_KEY_ID=testing",
            "export AWS_SECRET_ACCESS_KEY=testing",
            "export AWS_DEFAULT_REGION=us-east-1",
        ]
        status, health = call(endpoint, "/_localaws/health")
        assert status == 200 and health["scenario"] == str(scenario)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "Running on" not in stderr and "GET /_localaws/health" not in stderr  # werkzeug is quiet


def test_main_reports_a_bad_scenario_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("nonsense: true\n")
    assert main(["--scenario", str(tmp_path / "bad.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "bad.yaml: $: Additional properties are not allowed ('nonsense' was unexpected)"
        in captured.err
    )
