"""Bounded, strict reading of the JSON and YAML files users and scans supply (YAML: ``safeyaml``).

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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

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
                raise ConfigError(too_big(source, what, info.st_size, limit))
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {what}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ConfigError(too_big(source, what, None, limit))
    return data


def too_big(source: str, what: str, size: int | None, limit: int) -> str:
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
    # Quotes alternate open/close, so dropping any adjacent pair '""' drops an empty string or
    # joins two strings with nothing structural between them; few quotes are left for the regex.
    flat = _structure(data).replace(b'""', b"")
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


_SLICE = MIB


def _structure(data: bytes) -> bytes:
    """The quotes and brackets of ``data`` once escaped backslashes and then escaped quotes are
    dropped: every '"' left delimits a string. Other escapes (``\\u2019``) change nothing, as
    backslashes are dropped with the rest. Escaped quotes or backslashes are dropped a slice at
    a time, not in a copy of the whole file (or two): a slice never ends in a backslash, so
    each run of backslashes and the byte after it fall in one slice and pair up as in the
    whole."""
    if b"\\\\" not in data and b'\\"' not in data:
        return data.translate(None, _NOT_STRUCTURE)
    parts = []
    start = 0
    while start < len(data):
        end = min(start + _SLICE, len(data))
        while end < len(data) and data[end - 1] == 0x5C:  # a backslash: keep its run whole
            end += 1
        piece = data[start:end].replace(b"\\\\", b"").replace(b'\\"', b"")
        parts.append(piece.translate(None, _NOT_STRUCTURE))
        start = end
    return b"".join(parts)


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
    return _parse_whole(_bounded_text(data, source, max_depth), source)


def _bounded_text(data: bytes | str, source: str, max_depth: int) -> str:
    """The text of ``data`` once strict UTF-8, the value counts and the depth bound are checked
    (in that order). Only the text outlives this call: the bytes can go before the parse."""
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
    return text


class _StrictDecoder(json.JSONDecoder):
    """``json``'s decoder (its C scanner) with every refusal's hook; ``flagged`` turns true at
    the first duplicate key or refused number, which ``_json_problems`` then names by path."""

    def __init__(self) -> None:
        self.flagged = False
        super().__init__(
            object_pairs_hook=self._object,
            parse_constant=lambda token: self._refused(_constant(token)),
            parse_float=lambda token: self._refused(_float(token)),
            parse_int=lambda token: self._refused(_int(token)),
        )

    def _object(self, items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)  # in C; the same dict as _pairs gives when no key repeats
        if len(out) == len(items):
            return out
        self.flagged = True
        return _pairs(items)

    def _refused(self, value: Any) -> Any:
        self.flagged = self.flagged or isinstance(value, _Bad)
        return value


def _parse_whole(text: str, source: str) -> Any:
    """The whole document, strictly; every refused value and duplicate key named by path."""
    decoder = _StrictDecoder()
    try:
        if text.startswith("\ufeff"):  # as json.loads says it (decode drops one BOM)
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        document = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
        ) from exc
    except (RecursionError, ValueError) as exc:  # defence in depth; the checks above catch these
        raise ConfigError(f"{source}: $: not valid JSON: {type(exc).__name__}") from exc
    if decoder.flagged:
        problems = list(_json_problems(document, source))
        if problems:
            raise ConfigError(problems[0], problems=problems)
    return document


# What ``load_json``'s ``each`` returns to have the document parsed whole after all.
WHOLE: Any = object()
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's, as the json module skips it


def _skip(text: str, at: int) -> int:
    """The offset of the first character at or after ``at`` that is not JSON white space."""
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _parse_elements(text: str, each: Callable[[Any, int], Any]) -> list[Any] | None:
    """A top-level array parsed one element at a time, each handed to ``each`` at once and
    replaced by what it returns; None when the text is not an array that parses cleanly (a
    syntax error, a duplicate key, a refused number) or when ``each`` returns ``WHOLE``: the
    caller then parses it whole, which refuses it exactly as it always did."""
    at = _skip(text, 0)
    if not text.startswith("[", at):
        return None
    at = _skip(text, at + 1)
    kept: list[Any] = []
    if text.startswith("]", at):
        at += 1
    else:
        decoder = _StrictDecoder()
        while True:
            try:
                element, at = decoder.raw_decode(text, at)
            except (RecursionError, ValueError):  # JSONDecodeError is a ValueError
                return None
            if decoder.flagged:
                return None
            value = each(element, len(kept))
            if value is WHOLE:
                return None
            kept.append(value)
            at = _skip(text, at)
            if text.startswith(",", at):
                at = _skip(text, at + 1)
            elif text.startswith("]", at):
                at += 1
                break
            else:
                return None
    return kept if _skip(text, at) == len(text) else None


def _json_problems(document: Any, source: str) -> Iterator[str]:
    for path, value in _walk(document):
        if isinstance(value, _DuplicateKeys):
            for key in value.duplicates:
                where = json_path([*path, key])
                yield f"{source}: {where}: duplicate key {key!r}"
        elif isinstance(value, _Bad):
            yield f"{source}: {json_path(path)}: {value.message}"


def load_json(
    path: str | Path,
    *,
    limit: int,
    what: str,
    each: Callable[[Any, int], Any] | None = None,
) -> Any:
    """Read and parse a JSON file with every bound above. Raises ConfigError (exit 2).

    ``each(element, index)``: when the document is an array, each element is handed to it as
    soon as it is parsed, and what it returns is kept in the array instead, so a big document
    is never in memory whole (its text is, the file's bytes are not). ``each`` must not raise;
    returning ``WHOLE`` has the document parsed whole instead, as without ``each``. Every
    refusal is the same either way: what the element-wise reading does not accept is parsed
    whole, and that names the problems.
    """
    source = str(path)
    text = _bounded_text(read_bytes(path, limit=limit, what=what), source, MAX_DEPTH)
    if each is not None:
        kept = _parse_elements(text, each)
        if kept is not None:
            return kept
    return _parse_whole(text, source)
