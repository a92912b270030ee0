"""GitHub Actions integration, driven only by the environment Actions sets.

Outside Actions (``GITHUB_ACTIONS`` unset) every function here is a no-op or plain output.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def append_step_summary(markdown: str) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when running under Actions."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not active() or not target:
        return None
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n")
    return Path(target)


def set_outputs(values: Mapping[str, str]) -> Path | None:
    """Write step outputs to ``$GITHUB_OUTPUT`` (multi-line safe heredoc form)."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not active() or not target:
        return None
    with open(target, "a", encoding="utf-8") as handle:
        for key, value in values.items():
            if "\n" in value:
                marker = f"EOF_{uuid.uuid4().hex}"
                handle.write(f"{key}<<{marker}\n{value}\n{marker}\n")
            else:
                handle.write(f"{key}={value}\n")
    return Path(target)


@contextmanager
def group(title: str, echo: Callable[[str], None]) -> Iterator[None]:
    """A collapsible log group under Actions; a plain heading elsewhere."""
    if active():
        echo(f"::group::{title}")
        try:
            yield
        finally:
            echo("::endgroup::")
    else:
        echo(f"== {title}")
        yield
