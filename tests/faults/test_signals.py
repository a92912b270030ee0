"""Signals against real processes: ``invoke validate`` talking to an ``invoke local-aws``
process, interrupted during launch, the SSM wait, scan polling and result collection.

SIGINT exits 130 and SIGTERM 143, after cleanup, with an ERROR verdict.json recording that
code; SIGKILL cleans nothing, so the next ``invoke reap`` must.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.aws import make_clients
from tests._dates import subprocess_env
from tests.validate.conftest import make_ami

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
# Inspector on and the instance an SSM node as soon as it runs: no poll waits before the phase
# a test is about (a phase that needs a wait scripts it below).
FAST = {"inspector": {"initially_enabled": True}, "ssm": {"online_after_s": 0}}
THROTTLE = "ThrottlingException"


class Server:
    """An ``invoke local-aws`` process (real clock), controlled over its HTTP API."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [INVOKE, "local-aws"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.endpoint = self.proc.stdout.readline().strip()
        assert self.endpoint.startswith("http://127.0.0.1:"), self.endpoint
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def post(self, path: str, body: Any = None) -> None:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(
            f"{self.endpoint}/_localaws/{path}", data=data, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback
            pass

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def leftovers(self) -> tuple[list[str], list[str], list[str]]:
        """Running test instances, scan configurations, per-run security groups."""
        ec2, insp = self.client("ec2"), self.client("inspector2")
        live = [
            i["InstanceId"]
            for r in ec2.describe_instances(
                Filters=[
                    {"Name": "tag-key", "Values": ["cis-validate:run-id"]},
                    {"Name": "instance-state-name", "Values": ["pending", "running"]},
                ]
            )["Reservations"]
            for i in r["Instances"]
        ]
        configs = [
            c["scanConfigurationArn"]
            for c in insp.list_cis_scan_configurations().get("scanConfigurations", [])
        ]
        groups = [
            g["GroupId"]
            for g in ec2.describe_security_groups(
                Filters=[{"Name": "tag-key", "Values": ["cis-validate:run-id"]}]
            )["SecurityGroups"]
        ]
        return live, configs, groups

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


@pytest.fixture
def fresh(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    server.post("reset")
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    return server


class Run:
    """``invoke validate`` in its own process; its output is read on a thread."""

    def __init__(self, server: Server, ami: str, out: Path) -> None:
        self.out = out
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [INVOKE, "validate", "--ami", ami, "--out", str(out), "--ssm-timeout", "120"],
            cwd=ROOT,
            env=subprocess_env(out.parent, {**os.environ, **server.env}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[[Run], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready(self):
            assert self.proc.poll() is None, f"ended early ({self.proc.returncode}):\n{self.output}"
            assert time.monotonic() < deadline, f"phase never reached:\n{self.output}"
            time.sleep(0.05)

    def finish(self, timeout: float = 90) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def said(text: str) -> Callable[[Run], bool]:
    return lambda run: text in run.output


def wrote(name: str) -> Callable[[Run], bool]:
    return lambda run: (run.out / name).exists()


# phase -> (scenario, the moment the run is in that phase)
PHASES: dict[str, tuple[dict[str, Any], Callable[[Run], bool]]] = {
    # the instance_running waiter is throttled for a while: the run is still launching
    "launch": (
        {**FAST, "faults": [{"operation": "DescribeInstances", "error": THROTTLE, "times": 2}]},
        said("launched test instance"),
    ),
    "ssm-wait": ({**FAST, "ssm": {"online_after_s": 60}}, said("waiting for SSM")),
    "scan-polling": ({**FAST, "scan": {"duration_s": 60}}, said("CIS scan configuration")),
    # results come slowly (throttled) after the scan ended: the run is collecting
    "collection": (
        {
            **FAST,
            "scan": {"duration_s": 0},
            "faults": [
                {"operation": operation, "error": THROTTLE, "times": 3}
                for operation in (
                    "ListCisScanResultsAggregatedByTargetResource",
                    "GetCisScanResultDetails",
                )
            ],
        },
        wrote("evidence/scan.json"),
    ),
}
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def start(server: Server, phase: str, tmp_path: Path) -> Run:
    scenario, _ = PHASES[phase]
    ami = make_ami(make_clients())
    server.post("scenario", scenario)
    run = Run(server, ami, tmp_path / "out")
    run.wait_for(PHASES[phase][1])
    return run


@pytest.mark.parametrize("phase", sorted(PHASES))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cleans_up_and_exits_with_its_code(
    fresh: Server, phase: str, sig: signal.Signals, tmp_path: Path
) -> None:
    run = start(fresh, phase, tmp_path)
    run.proc.send_signal(sig)
    code = run.finish()
    assert code == CODES[sig], run.output
    assert "Traceback" not in run.output
    written = json.loads((run.out / "verdict.json").read_text())
    assert written["verdict"] == "ERROR" and written["exit_code"] == code
    assert any(f"interrupted by {sig.name}" in e for e in written["errors"]), written["errors"]
    assert f"interrupted by {sig.name}" in run.output
    if phase in ("scan-polling", "collection"):  # the scan configuration exists: it is deleted
        assert written["context"]["scan_configuration_arn"]
        assert "cleanup: delete scan configuration" in run.output
    fresh.post("scenario", {})
    assert fresh.leftovers() == ([], [], []), run.output


@pytest.mark.parametrize("phase", ["scan-polling", "collection"])
def test_sigkill_leaks_until_reap(fresh: Server, phase: str, tmp_path: Path) -> None:
    run = start(fresh, phase, tmp_path)
    run.proc.send_signal(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    fresh.post("scenario", {})
    live, configs, groups = fresh.leftovers()
    assert live and configs and groups  # nothing cleaned: that is reap's job
    time.sleep(0.7)  # the killed run's last heartbeat is now older than 0.01 minutes (0.6 s)
    reap = subprocess.run(
        [INVOKE, "reap", "--stale-minutes", "0.01"],
        cwd=ROOT,
        env={**os.environ, **fresh.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert reap.returncode == 0, reap.stdout + reap.stderr
    assert fresh.leftovers() == ([], [], []), reap.stdout + reap.stderr
