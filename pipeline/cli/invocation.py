"""What every command starts from: the ``pipeline:`` settings as Invoke merged them
(``invoke.yaml``, ``-f``, ``INVOKE_PIPELINE_*``), the project folder, the clock and stdout.

The settings that decide what is trusted (``TRUST_SETTINGS``) come only from the project's
``invoke.yaml``, a ``-f`` file named on the command line, or a flag: Invoke also merges
``INVOKE_*`` variables, ``~/.invoke.yaml``, ``/etc/invoke.yaml`` and ``INVOKE_RUNTIME_CONFIG``,
which any earlier CI step may set (``$GITHUB_ENV``) or write, and a trust setting found there is
refused (exit 2), one line per variable or file, never merged silently.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.settings import pick

# ``pipeline.<path>`` settings that lower or move the bar: the level validated and required, the
# exceptions policies, the record's age limit, each channel's level, where records, keys and
# revocations are found.
TRUST_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("level",),
    ("policy_dir",),
    ("evidence_bucket",),
    ("signing_key",),
    ("signing_key_sha256",),
    ("release", "channels"),
    ("release", "max_age_days"),
    ("release", "parameter_prefix"),
)
_ENV_FILE = "INVOKE_RUNTIME_CONFIG"  # Invoke's ``-f`` when the flag is not given


def echo(line: str) -> None:
    """Print one line of a command's output, at once (CI logs interleave stdout and stderr)."""
    print(line, flush=True)


def log_to_stderr(line: str) -> None:
    """A command's progress under ``--json``: stdout carries only the JSON document."""
    print(line, file=sys.stderr, flush=True)


def echo_for(as_json: bool) -> Callable[[str], None]:
    """Where a command's lines go: stdout, or stderr when ``--json`` keeps stdout for JSON."""
    return log_to_stderr if as_json else echo


def jsonable(value: Any) -> Any:
    """Plain JSON data from a command's result: dataclasses, enums, dates, paths, mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # raw bytes (keys, evidence bodies) stay out of the report
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def print_json(value: Any) -> None:
    """The ``--json`` result: one JSON document on stdout."""
    print(json.dumps(jsonable(value), indent=2, ensure_ascii=False), flush=True)


def now() -> datetime:
    """Now, in UTC: what expiry and record ages are judged by (unless a flag gives the date)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Invocation:
    """One command's inputs besides its flags."""

    config: Mapping[str, Any]  # the ``pipeline:`` section (empty without invoke.yaml)
    root: Path  # the project folder (tasks.py's): policies/, packer/, .github/

    @classmethod
    def of(cls, config: Mapping[str, Any], root: Path) -> Invocation:
        """From Invoke's whole config (``c.config``); ConfigError (exit 2) when a setting that
        decides trust came from the environment (``refused_sources``)."""
        refused = refused_sources(config, os.environ)
        if refused:
            raise ConfigError(refused[0], problems=refused)
        return cls(config.get("pipeline", {}), root)

    def setting(self, name: str, given: object = None) -> Any:
        """The flag if given, else ``invoke.yaml`` (``pipeline.<name>``), else None."""
        return pick(given, self.config, name)

    @property
    def policy_dir(self) -> Path:
        """The exceptions policies (``pipeline.policy_dir``, relative to the project)."""
        return self.root / str(self.setting("policy_dir"))


def refused_sources(config: Any, environ: Mapping[str, str]) -> list[str]:
    """One line per trust setting (``TRUST_SETTINGS``) that Invoke took from an ``INVOKE_*``
    variable, a user or system config file, or an ``INVOKE_RUNTIME_CONFIG`` file. ``config`` is
    Invoke's Config (a plain mapping has no layers: nothing is refused)."""
    refused: list[str] = []
    env = getattr(config, "_env", None)
    for path in _trust_paths(env):
        name = "INVOKE_" + "_".join(path).upper()
        refused.append(f"{name}: sets {'.'.join(path)}, {_WHY}")
    for layer, label in (("_system", "system"), ("_user", "user")):
        where = getattr(config, f"{layer}_path", None) or f"the {label} config file"
        refused += [
            f"{where}: sets {'.'.join(p)}, {_WHY}"
            for p in _trust_paths(getattr(config, layer, None))
        ]
    if environ.get(_ENV_FILE):
        refused += [
            f"{_ENV_FILE}={environ[_ENV_FILE]}: sets {'.'.join(p)}, {_WHY} (name the file with -f)"
            for p in _trust_paths(getattr(config, "_runtime", None))
        ]
    return refused


_WHY = "which decides what is trusted: set it in invoke.yaml or with the flag, not the environment"


def _trust_paths(layer: object) -> Iterator[tuple[str, ...]]:
    """Each ``pipeline.<path>`` leaf of one config layer under a trust setting."""
    if not isinstance(layer, Mapping):
        return
    stack: list[tuple[tuple[str, ...], object]] = [(("pipeline",), layer.get("pipeline"))]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Mapping):
            stack += [((*path, str(k)), v) for k, v in sorted(value.items(), reverse=True)]
        elif len(path) > 1 and any(path[1 : 1 + len(t)] == t for t in TRUST_SETTINGS):
            yield path
