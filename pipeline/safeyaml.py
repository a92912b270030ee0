"""Bounded, strict YAML (policies, scenarios): ``safeio``'s rules for YAML documents. No
anchors, aliases or merge keys, bounded depth and size, finite floats, bounded ints, scalar
keys, no duplicate keys; every problem is one ``ConfigError("FILE: $.path: message")``.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.safeio import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MAX_YAML_VALUES,
    POLICY_MAX_BYTES,
    json_path,
    too_big,
)

MERGE_TAG = "tag:yaml.org,2002:merge"


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases or anchors, with bounded depth and size, finite floats,
    bounded ints, scalar keys and no duplicate keys; every refusal names the JSON path and line.

    Aliases are refused outright (not bounded): a 500-byte "billion laughs" document then stops
    at its first anchor, and no policy or scenario needs them. Merge keys (``<<``) are refused
    too: they add keys a reader of the file does not see where they apply.
    """

    max_depth = MAX_DEPTH
    max_values = MAX_YAML_VALUES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []
        self._values = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        collection = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        if parent is not None and index is None and collection:  # a key that is a collection
            self._refuse(event, "mapping keys must be plain values")
        step: str | int | None = None
        if isinstance(index, yaml.ScalarNode):
            step = index.value
        elif isinstance(index, int) and not isinstance(index, bool):
            step = index
        if step is not None:
            self._path.append(step)
        try:
            if isinstance(event, yaml.AliasEvent):
                self._refuse(event, f"alias *{event.anchor} is not allowed (no anchors or aliases)")
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                self._refuse(event, f"anchor &{anchor} is not allowed (no anchors or aliases)")
            if collection and len(self._path) >= self.max_depth:
                self._refuse(event, f"nested deeper than {self.max_depth} levels")
            self._values += 1
            if self._values > self.max_values:
                self._refuse(event, f"more than {self.max_values:,} values in one document")
            node = super().compose_node(parent, index)
            if isinstance(node, yaml.MappingNode):
                self._check_keys(node)
        finally:
            if step is not None:
                self._path.pop()
        return node

    def _check_keys(self, node: yaml.MappingNode) -> None:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._refuse(key_node, "mapping keys must be plain values", at_key=None)
            if key_node.tag == MERGE_TAG:  # `<<: {...}` copies keys in unseen, like an alias
                self._refuse(key_node, "merge key << is not allowed", at_key=key_node.value)
            key = (key_node.tag, key_node.value)
            if key in seen:
                self._refuse(key_node, f"duplicate key {key_node.value!r}", at_key=key_node.value)
            seen.add(key)

    def _refuse(self, item: Any, message: str, at_key: str | None = None) -> None:
        mark = item.start_mark
        path = json_path([*self._path, at_key] if at_key is not None else self._path)
        raise _Refused(f"{path}: {message} (line {mark.line + 1}, column {mark.column + 1})")

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise _Refused(
                f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: "
                f"{node.value!r} is not a finite number"
            )
        return value

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = len(str(node.value).lstrip("+-").replace("_", ""))
        if digits > MAX_INT_DIGITS:
            raise _Refused(
                f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: "
                f"integer of {digits:,} digits is too large"
            )
        return super().construct_yaml_int(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) != len(node.value):  # keys equal once constructed, e.g. 1.0 and 1.00
            raise _Refused(
                f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}: "
                "duplicate keys in this mapping"
            )
        return mapping


BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_yaml_float)
BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


class _Refused(Exception):
    """Raised inside the loader; ``load_yaml`` turns it into a ConfigError with the file name."""


def load_yaml(
    text: str,
    source: str,
    *,
    loader: type[BoundedLoader] = BoundedLoader,
    limit: int = POLICY_MAX_BYTES,
) -> Any:
    """Parse one YAML (or JSON) document with ``loader``; raise ConfigError naming the file."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ConfigError(too_big(source, "YAML", size, limit))
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "$"
        line = f"{source}: {where}: not valid YAML: {exc.problem or exc}"
        raise ConfigError(line, problems=[line]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: $: not valid YAML: {exc}") from exc
    except (RecursionError, ValueError, TypeError) as exc:  # defence in depth
        raise ConfigError(f"{source}: $: not valid YAML: {type(exc).__name__}") from exc
