"""Bounded, strict reading of the JSON and YAML files users and scans supply.

Every reader of results, policies and scenarios goes through here: size checked before the
whole file is read, nesting depth bounded, duplicate keys, NaN/Infinity, huge integers and YAML
aliases rejected. Every problem is one ``ConfigError("FILE: $.json.path: message")`` (exit 2).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

MIB = 1024 * 1024
RESULTS_MAX_BYTES = 256 * MIB  # 1,000 instances x 243 checks is 75 MiB of results
POLICY_MAX_BYTES = 1 * MIB  # scenarios: pipeline.localaws.scenario.MAX_BYTES (256 KiB)
MAX_DEPTH = 64  # nesting of arrays/objects (JSON) or sequences/mappings (YAML)
MAX_INT_DIGITS = 64  # far below Python's int-str limit (4300 digits), far above any real count
# JSON values a document may hold (counted cheaply from its commas and brackets, strings
# included, so an upper bound): 4x the 1,000-instance benchmark (2M values, 244k objects).
# Memory, not size, is the limit that matters: 256 MiB of "[{},{},..." is 5 GB of dicts.
MAX_JSON_VALUES = 8_000_000
MAX_JSON_CONTAINERS = 1_000_000
# PyYAML is pure Python (~50-100 us a value): 1 MiB of "[1,1,..." would take half a minute. The
# shipped policies have under 250 values, the biggest scenario under 100.
MAX_YAML_VALUES = 20_000

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


# ---------------------------------------------------------------- reading


def read_bytes(path: str | Path, *, limit: int, what: str) -> bytes:
    """The file's bytes, refusing one larger than ``limit`` before reading it all.

    The size is checked on the open descriptor (no race with a swapped file) and the read is
    bounded too; FIFOs, devices and sockets are refused without blocking. Raises ConfigError.
    """
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not hang; only regular files are read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{source}: $: {what} is not a regular file")
            if info.st_size > limit:
                raise ConfigError(_too_big(source, what, info.st_size, limit))
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {what}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ConfigError(_too_big(source, what, None, limit))
    return data


def _too_big(source: str, what: str, size: int | None, limit: int) -> str:
    got = f"{size:,} bytes" if size is not None else "more bytes"
    return f"{source}: $: {what} file is too large ({got}; the limit is {limit:,} bytes)"


def decode(data: bytes, source: str) -> str:
    """Strict UTF-8 (a BOM is tolerated); invalid bytes are a ConfigError naming the offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: $: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start})"
        ) from exc


def read_text(path: str | Path, *, limit: int, what: str) -> str:
    """``read_bytes`` then ``decode``: bounded, strict UTF-8 text of a file."""
    return decode(read_bytes(path, limit=limit, what=what), str(path))


# ---------------------------------------------------------------- JSON


