"""Fixtures for ``invoke validate`` tests: a local AWS, clients, AMIs, and an instant clock."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.aws.images import eks_ami_parameter
from pipeline.catalog import Platform
from pipeline.localaws import LocalAws
from pipeline.packer import Arch
from pipeline.validate import Runtime, ValidateSettings
from tests._dates import shifted_now

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = {"al2023": "AMAZON_LINUX_2023", "al2": "AMAZON_LINUX_2"}


@pytest.fixture
def aws(local_aws_server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """The session's local AWS (manual clock), reset, with the client environment set; after the
    test it must hold nothing the run created."""
    local_aws_server.reset()
    for key, value in local_aws_server.env().items():
        monkeypatch.setenv(key, value)
    yield local_aws_server
    assert_nothing_left(local_aws_server)


def assert_nothing_left(server: LocalAws) -> None:
    """After each test: no running test instance, no scan configuration, no per-run SG."""
    env = server.env()
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    ec2 = session.client("ec2", endpoint_url=server.endpoint)
    insp = session.client("inspector2", endpoint_url=server.endpoint)
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
    configs = insp.list_cis_scan_configurations().get("scanConfigurations", [])
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "tag-key", "Values": ["cis-validate:run-id"]}]
    )["SecurityGroups"]
    assert (live, configs, groups) == ([], [], []), "the run left resources behind"


def ami_tags(clients: AwsClients, ami: str) -> dict[str, str]:
    """The AMI's tags as a dict (ec2:DescribeImages)."""
    image = clients.ec2.describe_images(ImageIds=[ami])["Images"][0]
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


@pytest.fixture
def clients(aws: LocalAws) -> AwsClients:
    return make_clients(max_attempts=10)


def make_clients_for(server: LocalAws) -> AwsClients:
    """Clients for a server other than the session's (its endpoint, fake credentials)."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=server.region
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", server.endpoint)
        return make_clients(session=session)


@dataclass
class FakeTime:
    """Sleeping advances the local AWS clock and our monotonic clock together: instant waits."""

    aws: LocalAws
    now: float = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.aws.advance(seconds)

    def clock(self) -> float:
        return self.now


@pytest.fixture
def runtime(aws: LocalAws) -> Callable[[list[str] | None], Runtime]:
    fake = FakeTime(aws)

    def make(lines: list[str] | None = None) -> Runtime:
        sink = lines if lines is not None else []
        return Runtime(now=shifted_now, echo=sink.append, sleep=fake.sleep, clock=fake.clock)

    return make


def base_ami(clients: AwsClients, platform: str = "al2023", arch: str = "x86_64") -> str:
    name = eks_ami_parameter("1.32", Platform.parse(platform), Arch(arch))
    return clients.ssm.get_parameter(Name=name)["Parameter"]["Value"]


def make_ami(
    clients: AwsClients, platform: str = "al2023", arch: str = "x86_64", level: int | None = 2
) -> str:
    """An AMI as ``invoke build`` leaves it: from the EKS base, with the provenance tags."""
    base = base_ami(clients, platform, arch)
    instance = clients.ec2.run_instances(
        ImageId=base, InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    ami = clients.ec2.create_image(InstanceId=instance, Name=f"cis-test-{platform}-{arch}-{level}")[
        "ImageId"
    ]
    clients.ec2.terminate_instances(InstanceIds=[instance])
    tags: dict[str, Any] = {
        "cis-ami:platform": PLATFORM[platform],
        "cis-ami:architecture": arch,
        "cis-ami:kubernetes-version": "1.32",
    }
    if level:
        tags["cis-ami:hardening-level"] = str(level)
    clients.ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return ami


def settings(tmp_path: Path, *amis: str, **overrides: Any) -> ValidateSettings:
    base: dict[str, Any] = {
        "amis": amis,
        "out_dir": tmp_path / "out",
        "policy_dir": ROOT / "policies/exceptions",
        "enable_inspector": True,
        "instance_types": {"x86_64": "t3.medium", "arm64": "t4g.medium"},
        "ssm_timeout_s": 900,
        "scan_timeout_s": 2700,
    }
    base.update(overrides)
    return ValidateSettings(**base)


@pytest.fixture(autouse=True)
def _no_real_endpoint() -> None:
    assert os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1").startswith("http://127.0.0.1")
