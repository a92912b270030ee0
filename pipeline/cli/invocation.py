"""What every command starts from: the ``pipeline:`` settings as Invoke merged them
(``invoke.yaml``, ``-f``, ``INVOKE_PIPELINE_*``), the project folder, the clock and stdout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.settings import pick


def echo(line: str) -> None:
    """Print one line of a command's output, at once (CI logs interleave stdout and stderr)."""
    print(line, flush=True)


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
        """From Invoke's whole config (``c.config``)."""
        return cls(config.get("pipeline", {}), root)

    def setting(self, name: str, given: object = None) -> Any:
        """The flag if given, else ``invoke.yaml`` (``pipeline.<name>``), else None."""
        return pick(given, self.config, name)

    @property
    def policy_dir(self) -> Path:
        """The exceptions policies (``pipeline.policy_dir``, relative to the project)."""
        return self.root / str(self.setting("policy_dir"))