class _Bad:
    """A value the JSON parser met that is not allowed; found and named by path afterwards."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _DuplicateKeys(dict[str, Any]):
    """An object that had a key more than once (the parser hook cannot know the path)."""

    duplicates: tuple[str, ...] = ()


_QUOTED = re.compile(rb'"[^"]*"')
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def json_too_deep(data: bytes, limit: int = MAX_DEPTH) -> int | None:
    """Offset of the first bracket nested deeper than ``limit``, else None. No recursion.

    Fast path, all in C: drop escaped backslashes and quotes, keep only quotes and brackets,
    drop strings, then peel the innermost pairs, one level a round; balanced input of depth
    d is empty after exactly d rounds. Only input that is deep or malformed gets the exact
    scan, which stops at the first bracket too deep.
    """
    # Drop escaped backslashes, then escaped quotes: every '"' left delimits a string.
    has_escapes = b"\\" in data
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"") if has_escapes else data
    # Quotes alternate open/close, so dropping any adjacent pair '""' drops an empty string or
    # joins two strings with nothing structural between them; few quotes are left for the regex.
    flat = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    skeleton = _QUOTED.sub(b"", flat).translate(_ONE_KIND)  # depth ignores the bracket kind
    for _ in range(limit):
        if not skeleton:
            return None
        shorter = skeleton.replace(b"[]", b"")  # one level a round: new pairs wait
        if len(shorter) == len(skeleton):
            break
        skeleton = shorter
    if not skeleton:
        return None
    depth = 0
    for match in _TOKEN.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return match.start()
        elif token in (b"]", b"}"):
            depth -= 1
    return None  # merely malformed: the JSON parser says where


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dupes: list[str] = []
    for key, value in pairs:
        if key in out:
            dupes.append(key)
        out[key] = value
    if dupes:
        flagged = _DuplicateKeys(out)
        flagged.duplicates = tuple(dict.fromkeys(dupes))
        return flagged
    return out


def _constant(name: str) -> _Bad:
    return _Bad(f"{name} is not allowed (numbers must be finite)")


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad(f"{text} is not a finite number")


def _int(text: str) -> int | _Bad:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Bad(f"integer of {len(text.lstrip('-')):,} digits is too large")
    return int(text)


def _walk(document: Any) -> Iterator[tuple[list[str | int], Any]]:
    """Every value with its path, depth-first, without recursion."""
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            stack.extend((path + [k], v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((path + [i], v) for i, v in reversed(list(enumerate(value))))


def parse_json(data: bytes | str, source: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON strictly; raise ConfigError naming the file and the JSON path (or line)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    text = data if isinstance(data, str) else decode(data, source)
    values, containers = raw.count(b",") + 1, raw.count(b"[") + raw.count(b"{")
    if values > MAX_JSON_VALUES:
        raise ConfigError(
            f"{source}: $: too many values ({values:,}; the limit is {MAX_JSON_VALUES:,})"
        )
    if containers > MAX_JSON_CONTAINERS:
        raise ConfigError(
            f"{source}: $: too many arrays and objects ({containers:,}; the limit is "
            f"{MAX_JSON_CONTAINERS:,})"
        )
    offset = json_too_deep(raw, max_depth)
    if offset is not None:
        line = raw.count(b"\n", 0, offset) + 1
        column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
        raise ConfigError(
            f"{source}: line {line}, column {column}: nested deeper than {max_depth} levels"
        )
    flagged = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal flagged
        out = _pairs(items)
        flagged = flagged or isinstance(out, _DuplicateKeys)
        return out

    def bad(make: Any) -> Any:
        def hook(token: str) -> Any:
            nonlocal flagged
            value = make(token)
            flagged = flagged or isinstance(value, _Bad)
            return value

        return hook

    try:
        document = json.loads(
            text,
            object_pairs_hook=pairs,
            parse_constant=bad(_constant),
            parse_float=bad(_float),
            parse_int=bad(_int),
        )
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
        ) from exc
    except (RecursionError, ValueError) as exc:  # defence in depth; the checks above catch these
        raise ConfigError(f"{source}: $: not valid JSON: {type(exc).__name__}") from exc
    if flagged:
        problems = list(_json_problems(document, source))
        if problems:
            raise ConfigError(problems[0], problems=problems)
    return document


def _json_problems(document: Any, source: str) -> Iterator[str]:
    for path, value in _walk(document):
        if isinstance(value, _DuplicateKeys):
            for key in value.duplicates:
                where = json_path([*path, key])
                yield f"{source}: {where}: duplicate key {key!r}"
        elif isinstance(value, _Bad):
            yield f"{source}: {json_path(path)}: {value.message}"


def load_json(path: str | Path, *, limit: int, what: str) -> Any:
    """Read and parse a JSON file with every bound above. Raises ConfigError (exit 2)."""
    return parse_json(read_bytes(path, limit=limit, what=what), str(path))


# ---------------------------------------------------------------- YAML


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases or anchors, with bounded depth and size, finite floats,
    bounded ints, scalar keys and no duplicate keys; every refusal names the JSON path and line.

    Aliases are refused outright (not bounded): a 500-byte "billion laughs" document then stops
    at its first anchor, and no policy or scenario needs them.
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
        raise ConfigError(_too_big(source, "YAML", size, limit))
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
