"""Fixtures of the build tests: one local AWS per session (see _local_aws.py) and clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from _local_aws import REGION, LocalEndpoint, start_local_aws

from pipeline.aws import AwsClients, make_clients


@pytest.fixture(scope="session")
def local_endpoint() -> Iterator[LocalEndpoint]:
    """One local AWS for the whole session (it seeds the EKS parameters itself)."""
    with start_local_aws() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def _boto_session() -> boto3.Session:
    # One session for all tests: its loaders cache botocore's models (a fresh one costs ~0.4 s).
    return boto3.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def local_clients(
    local_endpoint: LocalEndpoint, _boto_session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> AwsClients:
    """The pipeline's own client bundle, pointed at the local AWS through AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_endpoint.url)
    clients = make_clients(max_attempts=1, session=_boto_session)
    assert clients.endpoint_url == local_endpoint.url
    return clients
