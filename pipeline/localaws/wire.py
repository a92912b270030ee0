"""The HTTP side of the AWS protocols: who a request is for, and how answers are written back.

Owns identifying a request (SigV4 credential scope -> service and region; then the operation by
protocol: ``X-Amz-Target`` for json, ``Action`` for query/ec2, method + path from the model for
rest-json/rest-xml) and rendering results and errors the way each protocol's clients parse them
(rest-json: ``x-amzn-ErrorType``; json: ``__type``; query/ec2/rest-xml: XML error documents).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from pipeline.localaws import model

WsgiEnviron = dict[str, Any]

# Error codes botocore's standard retry mode treats as throttling; we send Retry-After with them.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)
# HTTP status of well-known codes a model does not declare (EC2 and IAM model no errors at all).
_DEFAULT_STATUS = {
    "RequestLimitExceeded": 503,
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "TooManyRequestsException": 429,
    "InternalError": 500,
    "InternalFailure": 500,
    "InternalServerError": 500,
    "InternalServerException": 500,
    "ServiceFailure": 500,
}
_CBOR_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")
_SCOPE = re.compile(r"Credential=[^/,\s]+/[0-9]{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")


class ServiceError(Exception):
    """An AWS error to send back: code, message, optional extra body members and Retry-After."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        fields: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})
        self.retry_after = retry_after


def validation_error(
    message: str, reason: str, fields: list[dict[str, str]] | None = None
) -> ServiceError:
    """inspector2's ValidationException (``reason`` in ValidationExceptionReason)."""
    body: dict[str, Any] = {"reason": reason}
    if fields:
        body["fields"] = fields
    return ServiceError("ValidationException", message, fields=body)


def fault_error(
    service: str | None, operation: str | None, code: str, message: str | None = None
) -> ServiceError:
    """A scenario fault as the service would send it: every member its model requires (e.g.
    inspector2 ValidationException ``reason``, ConflictException ``resourceId``), ``Retry-After``
    where the model declares that header (inspector2 Throttling/InternalServerException) or the
    code is a throttling one, and a message that fits the error."""
    shape = model.error_shape(service, code) if service else None
    fields: dict[str, Any] = {}
    retry_after = 1 if code in THROTTLING_CODES else None
    if shape is not None:
        required = set(shape.required_members)
        for name, member in shape.members.items():
            if member.serialization.get("location") == "header":
                if member.serialization.get("name", "").lower() == "retry-after":
                    retry_after = 1
            elif name.lower() != "message" and name in required:
                fields[name] = _filler(member)
    text = message or f"{_fault_message(code, service, operation)} (local AWS scenario fault)"
    return ServiceError(code, text, fields=fields, retry_after=retry_after)


def _filler(member: Any) -> Any:
    """A plausible value for a required error member of ``member``'s type."""
    enum = list(getattr(member, "enum", None) or [])
    if enum:
        return "OTHER" if "OTHER" in enum else enum[0]
    return {"integer": 1, "long": 1, "list": [], "structure": {}, "boolean": False}.get(
        member.type_name, "local-aws-fault"
    )


def _fault_message(code: str, service: str | None, operation: str | None) -> str:
    low = code.lower()
    action = f"{service or 'aws'}:{operation or 'the operation'}"
    if code in THROTTLING_CODES or "throttl" in low:
        return "Rate exceeded"
    if "limitexceeded" in low or "quota" in low:
        return f"Limit exceeded for {action}"
    if "accessdenied" in low or "unauthorized" in low:
        return f"User is not authorized to perform: {action}"
    if "validation" in low or low.startswith("invalid"):
        return f"1 validation error detected in the {action} request"
    if "notfound" in low or "nosuch" in low or "doesnotexist" in low:
        return f"The resource {action} addresses was not found"
    if "conflict" in low or "inuse" in low:
        return f"{action} conflicts with the current state of the resource"
    if "internal" in low or "unavailable" in low or "failure" in low:
        return "Internal server error; retry the request"
    return f"{code} from {action}"


