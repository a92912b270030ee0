"""The glue in tasks.py: which commands lint runs, and how failures become exit codes."""

from __future__ import annotations

import re

import pytest
from invoke import Exit, MockContext, Result

import tasks


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

    with pytest.raises(Exit) as info, tasks._exit_codes():
        raise PolicyError("p", problems=["a.yaml: $.x: one", "a.yaml: $.y: two"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: a.yaml: $.x: one",
        "error: a.yaml: $.y: two",
    ]
