"""Filtering, sorting and pagination shared by the emulated List*/Get*/Describe* operations.

Filter semantics (the model's filter lists): within one filter list, EQUALS/PREFIX filters are
OR'ed and NOT_EQUALS filters are AND'ed (a value must differ from each); different filter lists
are AND'ed. A multi-valued field matches when any of its values does. ``nextToken`` is opaque,
bound to the request it came from: reusing it with other filters or sorting is an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pipeline.localaws.wire import ServiceError

T = TypeVar("T")
Filters = list[dict[str, Any]]


def _values(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def strings(value: Any, filters: Filters) -> bool:
    """CisStringFilter-style: ``{comparison: EQUALS|PREFIX|NOT_EQUALS, value}``."""
    values = [v for v in _values(value) if v is not None]
    positive = [f for f in filters if f.get("comparison", "EQUALS") != "NOT_EQUALS"]
    negative = [f["value"] for f in filters if f.get("comparison") == "NOT_EQUALS"]
    if any(v in negative for v in values):
        return False
    if not positive:
        return True
    return any(_positive(v, f) for v in values for f in positive)


def _positive(value: str, flt: Mapping[str, Any]) -> bool:
    if flt.get("comparison") == "PREFIX":
        return str(value).startswith(flt["value"])
    return bool(value == flt["value"])


def numbers(value: Any, filters: Filters) -> bool:
    """CisNumberFilter: ``lowerInclusive <= value <= upperInclusive`` (either bound optional)."""
    return any(
        f.get("lowerInclusive", value) <= value <= f.get("upperInclusive", value) for f in filters
    )


def dates(value: Any, filters: Filters) -> bool:
    """CisDateFilter: ``earliestScanStartTime <= value <= latestScanStartTime`` (epoch seconds)."""
    return any(
        f.get("earliestScanStartTime", value) <= value <= f.get("latestScanStartTime", value)
        for f in filters
    )


def tags(value: Mapping[str, Sequence[str]], filters: Filters) -> bool:
    """TagFilter: the resource has tag ``key`` with ``value`` (OR'ed across filters)."""
    return any(f["value"] in value.get(f["key"], ()) for f in filters)


@dataclass(frozen=True, slots=True)
class Field(Generic[T]):
    """How one filter list of a request applies to items of type ``T``."""

    match: Callable[[Any, Filters], bool]
    get: Callable[[T], Any]


def apply(
    items: Iterable[T], criteria: Mapping[str, Filters] | None, fields: Mapping[str, Field[T]]
) -> list[T]:
    """Items that pass every filter list present in ``criteria``."""
    active = [
        (fields[name], flts) for name, flts in (criteria or {}).items() if name in fields and flts
    ]
    return [item for item in items if all(f.match(f.get(item), flts) for f, flts in active)]


def check_id_key(check_id: str) -> tuple[int | str, ...]:
    """Sort key putting 1.1.2 before 1.1.10."""
    return tuple(int(part) if part.isdigit() else part for part in check_id.split("."))


def order(
    items: Iterable[T],
    sort_by: str | None,
    sort_order: str | None,
    keys: Mapping[str, Callable[[T], Any]],
    default: str,
) -> list[T]:
    """Stable sort by ``keys[sort_by or default]``; DESC reverses."""
    return sorted(items, key=keys[sort_by or default], reverse=sort_order == "DESC")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


def paginate(
    items: Sequence[T],
    params: Mapping[str, Any],
    *,
    page_max: int,
    bad_token: Callable[[str], ServiceError],
    token_key: str = "nextToken",
    size_key: str = "maxResults",
    default_size: int | None = None,
    max_pages: int | None = None,
) -> Page[T]:
    """One page of ``items``; ``page_max`` also caps what maxResults may ask for.

    ``max_pages`` (a scenario's lie): no ``nextToken`` after that many pages of this size.
    """
    size = min(int(params.get(size_key) or default_size or page_max), page_max)
    fingerprint = _fingerprint(params, (token_key, size_key))
    token = params.get(token_key)
    offset = _decode(token, fingerprint, bad_token) if token else 0
    end = offset + size
    following = _encode(end, fingerprint) if end < len(items) else None
    if max_pages is not None and end >= max_pages * size:
        following = None
    return Page(list(items[offset:end]), following)


def _fingerprint(params: Mapping[str, Any], ignore: tuple[str, ...]) -> str:
    relevant = {k: v for k, v in params.items() if k not in ignore}
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _encode(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"offset": offset, "query": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(token: str, fingerprint: str, bad_token: Callable[[str], ServiceError]) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["offset"])
        same_query = data["query"] == fingerprint
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise bad_token("The nextToken is not valid") from exc
    if not same_query or offset < 0:
        raise bad_token(
            "The nextToken does not belong to this request (filters or sorting changed)"
        )
    return offset
