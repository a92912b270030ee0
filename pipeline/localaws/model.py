"""botocore's service models as the emulation's source of truth: routes, enums, limits, validation.

Owns the wire rules the emulated operations must follow exactly: which HTTP method and path is
which operation, what a valid request is (required members, types, enums, lengths, ranges,
patterns, unions: what a real service checks server-side, including the maximums, enums and
patterns botocore does not check client-side) and what a valid response is (``check(...,
output=True)`` also rejects members the model does not know; the contract tests use it).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import botocore.session

# botocore's patterns are Java regular expressions (e.g. ``[\p{L}\p{Z}\p{N}_.:/=\-@]*``), which
# the standard ``re`` cannot compile; the ``regex`` package (a moto[server] dependency) can.
import regex  # type: ignore[import-untyped]
from botocore.exceptions import UnknownServiceError
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.cache
def service(name: str) -> ServiceModel | None:
    """The model of ``name`` (a botocore service name or signing name), or None if unknown."""
    try:
        return _session().get_service_model(name)
    except UnknownServiceError:
        return None


def require_service(name: str) -> ServiceModel:
    model = service(name)
    if model is None:
        raise LookupError(f"botocore has no service model named {name!r}")
    return model


def operation(service_name: str, name: str) -> OperationModel:
    return require_service(service_name).operation_model(name)


def has_operation(service_name: str, name: str) -> bool:
    model = service(service_name)
    return model is not None and name in model.operation_names


def enum(service_name: str, shape_name: str) -> tuple[str, ...]:
    """The enum values of a string shape, in model order."""
    shape = require_service(service_name).shape_for(shape_name)
    return tuple(shape.metadata["enum"])


def max_value(service_name: str, shape_name: str) -> int:
    return int(require_service(service_name).shape_for(shape_name).metadata["max"])


def error_status(service_name: str, code: str) -> int | None:
    """The HTTP status the model gives error ``code`` (``error.httpStatusCode``), if any."""
    model = service(service_name)
    if model is None:
        return None
    for shape in model.error_shapes:
        if shape.name == code:
            status = shape.metadata.get("error", {}).get("httpStatusCode")
            return int(status) if status is not None else None
    return None


def error_shape(service_name: str, code: str) -> StructureShape | None:
    """The model's shape of error ``code`` (its members: required ones, headers), if modelled."""
    model = service(service_name)
    if model is None:
        return None
    for shape in model.error_shapes:
        if shape.name == code and isinstance(shape, StructureShape):
            return shape
    return None


# ---------------------------------------------------------------------------------------------
# REST routing: (method, path) -> operation name, from each operation's ``http.requestUri``.


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    path: re.Pattern[str]
    query_keys: frozenset[str]
    literal_chars: int
    operation: str


def _route(op: OperationModel) -> _Route:
    uri: str = op.http["requestUri"]
    path, _, query = uri.partition("?")
    parts: list[str] = []
    literal = 0
    for token in re.split(r"(\{[^}]+\})", path):
        if token.startswith("{"):
            parts.append(".+" if token.endswith("+}") else "[^/]+")
        else:
            parts.append(re.escape(token))
            literal += len(token)
    keys = frozenset(q.split("=", 1)[0] for q in query.split("&") if q)
    return _Route(op.http["method"], re.compile("".join(parts) + "/?$"), keys, literal, op.name)


@functools.cache
def _routes(service_name: str) -> tuple[_Route, ...]:
    model = require_service(service_name)
    return tuple(_route(model.operation_model(name)) for name in model.operation_names)


def rest_operation(
    service_name: str, method: str, path: str, query_keys: Iterable[str]
) -> str | None:
    """The operation a REST request addresses; the most literal matching route wins."""
    present = set(query_keys)
    best: _Route | None = None
    for route in _routes(service_name):
        if route.method != method or not route.query_keys <= present:
            continue
        if not route.path.match(path):
            continue
        rank = (len(route.query_keys), route.literal_chars)
        if best is None or rank > (len(best.query_keys), best.literal_chars):
            best = route
    return best.operation if best else None


# ---------------------------------------------------------------------------------------------
# Validation of values against shapes.


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken constraint, worded like the services' own ValidationException messages."""

    path: str
    message: str

    def __str__(self) -> str:
        return self.message


def describe(violations: list[Violation]) -> str:
    """``1 validation error detected: ...`` as AWS services word it."""
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(v.message for v in violations)


def check(shape: Shape | None, value: Any, *, output: bool = False) -> list[Violation]:
    """Every constraint of ``shape`` that ``value`` breaks (empty list: valid).

    ``output=True`` checks a response: members unknown to the model and JSON nulls are errors.
    Timestamps may be epoch numbers (the wire) or datetimes (botocore's parsed output).
    """
    problems: list[Violation] = []
    if shape is not None:
        _Checker(output, problems).visit(shape, value, "")
    return problems


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return str(value)


