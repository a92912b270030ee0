"""The local AWS endpoint for the build tests: the project's ``pipeline.localaws``.

It seeds the EKS-optimized base AMIs and their public SSM parameters itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from pipeline.aws.images import eks_ami_parameter
from pipeline.catalog import Platform
from pipeline.localaws import local_aws
from pipeline.packer import Arch

REGION = "us-east-1"


@dataclass(frozen=True)
class LocalEndpoint:
    url: str
    kind: str = "pipeline.localaws"


def eks_base_ami(endpoint: str, version: str, short: str, arch: str) -> str:
    """The base AMI the local AWS publishes for these (read independently of the pipeline)."""
    name = eks_ami_parameter(version, Platform.parse(short), Arch(arch))
    return str(raw_client("ssm", endpoint).get_parameter(Name=name)["Parameter"]["Value"])


def raw_client(service: str, endpoint: str) -> Any:
    """A plain boto3 client for the local endpoint (the tests' independent view of its state)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@contextlib.contextmanager
def start_local_aws() -> Iterator[LocalEndpoint]:
    with local_aws() as aws:
        yield LocalEndpoint(str(aws.endpoint))
