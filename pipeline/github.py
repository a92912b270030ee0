"""GitHub Actions integration, driven only by the environment Actions sets.

Untrusted text (scan titles, reasons, tags, file contents) can never become a workflow command:
under Actions the process stops command processing with a random token before any output, and
the pipeline's own commands go through ``emit``, which resumes, prints one and stops again.
Outside Actions (``GITHUB_ACTIONS`` unset) every function here is a no-op or plain output.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

Echo = Callable[[str], None]
# Names the runner accepts for step outputs; anything else is a bug in the caller.
_OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


# ---------------------------------------------------------------- workflow commands


def escape_data(text: str) -> str:
    """Escape a command's message as the runner unescapes it: ``%``, CR, LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a command property's value: as data, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True, slots=True)
class Command:
    """One workflow command of the pipeline's own, e.g. ``::error title=T::message``."""

    name: str  # error, warning, notice, group, endgroup, add-mask
    message: str = ""
    properties: tuple[tuple[str, str], ...] = ()

    def render(self) -> str:
        props = ",".join(f"{k}={escape_property(v)}" for k, v in self.properties)
        return f"::{self.name}{' ' + props if props else ''}::{escape_data(self.message)}"


class _Channel:
    """The process's command state: the token that currently stops command processing."""

    def __init__(self) -> None:
        self.token: str | None = None

    def stop(self, echo: Echo) -> None:
        self.token = secrets.token_hex(16)
        echo(f"::stop-commands::{self.token}")


_CHANNEL = _Channel()


def start_untrusted_output(echo: Echo) -> None:
    """Under Actions, stop command processing (once) before anything untrusted is printed.

    Called by ``tasks.py`` when a task starts; from then on only ``emit`` issues commands.
    """
    if active() and _CHANNEL.token is None:
        _CHANNEL.stop(echo)


def emit(command: Command, echo: Echo) -> None:
    """Issue one of the pipeline's own commands under Actions (no-op elsewhere).

    Resumes command processing with the current token, prints the command, then stops again
    with a fresh random token, so untrusted text printed later is never interpreted.
    """
    if not active():
        return
    if _CHANNEL.token is not None:
        echo(f"::{_CHANNEL.token}::")
    echo(command.render())
    _CHANNEL.stop(echo)


@contextmanager
def group(title: str, echo: Echo) -> Iterator[None]:
    """A collapsible log group under Actions; a plain heading elsewhere."""
    if active():
        emit(Command("group", title), echo)
        try:
            yield
        finally:
            emit(Command("endgroup"), echo)
    else:
        echo(f"== {title}")
        yield


# ---------------------------------------------------------------- files Actions reads


def append_step_summary(markdown: str) -> Path | None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when running under Actions."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not active() or not target:
        return None
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n")
    return Path(target)


def output_lines(values: Mapping[str, str]) -> str:
    """Step outputs in ``$GITHUB_OUTPUT`` syntax; multi-line values in the heredoc form.

    A value with a line break gets a random delimiter that does not occur in it. A name that
    is not ``[A-Za-z_][A-Za-z0-9_-]*`` is a bug (PipelineError, exit 1).
    """
    out = []
    for key, value in values.items():
        if not _OUTPUT_NAME.match(key):
            raise PipelineError(f"$GITHUB_OUTPUT: {key!r} is not a valid output name")
        if "\n" in value or "\r" in value:
            marker = f"EOF_{secrets.token_hex(16)}"
            while marker in value:
                marker = f"EOF_{secrets.token_hex(16)}"
            out.append(f"{key}<<{marker}\n{value}\n{marker}\n")
        else:
            out.append(f"{key}={value}\n")
    return "".join(out)


def set_outputs(values: Mapping[str, str]) -> Path | None:
    """Write step outputs to ``$GITHUB_OUTPUT`` (``output_lines``) when running under Actions."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not active() or not target:
        return None
    text = output_lines(values)
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(text)
    return Path(target)
