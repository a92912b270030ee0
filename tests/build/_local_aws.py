"""A local AWS endpoint for the build tests.

The local AWS is the project's ``pipeline.localaws.local_aws()`` when it can be imported (it
seeds its own EKS-optimized base AMIs and SSM parameters), else a bare
``moto.server.ThreadedMotoServer`` (also forced with ``BUILD_TESTS_LOCAL_AWS=moto``), where the
EKS parameters this suite needs are seeded to point at moto's built-in ``ami-ekslinux``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "123456789012"
BASE_AMI = "ami-ekslinux"  # what the fallback seeds (pipeline.localaws seeds its own)
# (k8s version, platform short, arch): the parameters the suite resolves.
SEEDED = [
    ("1.33", "al2023", "x86_64"),
    ("1.33", "al2023", "arm64"),
    ("1.32", "al2", "x86_64"),
    ("1.32", "al2", "arm64"),
]


@dataclass(frozen=True)
class LocalEndpoint:
    url: str
    kind: str  # "pipeline.localaws" or "moto.ThreadedMotoServer"


def _parameter_name(version: str, short: str, arch: str) -> str:
    base = f"/aws/service/eks/optimized-ami/{version}"
    if short == "al2023":
        return f"{base}/amazon-linux-2023/{arch}/standard/recommended/image_id"
    suffix = "-arm64" if arch == "arm64" else ""
    return f"{base}/amazon-linux-2{suffix}/recommended/image_id"


def eks_base_ami(endpoint: str, version: str, short: str, arch: str) -> str:
    """The base AMI the local AWS publishes for these (read independently of the pipeline)."""
    ssm = raw_client("ssm", endpoint)
    return str(ssm.get_parameter(Name=_parameter_name(version, short, arch))["Parameter"]["Value"])


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


def seed_eks_parameters(endpoint: str) -> None:
    """Seed the public EKS parameters through moto's in-process backend.

    moto refuses PutParameter under /aws/ over HTTP (AccessDeniedException, like AWS), so write
    them straight into its SSM backend; this works because both servers run in this process.
    """
    ssm = raw_client("ssm", endpoint)
    missing = []
    for version, short, arch in SEEDED:
        name = _parameter_name(version, short, arch)
        try:
            ssm.get_parameter(Name=name)
        except ssm.exceptions.ParameterNotFound:
            missing.append(name)
    if not missing:
        return
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    params = ssm_backends[ACCOUNT][REGION]._parameters
    for name in missing:
        params[name].append(
            Parameter(
                account_id=ACCOUNT,
                name=name,
                value=BASE_AMI,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=utcnow(),
                version=1,
                data_type="aws:ec2:image",
            )
        )


@contextlib.contextmanager
def start_local_aws() -> Iterator[LocalEndpoint]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    local_aws = None
    if os.environ.get("BUILD_TESTS_LOCAL_AWS") != "moto":  # "moto": force the fallback
        try:
            local_aws = importlib.import_module("pipeline.localaws").local_aws
        except (ImportError, AttributeError):
            local_aws = None
    if local_aws is not None:
        with local_aws() as aws:
            yield LocalEndpoint(str(aws.endpoint), "pipeline.localaws")
        return
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield LocalEndpoint(f"http://{host}:{port}", "moto.ThreadedMotoServer")
    finally:
        server.stop()
