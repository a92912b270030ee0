"""Reading YAML/JSON documents and validating them against the JSON Schemas in ``pipeline/schemas``.

Every problem is reported as one line ``FILE: $.json.path: message``; all of them at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipeline.errors import ConfigError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Iterable[str | int]) -> str:
    """``['exceptions', 3, 'expires']`` → ``$.exceptions[3].expires``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates and dotted numbers as strings and rejects duplicate keys.

    ``expires: 2027-01-31`` must stay a string for the schema's ``format: date``, and
    ``check_id: 1.10`` must not become the float 1.1.
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


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def parse_document(text: str, source: str) -> Any:
    """Parse YAML (a superset of JSON) strictly; raise ConfigError naming the file and line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "$"
        raise ConfigError(
            f"{source}: {where}: not valid YAML: {exc.problem or exc}",
            problems=[f"{source}: {where}: not valid YAML: {exc.problem or exc}"],
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: $: not valid YAML: {exc}") from exc


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
