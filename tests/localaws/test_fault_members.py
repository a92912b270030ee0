"""Injected faults look like the service's own errors: every member the model requires, the
modelled Retry-After header, a message that fits; and they reach operations whose path carries
an ARN with slashes (inspector2 tagging of a CIS scan configuration)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.localaws import model

World = Any  # the ``shared`` fixture (tests/localaws/conftest.py)
INSPECTOR_ERRORS = [shape.name for shape in model.require_service("inspector2").error_shapes]
ARN = (
    "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/cis-configuration/"
    "00000000-0000-4000-8000-000000000000"
)


def _fail(shared: World, fault: dict[str, Any], call: Any) -> dict[str, Any]:
    shared.aws.load_scenario({"faults": [fault]})
    with pytest.raises(ClientError) as caught:
        call()
    assert shared.aws.calls[-1].by == "fault"
    assert shared.aws.calls[-1].operation == fault["operation"]
    return dict(caught.value.response)


@pytest.mark.parametrize("code", INSPECTOR_ERRORS)
def test_every_inspector2_error_carries_its_required_members(shared: World, code: str) -> None:
    shape = model.error_shape("inspector2", code)
    assert shape is not None
    response = _fail(
        shared, {"operation": "ListCisScans", "error": code}, shared.c.inspector.list_cis_scans
    )
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == model.error_status("inspector2", code)
    for member in shape.required_members:
        if member != "message":
            assert member in response, f"{code} lacks {member}: {response}"
    assert "local AWS scenario fault" in response["Error"]["Message"]
    if "retryAfterSeconds" in shape.members:
        assert response["retryAfterSeconds"] == 1
        assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("ThrottlingException", "Rate exceeded"),
        ("ValidationException", "validation error"),
        ("AccessDeniedException", "not authorized to perform: inspector2:ListCisScans"),
        ("ResourceNotFoundException", "not found"),
        ("InternalServerException", "Internal server error"),
        ("ConflictException", "conflicts"),
    ],
)
def test_the_message_fits_the_error(shared: World, code: str, words: str) -> None:
    response = _fail(
        shared, {"operation": "ListCisScans", "error": code}, shared.c.inspector.list_cis_scans
    )
    assert words in response["Error"]["Message"]
    if code == "ValidationException":
        assert response["reason"] == "OTHER"


def test_a_given_message_wins(shared: World) -> None:
    fault = {"operation": "ListCisScans", "error": "ValidationException", "message": "bad input"}
    response = _fail(shared, fault, shared.c.inspector.list_cis_scans)
    assert (response["Error"]["Message"], response["reason"]) == ("bad input", "OTHER")


def test_ssm_errors_carry_their_required_members(shared: World) -> None:
    fault = {"operation": "DescribeInstanceInformation", "error": "ServiceQuotaExceededException"}
    response = _fail(shared, fault, shared.c.ssm.describe_instance_information)
    assert {"QuotaCode", "ServiceCode"} <= set(response)


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("ListTagsForResource", lambda c: c.list_tags_for_resource(resourceArn=ARN)),
        ("TagResource", lambda c: c.tag_resource(resourceArn=ARN, tags={"k": "v"})),
        ("UntagResource", lambda c: c.untag_resource(resourceArn=ARN, tagKeys=["k"])),
    ],
)
def test_faults_reach_operations_with_slashed_arns_in_the_path(
    shared: World, operation: str, call: Any
) -> None:
    fault = {"operation": operation, "error": "ThrottlingException", "service": "inspector2"}
    response = _fail(shared, fault, lambda: call(shared.c.inspector))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
