"""Out-of-model requests that botocore lets through get the service's ValidationException;
unknown resources get ResourceNotFoundException; a malformed body is CANNOT_PARSE."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

World = Any
SCHEDULE = {"oneTime": {}}
TARGETS = {"accountIds": ["SELF"], "targetResourceTags": {"k": ["v"]}}
OWNER = "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012"
SCAN = f"{OWNER}/cis-scan/00000000-0000-4000-8000-000000000000"


def create(**overrides: Any) -> dict[str, Any]:
    return {
        "scanName": "x",
        "securityLevel": "LEVEL_1",
        "schedule": SCHEDULE,
        "targets": TARGETS,
        **overrides,
    }


# (name, client method, parameters, field named in the error, constraint words)
CASES = [
    (
        "maxResults above the model's 100",
        "list_cis_scans",
        {"maxResults": 500},
        "maxResults",
        "less than or equal to 100",
    ),
    (
        "details maxResults above 1000",
        "get_cis_scan_result_details",
        {
            "scanArn": SCAN,
            "targetResourceId": "i-0123456789abcdef0",
            "accountId": "123456789012",
            "maxResults": 1001,
        },
        "maxResults",
        "less than or equal to 1000",
    ),
    (
        "aggregation maxResults above 100",
        "list_cis_scan_results_aggregated_by_checks",
        {"scanArn": SCAN, "maxResults": 101},
        "maxResults",
        "less than or equal to 100",
    ),
    (
        "securityLevel LEVEL_3",
        "create_cis_scan_configuration",
        create(securityLevel="LEVEL_3"),
        "securityLevel",
        "enum value set: [LEVEL_1, LEVEL_2]",
    ),
    (
        "six target tag keys",
        "create_cis_scan_configuration",
        create(
            targets={
                "accountIds": ["SELF"],
                "targetResourceTags": {f"k{i}": ["v"] for i in range(6)},
            }
        ),
        "targets.targetResourceTags",
        "length less than or equal to 5",
    ),
    (
        "six values for one key",
        "create_cis_scan_configuration",
        create(
            targets={
                "accountIds": ["SELF"],
                "targetResourceTags": {"k": [str(i) for i in range(6)]},
            }
        ),
        "targets.targetResourceTags.k",
        "length less than or equal to 5",
    ),
    (
        "tag key outside its pattern",
        "create_cis_scan_configuration",
        create(targets={"accountIds": ["SELF"], "targetResourceTags": {"bad#key": ["v"]}}),
        "targets.targetResourceTags",
        "Map keys must satisfy constraint",
    ),
    (
        "timeOfDay 25:00",
        "create_cis_scan_configuration",
        create(schedule={"daily": {"startTime": {"timeOfDay": "25:00", "timezone": "UTC"}}}),
        "schedule.daily.startTime.timeOfDay",
        "regular expression pattern",
    ),
    (
        "account id not 12 digits",
        "create_cis_scan_configuration",
        create(targets={"accountIds": ["ME"], "targetResourceTags": {"k": ["v"]}}),
        "targets.accountIds.1.member",
        "regular expression pattern",
    ),
    (
        "scanName longer than 128",
        "create_cis_scan_configuration",
        create(scanName="x" * 129),
        "scanName",
        "length less than or equal to 128",
    ),
    (
        "weekday outside the enum",
        "create_cis_scan_configuration",
        create(
            schedule={
                "monthly": {"startTime": {"timeOfDay": "01:00", "timezone": "UTC"}, "day": "MONDAY"}
            }
        ),
        "schedule.monthly.day",
        "enum value set",
    ),
    (
        "configuration ARN outside its pattern",
        "delete_cis_scan_configuration",
        {"scanConfigurationArn": "arn:aws:inspector2:nowhere"},
        "scanConfigurationArn",
        "regular expression pattern",
    ),
    (
        "two scanAt filters (max 1)",
        "list_cis_scans",
        {"filterCriteria": {"scanAtFilters": [{}, {}]}},
        "filterCriteria.scanAtFilters",
        "length less than or equal to 1",
    ),
    (
        "resource type outside the enum",
        "enable",
        {"resourceTypes": ["EC2", "EKS"]},
        "resourceTypes.2.member",
        "enum value set",
    ),
    (
        "accountId of letters",
        "get_cis_scan_result_details",
        {"scanArn": SCAN, "targetResourceId": "i-0123456789abcdef0", "accountId": "abcdefghijkl"},
        "accountId",
        "regular expression pattern",
    ),
]


@pytest.mark.parametrize(
    ("method", "params", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_out_of_model_values_are_a_validation_exception(
    shared: World, method: str, params: dict, field: str, words: str
) -> None:
    with pytest.raises(ClientError) as caught:
        getattr(shared.c.inspector, method)(**params)
    response = caught.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    assert field in [f["name"] for f in response["fields"]]
    assert words in response["Error"]["Message"]
    assert response["Error"]["Message"].startswith("1 validation error detected: Value ")


def test_ssm_max_results_above_50_is_a_validation_exception(shared: World) -> None:
    with pytest.raises(ClientError) as caught:
        shared.c.ssm.describe_instance_information(MaxResults=51)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 50" in caught.value.response["Error"]["Message"]


def test_unknown_resources_are_not_found(world: World) -> None:
    errors = world.c.inspector.exceptions
    config = SCAN.replace("cis-scan", "cis-configuration")
    with pytest.raises(errors.ResourceNotFoundException):
        world.c.inspector.get_cis_scan_report(scanArn=SCAN)
    with pytest.raises(errors.ResourceNotFoundException):
        world.c.inspector.update_cis_scan_configuration(scanConfigurationArn=config, scanName="y")
    west = world.client(world.aws.endpoint, "inspector2", region="us-west-2")
    arn = world.create()
    with pytest.raises(west.exceptions.ResourceNotFoundException):  # configurations are regional
        west.delete_cis_scan_configuration(scanConfigurationArn=arn)


def _post(world: World, path: str, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    scope = "Credential=testing/20260101/us-east-1/inspector2/aws4_request"
    request = urllib.request.Request(
        world.aws.endpoint + path,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.load(err)


def test_malformed_body_is_cannot_parse_and_wrong_types_are_rejected(shared: World) -> None:
    world = shared
    status, headers, body = _post(world, "/cis/scan/list", b"{not json")
    assert (status, headers["x-amzn-ErrorType"], body["reason"]) == (
        400,
        "ValidationException",
        "CANNOT_PARSE",
    )
    status, _, body = _post(world, "/cis/scan/list", json.dumps({"maxResults": "ten"}).encode())
    assert status == 400 and "maxResults" in body["message"]
    status, _, body = _post(
        world, "/cis/scan-configuration/create", json.dumps(create(schedule={})).encode()
    )
    assert status == 400 and "exactly one member" in body["message"]
