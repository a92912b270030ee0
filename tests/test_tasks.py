"""The glue in tasks.py: which command each task calls with which flags, which commands lint
runs, and how failures become exit codes (``pipeline.cli.exits``)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest
from invoke import Exit, MockContext, Result

import tasks
from pipeline.cli import account, exits, stages, tools
from pipeline.cli import audit as audit_command

# Every task but the developer ones (lint, test, ci) calls one command of pipeline/cli.
COMMANDS: dict[str, Callable[..., Any]] = {
    "policy.validate": stages.policy_validate,
    "gate": stages.gate,
    "validate": stages.validate,
    "build": stages.build,
    "build-and-validate": stages.build_and_validate,
    "promote": account.promote,
    "setup": account.setup,
    "verify": account.verify,
    "revoke": account.revoke,
    "reap": account.reap,
    "catalogue.refresh": account.catalogue_refresh,
    "channels": account.show_channels,
    "audit": audit_command.audit,
    "local-aws": tools.local_aws,
    "hardening-coverage": tools.hardening_coverage,
    "iam-policy": tools.iam_policy,
    "bench": tools.bench,
}


def test_every_task_passes_its_flags_to_its_command_by_position_and_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(tasks.ns.task_names) - {"lint", "test", "ci"} == set(COMMANDS)
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    monkeypatch.setattr(tasks, "_run", lambda command, c, *flags: calls.append((command, flags)))
    for name, command in COMMANDS.items():
        task = tasks.ns[name]
        flags = list(inspect.signature(task.body).parameters)[1:]  # after the Context
        task(MockContext(), **{flag: f"<{flag}>" for flag in flags})
        assert calls.pop() == (command, tuple(f"<{flag}>" for flag in flags)), name
        assert list(inspect.signature(command).parameters)[1:] == flags, name  # after inv


def test_lint_runs_every_check_even_after_a_failure() -> None:
    ctx = MockContext(
        run={re.compile(r".*mypy.*"): Result(exited=1), re.compile(".*"): Result(exited=0)},
        repeat=True,
    )
    with pytest.raises(Exit) as info:
        tasks.lint(ctx)
    assert info.value.code == 1 and "mypy" in str(info.value.message)
    ran = [str(call.args[0]) for call in ctx.run.call_args_list]  # type: ignore[attr-defined]
    for tool in (
        "ruff check",
        "ruff format --check",
        "mypy",
        "shellcheck -x",
        "policy.validate",
        "actionlint",
        "zizmor --offline",
        "packer fmt -check",
    ):
        assert any(tool in command for command in ran), tool
    assert any("packer/scripts/cis-harden.sh" in c and "scripts/bootstrap" in c for c in ran)


def test_lint_passes_when_every_check_passes() -> None:
    tasks.lint(MockContext(run=Result(exited=0), repeat=True))


def test_pipeline_errors_become_their_exit_code_without_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline.errors import PolicyError

    with pytest.raises(Exit) as info, exits.exit_codes():
        raise PolicyError("p", problems=["a.yaml: $.x: one", "a.yaml: $.y: two"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: a.yaml: $.x: one",
        "error: a.yaml: $.y: two",
    ]
