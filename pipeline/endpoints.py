"""Endpoint URLs (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``): checked before any AWS
call, so a malformed one is one line and exit 2, with any password in it masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from pipeline.errors import ConfigError


def check_endpoint_url(url: str, name: str = "AWS_ENDPOINT_URL") -> str:
    """An endpoint must be ``http(s)://host[:port][/]``; anything else is a ConfigError."""
    problem = _endpoint_problem(url)
    if problem:
        shown = re.sub(r"//[^/@]*@", "//***@", url)  # never print a password from userinfo
        raise ConfigError(f"{name} {shown!r}: {problem} (expected http(s)://host[:port])")
    return url


def _endpoint_problem(url: str) -> str | None:
    if re.search(r"[\x00-\x20\x7f]", url) or not url:
        return "empty, or white space or a control character inside"  # urlsplit drops \n, \t
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # ValueError when not a number or out of range
    except ValueError:
        return "not a URL with a valid port"
    if parts.scheme not in ("http", "https"):
        return "scheme must be http or https"
    if not parts.hostname:
        return "no host"
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        return "only scheme, host and port are allowed"
    if port == 0:
        return "port 0"
    return None


def endpoint_urls(environ: Mapping[str, str]) -> dict[str, str]:
    """``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` set in ``environ`` (non-empty)."""
    return {k: v for k, v in environ.items() if k.startswith("AWS_ENDPOINT_URL") and v != ""}
