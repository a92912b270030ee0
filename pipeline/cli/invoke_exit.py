"""Invoke's own input errors exit 2, in one ``error:`` line, like every other bad input.

Why this module patches Invoke: on a parse error of its own (an unknown task or flag, a flag
without its value, ``--help`` of an unknown task) Invoke prints the error and exits 1, and a
bad ``-f`` file or ``INVOKE_*`` value raised a traceback (also 1). The exit-code contract says
2 for invalid input. Invoke offers no hook for either, and ``tasks.py`` is imported (by
``Program.parse_collection``) before the task arguments are parsed and the runtime config is
merged, so ``tasks.py`` calls ``install()`` at import time and the steps that follow run
wrapped. The flags' values are checked for NUL bytes here too, before any task runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from invoke.config import Config
from invoke.exceptions import Exit, ParseError, UncastableEnvVar, UnknownFileType
from invoke.program import Program
from invoke.util import yaml  # type: ignore[attr-defined]  # Invoke's (vendored) PyYAML

from pipeline.errors import ExitCode, one_line

Owner = TypeVar("Owner")  # Program or Config
Step = Callable[[Owner], None]  # a method: self -> None

_WRAPPED = "_exit_2"  # marks a wrapped step: install() may run more than once (tests)


def install() -> None:
    """Wrap Invoke's parsing and config-merging steps (idempotent)."""
    for cls, name, wrap in (
        (Program, "parse_tasks", parse_errors_exit_2),
        (Program, "parse_cleanup", parse_errors_exit_2),
        (Program, "update_config", config_errors_exit_2),  # -f file, INVOKE_* variables
        (Config, "load_shell_env", config_errors_exit_2),  # INVOKE_* again, per task
    ):
        setattr(cls, name, wrap(getattr(cls, name)))


def parse_errors_exit_2(step: Step[Program]) -> Step[Program]:
    """A parsing step whose ParseError (or a NUL byte in a flag) becomes exit 2, one line."""
    if getattr(step, _WRAPPED, False):
        return step

    def wrapper(self: Program) -> None:
        try:
            step(self)
            refuse_nul(self)
        except ParseError as err:
            raise Exit(
                f"error: {one_line(str(err), 500)}", code=int(ExitCode.INVALID_INPUT)
            ) from None
        except BrokenPipeError:  # `invoke --help TASK | head`: stop quietly, as commands do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=int(ExitCode.UNEXPECTED)) from None

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def refuse_nul(program: Program) -> None:
    """A NUL byte can be no path, name or number (the OS refuses it in paths): a ParseError
    naming the flag, before any task runs, instead of a ValueError traceback deep inside."""
    contexts = [*(getattr(program, "core", None) or []), *(getattr(program, "tasks", None) or [])]
    for context in contexts:
        for arg in context.args.values():
            values = arg.value if isinstance(arg.value, list) else [arg.value]
            if any(isinstance(v, str) and "\x00" in v for v in values):
                flag = ("-" if len(arg.name) == 1 else "--") + arg.name.replace("_", "-")
                raise ParseError(f"{flag}: contains a NUL byte")


def config_errors_exit_2(step: Step[Any]) -> Step[Any]:
    """Invoke merges the runtime config file (``-f``), ``INVOKE_*`` variables and the user's
    config into invoke.yaml's values in ``update_config`` (and ``load_shell_env``); a value of
    the wrong type there (a string where invoke.yaml has a mapping,
    ``INVOKE_PIPELINE_LEVEL=abc``), unreadable YAML or an unknown file type raised a
    traceback. Exit 2 with one ``error:`` line instead."""
    if getattr(step, _WRAPPED, False):
        return step
    yaml_error: type[Exception] = yaml.YAMLError
    errors = (UncastableEnvVar, UnknownFileType, yaml_error)  # AmbiguousMerge: a ValueError

    def wrapper(self: Any) -> None:
        try:
            step(self)
        except (*errors, UnicodeDecodeError, ValueError, OSError) as err:
            text = one_line(f"invoke configuration (-f, INVOKE_* variables): {err}", 500)
            raise Exit(f"error: {text}", code=int(ExitCode.INVALID_INPUT)) from None

    setattr(wrapper, _WRAPPED, True)
    return wrapper
