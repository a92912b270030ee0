"""Fixtures for the evidence tests: one validated AMI on the session's local AWS, shared by a
module's tests (each test that changes the store puts back what it changed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.aws import AwsClients
from pipeline.evidence import store
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests.validate.conftest import (  # the validate tests' fixtures, for setup's tests
    FakeTime,
    aws,  # noqa: F401
    clients,  # noqa: F401
    make_ami,
    make_clients_for,
    runtime,  # noqa: F401
    settings,
)


@dataclass
class World:
    aws: LocalAws
    clients: AwsClients
    ami: str
    bucket: str
    record_key: str  # the envelope's key
    prefix: str  # the run's prefix
    out: Path
    lines: list[str]


def validated_world(server: LocalAws, tmp: Path, *, platform: str = "al2023") -> World:
    server.reset()
    bundle = make_clients_for(server)
    ami = make_ami(bundle, platform)
    fake = FakeTime(server)
    lines: list[str] = []
    rt = Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock)
    verdict = run_validate(settings(tmp, ami), bundle, rt)
    assert verdict.verdict.value == "PASS", lines
    tags = {
        t["Key"]: t["Value"]
        for t in bundle.ec2.describe_images(ImageIds=[ami])["Images"][0].get("Tags", [])
    }
    where = store.parse_s3_uri(tags[store.ATTESTATION_TAG])
    assert where is not None
    bucket, key = where
    return World(server, bundle, ami, bucket, key, key.rsplit("/", 1)[0] + "/", tmp / "out", lines)


@pytest.fixture(scope="module")
def world(local_aws_server: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield validated_world(local_aws_server, tmp_path_factory.mktemp("world"))
