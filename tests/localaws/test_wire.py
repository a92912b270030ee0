"""Identifying requests (service, region, operation, protocol) and rendering errors per protocol."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from pipeline.localaws import model, wire
from pipeline.localaws.wire import ServiceError


def environ(service: str, path: str = "/", body: bytes = b"", **headers: str) -> dict[str, Any]:
    scope = f"Credential=testing/20260101/eu-west-1/{service}/aws4_request"
    env = {
        "REQUEST_METHOD": headers.pop("method", "POST"),
        "PATH_INFO": path,
        "QUERY_STRING": headers.pop("query", ""),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": headers.pop("content_type", "application/json"),
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, Signature=0",
        "HTTP_HOST": "127.0.0.1:1234",
        "wsgi.input": io.BytesIO(body),
    }
    env.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return env


FORM = "application/x-www-form-urlencoded; charset=utf-8"
IDENTIFY = [
    (
        "rest-json",
        environ("inspector2", "/cis/scan/list", b"{}"),
        "inspector2",
        "ListCisScans",
        "rest-json",
    ),
    (
        "rest-json, other path",
        environ("inspector2", "/status/batch/get", b"{}"),
        "inspector2",
        "BatchGetAccountStatus",
        "rest-json",
    ),
    (
        "json target",
        environ("ssm", body=b"{}", x_amz_target="AmazonSSM.DescribeInstanceInformation"),
        "ssm",
        "DescribeInstanceInformation",
        "json",
    ),
    (
        "ec2 form",
        environ("ec2", body=b"Action=RunInstances&Version=2016-11-15", content_type=FORM),
        "ec2",
        "RunInstances",
        "ec2",
    ),
    (
        "query form",
        environ("iam", body=b"Action=ListRoles&Version=2010-05-08", content_type=FORM),
        "iam",
        "ListRoles",
        "query",
    ),
    (
        "rest-xml with query key",
        environ("s3", "/bucket", method="GET", query="tagging="),
        "s3",
        "GetBucketTagging",
        "rest-xml",
    ),
    (
        "rest-json, unknown path",
        environ("inspector2", "/nowhere", b"{}"),
        "inspector2",
        None,
        "rest-json",
    ),
]


@pytest.mark.parametrize(
    ("env", "service", "operation", "protocol"),
    [c[1:] for c in IDENTIFY],
    ids=[c[0] for c in IDENTIFY],
)
def test_identify(env: dict[str, Any], service: str, operation: str | None, protocol: str) -> None:
    request = wire.read_request(env)
    assert (request.service, request.region, request.operation, request.protocol) == (
        service,
        "eu-west-1",
        operation,
        protocol,
    )
    assert env["wsgi.input"].read() == request.body  # put back for moto


def test_unsigned_request_has_no_service() -> None:
    env = environ("x")
    del env["HTTP_AUTHORIZATION"]
    request = wire.read_request(env)
    assert (request.service, request.region, request.operation) == (None, None, None)


def _error(protocol: str, service: str, code: str, **kwargs: Any) -> wire.HttpResponse:
    return wire.error(protocol, service, ServiceError(code, "nope <&>", **kwargs), "req-1")


def test_rest_json_error() -> None:
    response = _error("rest-json", "inspector2", "ThrottlingException")
    headers = dict(response.headers)
    assert (response.status, headers["x-amzn-ErrorType"], headers["Retry-After"]) == (
        429,
        "ThrottlingException",
        "1",
    )
    assert json.loads(response.body) == {"message": "nope <&>"}


def test_json_error() -> None:
    response = _error("json", "ssm", "InvalidFilterKey")
    assert response.status == 400
    assert json.loads(response.body) == {"__type": "InvalidFilterKey", "message": "nope <&>"}


@pytest.mark.parametrize(
    ("protocol", "service", "code", "status", "path"),
    [
        ("ec2", "ec2", "RequestLimitExceeded", 503, "./Errors/Error/Code"),
        ("query", "iam", "Throttling", 400, "./Error/Code"),
        ("query", "sts", "InternalFailure", 500, "./Error/Code"),
        ("rest-xml", "s3", "SlowDown", 503, "./Code"),
    ],
)
def test_xml_errors(protocol: str, service: str, code: str, status: int, path: str) -> None:
    response = _error(protocol, service, code)
    assert response.status == status
    root = ET.fromstring(response.body)
    assert root.findtext(path) == code
    assert "nope <&>" in ET.tostring(root, encoding="unicode").replace("&lt;", "<").replace(
        "&gt;", ">"
    ).replace("&amp;", "&")


def test_page_limits_come_from_the_model() -> None:
    assert model.page_limit("inspector2", "ListCisScans", "scans") == 50
    assert model.page_limit("inspector2", "GetCisScanResultDetails", "scanResultDetails") == 1000
    assert (
        model.page_limit("inspector2", "ListCisScanResultsAggregatedByChecks", "checkAggregations")
        == 100
    )


def test_java_patterns_are_matched_whole() -> None:
    key = model.require_service("inspector2").shape_for("TargetResourceTagsKey")
    assert model.check(key, "cis-scan:run/1=é ok@x") == []
    assert model.check(key, "bad#key") != []
    time_of_day = model.require_service("inspector2").shape_for("TimeOfDay")
    assert model.check(time_of_day, "9:05") == []
    assert model.check(time_of_day, "09:05 and more") != []
