"""Reading YAML/JSON documents and validating them against the JSON Schemas in ``pipeline/schemas``.

Every problem is reported as one line ``FILE: $.json.path: message``; all of them at once.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipeline.safeio import POLICY_MAX_BYTES, json_path
from pipeline.safeyaml import BoundedLoader, load_yaml

__all__ = ["json_path", "load_schema", "parse_document", "schema_problems"]


class _StrictLoader(BoundedLoader):
    """The bounded loader, keeping dates and dotted numbers as strings.

    ``expires: 2027-01-31`` must stay a string for the schema's ``format: date``, and
    ``check_id: 1.10`` must not become the float 1.1 (so ``.nan`` and ``.inf`` are strings too,
    which the schema rejects wherever a number is expected).
    """


_StrictLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:timestamp",
            "tag:yaml.org,2002:float",
        )
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_document(text: str, source: str, *, limit: int = POLICY_MAX_BYTES) -> Any:
    """Parse YAML (a superset of JSON) strictly and within bounds (``pipeline.safeio``).

    Raises ConfigError naming the file and the JSON path or line: syntax, duplicate keys,
    anchors/aliases, nesting deeper than ``safeio.MAX_DEPTH``, non-finite numbers, size.
    """
    return load_yaml(text, source, loader=_StrictLoader, limit=limit)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in ``pipeline/schemas`` (e.g. ``exceptions.schema.json``)."""
    text = resources.files("pipeline").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


def schema_problems(instance: Any, schema_name: str, source: str) -> list[str]:
    """Every schema violation as ``FILE: $.path: message``, sorted by path."""
    validator = Draft202012Validator(
        load_schema(schema_name), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors: list[ValidationError] = sorted(
        validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]
    )
    return [f"{source}: {json_path(e.absolute_path)}: {_message(e)}" for e in errors]


def _message(error: ValidationError) -> str:
    if error.validator == "format":
        return f"{error.instance!r} is not a valid {error.validator_value} (YYYY-MM-DD)"
    return error.message