@dataclass(frozen=True, slots=True)
class AwsRequest:
    """What the emulation needs to know about one incoming request."""

    method: str
    path: str
    query: str
    body: bytes
    host: str
    service: str | None = None  # SigV4 signing name, e.g. "inspector2"
    region: str | None = None
    operation: str | None = None  # botocore operation name, e.g. "ListCisScans"
    protocol: str | None = None  # rest-json | json | query | ec2 | rest-xml | smithy-rpc-v2-cbor
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def json(self) -> dict[str, Any]:
        """The JSON body (``{}`` when empty); a malformed body is the service's parse error."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise validation_error(f"Could not parse request body: {exc}", "CANNOT_PARSE") from exc
        if not isinstance(value, dict):
            raise validation_error("Request body must be a JSON object", "CANNOT_PARSE")
        return value


def read_request(environ: WsgiEnviron) -> AwsRequest:
    """Identify a request; its body is read and put back so moto can read it again."""
    body = _read_body(environ)
    query = environ.get("QUERY_STRING", "")
    service, region = _scope(environ.get("HTTP_AUTHORIZATION", ""), query)
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    operation, protocol = _operation(environ, service, method, path, query, body)
    return AwsRequest(
        method=method,
        path=path,
        query=query,
        body=body,
        host=environ.get("HTTP_HOST", ""),
        service=service,
        region=region,
        operation=operation,
        protocol=protocol,
    )


def _read_body(environ: WsgiEnviron) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _scope(authorization: str, query: str) -> tuple[str | None, str | None]:
    found = _SCOPE.search(authorization)
    if found is None and "X-Amz-Credential" in query:  # presigned URL
        credential = parse_qs(query).get("X-Amz-Credential", [""])[0]
        found = _SCOPE.search(f"Credential={credential}")
    if found is None:
        return None, None
    return found.group(2), found.group(1)


def _operation(
    environ: WsgiEnviron, service: str | None, method: str, path: str, query: str, body: bytes
) -> tuple[str | None, str | None]:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1], "json"
    cbor = _CBOR_PATH.match(path)
    if cbor:
        return cbor.group(1), "smithy-rpc-v2-cbor"
    action = _action(environ, query, body)
    if action:  # EC2's own dialect of the query protocol, or the query protocol (IAM, STS, ...)
        return action, "ec2" if service == "ec2" else "query"
    svc = model.service(service) if service else None
    if svc is None or service is None:
        return None, None
    keys = parse_qs(query, keep_blank_values=True).keys()
    return model.rest_operation(service, method, _raw_path(environ, path), keys), svc.protocol


def _raw_path(environ: WsgiEnviron, path: str) -> str:
    """The path as sent, before the server decoded it: an ARN label's slashes arrive as ``%2F``
    (e.g. ``/tags/arn%3Aaws%3Ainspector2%3A...%3Aowner%2F1234...``) and must not split it."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not isinstance(raw, str) or not raw.startswith("/"):
        return path
    return raw.split("?", 1)[0]


def _action(environ: WsgiEnviron, query: str, body: bytes) -> str | None:
    content_type = environ.get("CONTENT_TYPE", "")
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        found = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if found:
            return found[0]
    found = parse_qs(query).get("Action")
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def send(self, start_response: Any) -> list[bytes]:
        phrase = HTTPStatus(self.status).phrase
        headers = [*self.headers, ("Content-Length", str(len(self.body)))]
        start_response(f"{self.status} {phrase}", headers)
        return [self.body]


_CONTENT_TYPES = {"rest-json": "application/json", "json": "application/x-amz-json-1.1"}


def result(
    protocol: str, payload: Mapping[str, Any], request_id: str, status: int = 200
) -> HttpResponse:
    """A successful JSON-protocol response (the emulated operations are rest-json or json)."""
    headers = (
        ("Content-Type", _CONTENT_TYPES.get(protocol, "application/json")),
        ("x-amzn-RequestId", request_id),
    )
    return HttpResponse(status, headers, json.dumps(payload, separators=(",", ":")).encode())


def plain(status: int, payload: Any, content_type: str = "application/json") -> HttpResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, indent=1).encode()
    return HttpResponse(status, (("Content-Type", content_type),), body)


def status_of(error: ServiceError, service: str | None) -> int:
    if error.status is not None:
        return error.status
    modelled = model.error_status(service, error.code) if service else None
    if modelled is not None:
        return modelled
    if error.code in _DEFAULT_STATUS:
        return _DEFAULT_STATUS[error.code]
    return 400


def error(
    protocol: str | None, service: str | None, err: ServiceError, request_id: str
) -> HttpResponse:
    """Render ``err`` the way clients of ``protocol`` parse errors."""
    status = status_of(err, service)
    retry_after = err.retry_after
    if retry_after is None and err.code in THROTTLING_CODES:
        retry_after = 1
    headers: list[tuple[str, str]] = [("x-amzn-RequestId", request_id)]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    render = _RENDERERS.get(protocol or "rest-json", _rest_json)
    content_type, body = render(err, request_id, status)
    headers.append(("Content-Type", content_type))
    if protocol in (None, "rest-json"):
        headers.append(("x-amzn-ErrorType", err.code))
    return HttpResponse(status, tuple(headers), body)


def _rest_json(err: ServiceError, request_id: str, status: int) -> tuple[str, bytes]:
    return "application/json", json.dumps({"message": err.message, **err.fields}).encode()


def _json(err: ServiceError, request_id: str, status: int) -> tuple[str, bytes]:
    body = {"__type": err.code, "message": err.message, **err.fields}
    return "application/x-amz-json-1.1", json.dumps(body).encode()


def _query(err: ServiceError, request_id: str, status: int) -> tuple[str, bytes]:
    kind = "Sender" if status < 500 else "Receiver"
    xml = (
        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(err.code)}</Code>"
        f"<Message>{escape(err.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return "text/xml", xml.encode()


def _ec2(err: ServiceError, request_id: str, status: int) -> tuple[str, bytes]:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(err.code)}</Code>"
        f"<Message>{escape(err.message)}</Message></Error></Errors>"
        f"<RequestID>{request_id}</RequestID></Response>"
    )
    return "text/xml", xml.encode()


def _rest_xml(err: ServiceError, request_id: str, status: int) -> tuple[str, bytes]:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return "application/xml", xml.encode()


_RENDERERS = {
    "rest-json": _rest_json,
    "json": _json,
    "query": _query,
    "ec2": _ec2,
    "rest-xml": _rest_xml,
}