@functools.cache
def _pattern(pattern: str) -> Any:
    try:
        return regex.compile(pattern)
    except regex.error:  # a Java-only construct: do not invent a verdict
        return None


class _Checker:
    def __init__(self, output: bool, problems: list[Violation]) -> None:
        self.output = output
        self.problems = problems

    def fail(self, path: str, value: Any, constraint: str) -> None:
        where = path or "input"
        shown = "null" if value is None else f"'{_show(value)}'"
        self.problems.append(
            Violation(
                where, f"Value {shown} at '{where}' failed to satisfy constraint: {constraint}"
            )
        )

    def visit(self, shape: Shape, value: Any, path: str) -> None:
        visitor = getattr(self, f"_{shape.type_name}", None)
        if visitor is None:
            return
        visitor(shape, value, path)

    def _structure(self, shape: Shape, value: Any, path: str) -> None:
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            self.fail(path, value, "Member must be a structure")
            return
        members = shape.members
        if shape.metadata.get("union"):
            set_members = [k for k, v in value.items() if v is not None and k in members]
            if len(set_members) != 1:
                self.fail(path, value, "Member must have exactly one member set (union)")
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(_join(path, name), None, "Member must not be null")
        for name, member_value in value.items():
            member = members.get(name)
            if member is None:
                if self.output and name != "ResponseMetadata":
                    self.fail(_join(path, name), member_value, "Member is not in the model")
                continue
            if member_value is None:
                if self.output:
                    self.fail(_join(path, name), None, "Member must not be JSON null")
                continue
            self.visit(member, member_value, _join(path, name))

    def _list(self, shape: Shape, value: Any, path: str) -> None:
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            self.fail(path, value, "Member must be a list")
            return
        self._size(shape, value, path, "length")
        for index, item in enumerate(value, start=1):
            self.visit(shape.member, item, f"{path}.{index}.member")

    def _map(self, shape: Shape, value: Any, path: str) -> None:
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            self.fail(path, value, "Member must be a map")
            return
        self._size(shape, value, path, "length")
        for key, item in value.items():
            key_problems = check(shape.key, key)
            for problem in key_problems:
                constraint = problem.message.split("constraint: ", 1)[-1]
                self.fail(path, value, f"Map keys must satisfy constraint: [{constraint}]")
            self.visit(shape.value, item, f"{path}.{key}")

    def _string(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.fail(path, value, "Member must be a string")
            return
        self._size(shape, value, path, "length")
        allowed = shape.metadata.get("enum")
        if allowed and value not in allowed:
            self.fail(path, value, f"Member must satisfy enum value set: [{', '.join(allowed)}]")
        pattern = shape.metadata.get("pattern")
        compiled = _pattern(pattern) if pattern else None
        if compiled is not None and compiled.fullmatch(value) is None:
            self.fail(path, value, f"Member must satisfy regular expression pattern: {pattern}")

    def _integer(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, value, "Member must be an integer")
            return
        self._size(shape, value, path, "value")

    _long = _integer

    def _float(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, value, "Member must be a number")

    _double = _float

    def _boolean(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            self.fail(path, value, "Member must be a boolean")

    def _timestamp(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float | dt.datetime):
            self.fail(path, value, "Member must be a timestamp")

    def _blob(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, str | bytes):
            self.fail(path, value, "Member must be a blob")

    def _size(self, shape: Shape, value: Any, path: str, what: str) -> None:
        size = value if what == "value" else len(value)
        low = shape.metadata.get("min")
        high = shape.metadata.get("max")
        if low is not None and size < low:
            self.fail(path, value, f"Member must have {what} greater than or equal to {low}")
        if high is not None and size > high:
            self.fail(path, value, f"Member must have {what} less than or equal to {high}")


def page_limit(service_name: str, operation_name: str, result_key: str) -> int:
    """The most items one page may hold: ``maxResults``' max, capped by the result list's max.

    (ListCisScans accepts maxResults up to 100, but its ``scans`` list holds at most 50.)
    """
    op = operation(service_name, operation_name)
    limits = []
    for shape, member in ((op.input_shape, "maxResults"), (op.output_shape, result_key)):
        if isinstance(shape, StructureShape) and member in shape.members:
            high = shape.members[member].metadata.get("max")
            if high is not None:
                limits.append(int(high))
    if not limits:
        raise LookupError(f"{service_name}.{operation_name}: no page limit in the model")
    return min(limits)


def may_omit_empty(service_name: str, operation_name: str, result_key: str) -> bool:
    """True when the result list has ``min >= 1``: an empty page must leave the key out."""
    shape = operation(service_name, operation_name).output_shape
    assert isinstance(shape, StructureShape)
    return int(shape.members[result_key].metadata.get("min", 0)) >= 1
