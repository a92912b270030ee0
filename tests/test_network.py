"""Where build and validate launch (issue 21): one ``pipeline.network`` section and the same
flags for every command that launches; a subnet in a zone offering the instance type; a preflight
that refuses, in seconds and with the fix named, a subnet from which SSM is unreachable (the
local AWS seeds one: ``seed.NO_SSM_ROUTE``); a lost heartbeat stops the run."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pipeline import heartbeat
from pipeline.aws import AwsClients, make_clients, network
from pipeline.build import run_build, variables
from pipeline.build.process import LiveProcesses
from pipeline.errors import AwsError, ConfigError, ExitCode, PipelineError
from pipeline.localaws import LocalAws
from pipeline.localaws.seed import NO_SSM_ROUTE
from pipeline.settings import NetworkSettings, network_settings
from pipeline.tags import MANAGED_TAG, MANAGED_VALUE
from pipeline.validate import Runtime, cleanup, run_validate
from pipeline.validate.settings import run_settings
from tests.validate.conftest import FakeTime, make_ami
from tests.validate.conftest import settings as validate_settings

ROOT = Path(__file__).resolve().parents[1]


def _subnet(clients: AwsClients, **filters: str) -> dict[str, Any]:
    found = clients.ec2.describe_subnets(
        Filters=[{"Name": k.replace("_", "-"), "Values": [v]} for k, v in filters.items()]
    )["Subnets"]
    return dict(found[0])


def _isolated(clients: AwsClients) -> dict[str, Any]:
    return _subnet(clients, **{"tag:Name": NO_SSM_ROUTE})


# --- settings: one section, the same flags ------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "flags", "expected"),
    [
        ({}, {}, NetworkSettings()),
        (
            {"network": {"subnet_id": "subnet-1", "public_ip": True}},
            {},
            NetworkSettings("subnet-1", None, True),
        ),  # fmt: skip
        (
            {"network": {"subnet_id": "subnet-1"}},
            {"subnet_id": "subnet-2", "public_ip": "false"},
            NetworkSettings("subnet-2", None, False),
        ),  # fmt: skip
        (
            {"validate": {"security_group_id": "sg-1", "public_ip": False}},
            {},
            NetworkSettings(None, "sg-1", False),
        ),  # fmt: skip
        ({"network": {"public_ip": True}}, {"public_ip": "auto"}, NetworkSettings()),
    ],
)
def test_flags_override_the_one_network_section(
    config: Mapping[str, Any], flags: Mapping[str, Any], expected: NetworkSettings
) -> None:
    assert network_settings(config, **flags) == expected
    cfg = run_settings(config, ROOT, **flags)  # validate and build-and-validate read it alike
    assert (cfg.subnet_id, cfg.security_group_id, cfg.public_ip) == (
        expected.subnet_id,
        expected.security_group_id,
        expected.public_ip,
    )


@pytest.mark.parametrize(
    ("config", "flags", "fragment"),
    [
        ({}, {"public_ip": "maybe"}, "--public-ip 'maybe': choose true or false"),
        ({"network": ["subnet-1"]}, {}, "$.pipeline.network: expected a map"),
        ({"network": {"subnet_id": 7}}, {}, "--subnet-id 7: expected an ID"),
        (
            {"network": {"subnet_id": "a"}, "validate": {"subnet_id": "b"}},
            {},
            "$.pipeline.validate.subnet_id: also set in $.pipeline.network",
        ),  # fmt: skip
    ],
)
def test_bad_network_settings_are_refused(
    config: Mapping[str, Any], flags: Mapping[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        network_settings(config, **flags)
    assert fragment in str(err.value)


@pytest.mark.parametrize("name", sorted(variables.NETWORK_VARS) + sorted(variables.REFUSED_VARS))
def test_the_network_and_copy_variables_are_not_passed_through(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^--var {name}: "):
        variables.check_vars({name: "x"}, local=False)


# --- the preflight --------------------------------------------------------------------------------


def test_the_default_subnet_is_in_a_zone_offering_every_instance_type(aws: LocalAws) -> None:
    clients = make_clients(region="us-east-1")
    offers = network.offering_zones(clients, ["m6i.large"])
    assert "us-east-1e" not in offers  # the local AWS, as AWS: not every zone offers every type
    placed = network.prepare(clients, NetworkSettings(), ["m6i.large"])
    assert placed.zone in offers and placed.public_ip  # a default subnet maps public IPs
    assert placed.route.startswith("internet gateway igw-")
    zone_e = _subnet(clients, availability_zone="us-east-1e")["SubnetId"]
    with pytest.raises(ConfigError, match=rf"^--subnet-id {zone_e} .*us-east-1e does not offer"):
        network.prepare(clients, NetworkSettings(subnet_id=zone_e), ["m6i.large"])


@pytest.mark.parametrize("public_ip", [None, True, False])
def test_a_subnet_without_a_route_to_ssm_is_refused_with_the_fix_named(
    aws: LocalAws, public_ip: bool | None
) -> None:
    clients = make_clients(region="us-east-1")
    isolated = _isolated(clients)["SubnetId"]
    with pytest.raises(ConfigError) as err:
        network.prepare(clients, NetworkSettings(isolated, None, public_ip), ["m6i.large"])
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    text = str(err.value)
    assert text.startswith(f"--subnet-id {isolated} (pipeline.network.subnet_id)")
    for fix in ("internet gateway", "NAT gateway", "ssm, ssmmessages, ec2messages"):
        assert fix in text


def test_a_public_ip_is_needed_with_an_internet_gateway_only(aws: LocalAws) -> None:
    clients = make_clients(region="us-east-1")
    with pytest.raises(ConfigError, match="without a public IP cannot reach"):
        network.prepare(clients, NetworkSettings(public_ip=False), ["m6i.large"])


def test_the_three_interface_endpoints_or_a_nat_route_make_a_private_subnet_work(
    aws: LocalAws,
) -> None:
    clients = make_clients(region="us-east-1")
    subnet = _isolated(clients)
    ids = []
    for service in network.SSM_SERVICES:
        ids.append(
            clients.ec2.create_vpc_endpoint(
                VpcId=subnet["VpcId"],
                ServiceName=f"com.amazonaws.us-east-1.{service}",
                VpcEndpointType="Interface",
                SubnetIds=[subnet["SubnetId"]],
                PrivateDnsEnabled=True,
            )["VpcEndpoint"]["VpcEndpointId"]  # fmt: skip
        )
        asked = NetworkSettings(subnet["SubnetId"], None, False)
        if service != network.SSM_SERVICES[-1]:  # two of three are not enough
            with pytest.raises(ConfigError):
                network.prepare(clients, asked, ["m6i.large"])
    placed = network.prepare(clients, asked, ["m6i.large"])
    assert placed.route == "interface VPC endpoints " + ", ".join(ids)
    clients.ec2.delete_vpc_endpoints(VpcEndpointIds=ids)
    table = clients.ec2.create_route_table(VpcId=subnet["VpcId"])["RouteTable"]["RouteTableId"]
    clients.ec2.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
    public = _subnet(clients, default_for_az="true")["SubnetId"]
    nat = clients.ec2.create_nat_gateway(SubnetId=public)["NatGateway"]["NatGatewayId"]
    clients.ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    assert network.prepare(clients, asked, ["m6i.large"]).route == f"NAT gateway {nat}"


def test_a_given_security_group_must_be_the_pipelines_and_in_the_subnets_vpc(
    aws: LocalAws,
) -> None:
    clients = make_clients(region="us-east-1")
    default = _subnet(clients, default_for_az="true")
    plain = clients.ec2.create_security_group(
        GroupName="plain", Description="x", VpcId=default["VpcId"]
    )["GroupId"]
    with pytest.raises(ConfigError, match=f"--security-group-id {plain} .*not tagged"):
        network.prepare(clients, NetworkSettings(security_group_id=plain), ["m6i.large"])
    clients.ec2.create_tags(Resources=[plain], Tags=[{"Key": MANAGED_TAG, "Value": MANAGED_VALUE}])
    placed = network.prepare(clients, NetworkSettings(security_group_id=plain), ["m6i.large"])
    assert placed.security_group_id == plain
    other = _isolated(clients)["SubnetId"]
    with pytest.raises(ConfigError, match="not in the instances' VPC"):
        network.prepare(clients, NetworkSettings(other, plain, True), ["m6i.large"])


def test_build_refuses_the_isolated_subnet_before_packer_runs(
    aws: LocalAws, tmp_path: Path
) -> None:
    clients = make_clients(region="us-east-1")
    ran: list[Sequence[str]] = []
    with pytest.raises(ConfigError, match="cannot reach Systems Manager"):
        run_build(
            local=True, out_dir=tmp_path, out=lambda _: None, clients=clients,
            runner=lambda argv, env, on_line: ran.append(argv) or 0,
            network=NetworkSettings(subnet_id=_isolated(clients)["SubnetId"]),
        )  # fmt: skip
    assert ran == []


def test_build_passes_the_checked_network_to_packer(aws: LocalAws, tmp_path: Path) -> None:
    clients = make_clients(region="us-east-1")
    seen: list[list[str]] = []

    def runner(argv: Sequence[str], env: Mapping[str, str], on_line: Any) -> int:
        seen.append(list(argv))
        return 1  # stop after the first packer call

    with pytest.raises(PipelineError):
        run_build(local=True, out_dir=tmp_path, out=lambda _: None, clients=clients, runner=runner)
    (argv,) = [a for a in seen if "build" in a]
    values = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-var")
    placed = network.prepare(clients, NetworkSettings(), ["m6i.large"])
    assert values["subnet_id"] == placed.subnet_id
    assert values["associate_public_ip_address"] == "true"
    assert values["security_group_id"] == ""


def test_validate_refuses_the_isolated_subnet_before_launching(
    aws: LocalAws, tmp_path: Path
) -> None:
    clients = make_clients(region="us-east-1")
    ami = make_ami(clients)
    isolated = _isolated(clients)["SubnetId"]
    before = clients.ec2.describe_instances()["Reservations"]
    lines: list[str] = []
    fake = FakeTime(aws)
    with pytest.raises(ConfigError, match=f"^--subnet-id {isolated} .*cannot reach Systems"):
        run_validate(
            validate_settings(tmp_path, ami, subnet_id=isolated), clients,
            Runtime(echo=lines.append, sleep=fake.sleep, clock=fake.clock),
        )  # fmt: skip
    assert clients.ec2.describe_instances()["Reservations"] == before
    assert not [g for g in clients.ec2.describe_security_groups()["SecurityGroups"]
                if g["GroupName"].startswith("cis-validate-")]  # fmt: skip


# --- the heartbeat stops the run ------------------------------------------------------------


def test_a_lost_heartbeat_calls_on_lost_once_after_max_failures() -> None:
    lost: list[str] = []

    def fail(ids: Any, tags: Any) -> None:
        raise AwsError("ec2:DescribeKeyPairs: UnauthorizedOperation")

    beat = heartbeat.Heartbeat(fail, echo=lambda _: None, on_lost=lost.append)
    beat.add(["i-1"])
    assert beat.beat() is False and lost == []
    assert beat.beat() is False and len(lost) == 1
    assert beat.beat() is False and len(lost) == 1
    assert "UnauthorizedOperation" in lost[0] and "10 minutes" in lost[0]


def test_a_beat_that_succeeds_resets_the_count() -> None:
    results = iter([False, True, False, True])

    def flaky(ids: Any, tags: Any) -> None:
        if not next(results):
            raise AwsError("throttled")

    lost: list[str] = []
    beat = heartbeat.Heartbeat(flaky, echo=lambda _: None, on_lost=lost.append)
    beat.add(["i-1"])
    assert [beat.beat() for _ in range(4)] == [False, True, False, True]
    assert lost == [] and beat.failures == 0


def test_a_denied_build_heartbeat_fails_in_seconds_before_packer_runs(
    aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = make_clients(region="us-east-1")

    def denied(*_: Any) -> list[str]:
        raise AwsError("ec2:DescribeKeyPairs: UnauthorizedOperation: not authorized")

    monkeypatch.setattr("pipeline.build.ec2.run_resource_ids", denied)
    ran: list[Sequence[str]] = []
    with pytest.raises(AwsError, match="^heartbeat: ec2:DescribeKeyPairs: Unauthorized") as err:
        run_build(
            local=True, out_dir=tmp_path, out=lambda _: None, clients=clients,
            runner=lambda argv, env, on_line: ran.append(argv) or 0,
        )  # fmt: skip
    assert err.value.exit_code == ExitCode.UNEXPECTED
    assert [a for a in ran if "build" in a] == []


def test_a_lost_build_heartbeat_interrupts_packer_and_fails_naming_the_cause(
    aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = make_clients(region="us-east-1")
    calls = [0]

    def flaky(*_: Any) -> list[str]:
        calls[0] += 1
        if calls[0] > 1:  # the first beat (before packer) works, then every one fails
            raise AwsError("ec2:DescribeKeyPairs: RequestLimitExceeded")
        return []

    monkeypatch.setattr("pipeline.build.ec2.run_resource_ids", flaky)
    fast = partial(heartbeat.Heartbeat, interval=timedelta(milliseconds=10))
    monkeypatch.setattr("pipeline.build.Heartbeat", fast)
    stopped = threading.Event()
    real_interrupt = LiveProcesses.interrupt

    def interrupt(self: LiveProcesses) -> None:
        real_interrupt(self)
        stopped.set()

    monkeypatch.setattr(LiveProcesses, "interrupt", interrupt)

    def packer(argv: Sequence[str], env: Mapping[str, str], on_line: Any) -> int:
        if "build" in argv:
            assert stopped.wait(10)  # packer runs until the heartbeat is lost
            return 130
        return 0

    lines: list[str] = []
    with pytest.raises(AwsError, match="^build stopped: heartbeat not written 2 times"):
        run_build(
            local=True, out_dir=tmp_path, out=lines.append, clients=clients, runner=packer,
        )  # fmt: skip
    assert any("interrupting packer" in line for line in lines)


def test_live_processes_are_interrupted_with_sigint() -> None:
    live = LiveProcesses()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time\ntry:\n time.sleep(30)\nexcept KeyboardInterrupt:\n"
         " raise SystemExit(42)"],
        text=True,
    )  # fmt: skip
    live.add(proc)
    threading.Event().wait(0.5)
    live.interrupt()
    assert proc.wait(10) == 42


def test_a_lost_validate_heartbeat_stops_the_run_through_its_cleanup(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat thread interrupts the run's main thread (as SIGTERM would): the cleanup
    stack runs, then the run fails with exit 1 naming the cause, not 143."""
    clients = make_clients(region="us-east-1")

    def denied(*_: Any) -> None:
        raise AwsError("ec2:CreateTags i-1: UnauthorizedOperation")

    monkeypatch.setattr(cleanup.ec2, "write_tags", denied)
    fast = partial(heartbeat.Heartbeat, interval=timedelta(milliseconds=10))
    monkeypatch.setattr(cleanup.heartbeat, "Heartbeat", fast)
    cleaned: list[str] = []
    lines: list[str] = []
    rt = Runtime(echo=lines.append)
    with (
        pytest.raises(cleanup.HeartbeatLost) as err,
        cleanup.cleaning_up(clients, rt, keep=True) as (stack, beat),
    ):
        stack.callback(cleaned.append, "terminated")
        beat.add(["i-1"])
        beat.start()
        for _ in range(1000):  # the run's polling, until the heartbeat stops it
            threading.Event().wait(0.01)
    assert cleaned == ["terminated"]  # --keep is overridden: the resources would be reaped
    assert err.value.exit_code == ExitCode.UNEXPECTED
    assert str(err.value).startswith("validate stopped: heartbeat not written 2 times")
    assert any(line.startswith("ERROR  heartbeat not written") for line in lines)
