"""Faults from a scenario: each CIS operation, SSM DescribeInstanceInformation and moto-served
operations answer with the injected error in their own protocol, and retries see them through."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

World = Any
OWNER = "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012"
SCAN = f"{OWNER}/cis-scan/00000000-0000-4000-8000-000000000000"
CONFIG = SCAN.replace("cis-scan", "cis-configuration")
DETAILS = {"scanArn": SCAN, "targetResourceId": "i-0123456789abcdef0", "accountId": "123456789012"}

# (service, operation, client method, valid parameters)
OPERATIONS = [
    (
        "inspector2",
        "CreateCisScanConfiguration",
        "create_cis_scan_configuration",
        {
            "scanName": "x",
            "securityLevel": "LEVEL_1",
            "schedule": {"oneTime": {}},
            "targets": {"accountIds": ["SELF"], "targetResourceTags": {"k": ["v"]}},
        },
    ),
    (
        "inspector2",
        "UpdateCisScanConfiguration",
        "update_cis_scan_configuration",
        {"scanConfigurationArn": CONFIG},
    ),
    (
        "inspector2",
        "DeleteCisScanConfiguration",
        "delete_cis_scan_configuration",
        {"scanConfigurationArn": CONFIG},
    ),
    ("inspector2", "ListCisScanConfigurations", "list_cis_scan_configurations", {}),
    ("inspector2", "ListCisScans", "list_cis_scans", {}),
    (
        "inspector2",
        "ListCisScanResultsAggregatedByChecks",
        "list_cis_scan_results_aggregated_by_checks",
        {"scanArn": SCAN},
    ),
    (
        "inspector2",
        "ListCisScanResultsAggregatedByTargetResource",
        "list_cis_scan_results_aggregated_by_target_resource",
        {"scanArn": SCAN},
    ),
    ("inspector2", "GetCisScanResultDetails", "get_cis_scan_result_details", DETAILS),
    ("inspector2", "GetCisScanReport", "get_cis_scan_report", {"scanArn": SCAN}),
    ("inspector2", "Enable", "enable", {"resourceTypes": ["EC2"]}),
    ("inspector2", "BatchGetAccountStatus", "batch_get_account_status", {}),
    ("ssm", "DescribeInstanceInformation", "describe_instance_information", {}),
]
CLIENTS = {"inspector2": "inspector", "ssm": "ssm"}


@pytest.mark.parametrize(
    ("service", "operation", "method", "params"), OPERATIONS, ids=[o[1] for o in OPERATIONS]
)
def test_every_emulated_operation_can_be_made_to_fail(
    shared: World, service: str, operation: str, method: str, params: dict
) -> None:
    world = shared
    world.aws.load_scenario(
        {"faults": [{"operation": operation, "error": "InternalServerException", "times": 1}]}
    )
    client = getattr(world.c, CLIENTS[service])
    with pytest.raises(ClientError) as caught:
        getattr(client, method)(**params)
    error = caught.value.response
    assert error["Error"]["Code"] == "InternalServerException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert world.aws.calls[-1].by == "fault"
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        getattr(client, method)(**params)  # the fault fired once; this call reaches the operation
    assert world.aws.calls[-1].by == "emulation"


def test_inspector_throttling_is_rest_json_with_retry_after(world: World) -> None:
    world.aws.load_scenario(
        {"faults": [{"operation": "ListCisScans", "error": "ThrottlingException"}]}
    )
    with pytest.raises(world.c.inspector.exceptions.ThrottlingException) as caught:
        world.c.inspector.list_cis_scans()
    meta = caught.value.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 429
    assert meta["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    assert meta["HTTPHeaders"]["retry-after"] == "1"
    assert caught.value.response["retryAfterSeconds"] == 1


def test_ssm_throttling_is_aws_json_with_type(world: World) -> None:
    world.aws.load_scenario(
        {"faults": [{"operation": "DescribeInstanceInformation", "error": "ThrottlingException"}]}
    )
    with pytest.raises(world.c.ssm.exceptions.ThrottlingException) as caught:
        world.c.ssm.describe_instance_information()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (
        caught.value.response["ResponseMetadata"]["HTTPHeaders"]["content-type"]
        == "application/x-amz-json-1.1"
    )


# Standard retries; tests/conftest.py takes their backoff sleeps out (the retries stay).
STANDARD = Config(retries={"mode": "standard", "max_attempts": 5})


def test_throttled_three_times_then_answered_by_standard_retries(world: World) -> None:
    world.aws.load_scenario(
        {"faults": [{"operation": "ListCisScans", "error": "ThrottlingException", "times": 3}]}
    )
    client = world.client(world.aws.endpoint, "inspector2", config=STANDARD)
    response = client.list_cis_scans()
    assert response["ResponseMetadata"]["RetryAttempts"] == 3
    assert world.aws.count("ListCisScans") == 4
    assert [c.by for c in world.aws.calls if c.operation == "ListCisScans"] == ["fault"] * 3 + [
        "emulation"
    ]
    assert world.aws.emulation.faults.pending() == 0


@pytest.mark.parametrize(
    ("service", "method", "error", "status"),
    [
        ("ec2", "describe_instances", "RequestLimitExceeded", 503),
        ("iam", "list_roles", "Throttling", 400),
        ("sts", "get_caller_identity", "Throttling", 400),
        ("ssm", "get_parameter", "ThrottlingException", 400),
    ],
)
def test_moto_served_operations_fault_in_their_protocol(
    world: World, service: str, method: str, error: str, status: int
) -> None:
    operation = "".join(part.title() for part in method.split("_"))
    world.aws.load_scenario(
        {"faults": [{"operation": operation, "error": error, "service": service, "times": 2}]}
    )
    params = (
        {"Name": "/aws/service/eks/optimized-ami/1.32/amazon-linux-2/recommended/image_id"}
        if method == "get_parameter"
        else {}
    )
    no_retry = world.client(world.aws.endpoint, service)
    with pytest.raises(ClientError) as caught:
        getattr(no_retry, method)(**params)
    assert caught.value.response["Error"]["Code"] == error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    retrying = world.client(world.aws.endpoint, service, config=STANDARD)
    assert getattr(retrying, method)(**params)["ResponseMetadata"]["RetryAttempts"] == 1
    assert world.aws.calls[-1].by == "moto"


def test_a_fault_scoped_to_a_service_spares_the_others(world: World) -> None:
    world.aws.load_scenario(
        {
            "faults": [
                {
                    "operation": "ListTagsForResource",
                    "error": "ThrottlingException",
                    "service": "ssm",
                }
            ]
        }
    )
    arn = world.create()
    world.c.inspector.list_tags_for_resource(
        resourceArn=arn
    )  # inspector2's own ListTagsForResource: moto
    assert world.aws.emulation.faults.pending() == 1
