"""The one choke point for paginated AWS reads: every List*/Describe*/Get* with pages goes here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def pages(client: Any, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Yield every response page of ``operation`` (snake_case) with ``params``."""
    if not client.can_paginate(operation):
        raise AssertionError(f"{operation} has no paginator in botocore's model")
    yield from client.get_paginator(operation).paginate(**params)


def collect(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item under ``key`` across all pages of ``operation``."""
    return [item for page in pages(client, operation, **params) for item in page.get(key, [])]
