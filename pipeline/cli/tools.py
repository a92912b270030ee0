"""The commands around the pipeline: ``local-aws``, ``hardening-coverage``, ``iam-policy``,
``bench``, and the command lists of the developer tasks ``lint`` and ``test``."""

from __future__ import annotations

import json as json_
import sys
from collections.abc import Sequence
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit

from pipeline import coverage, settings, support
from pipeline.aws.iam_policy import render
from pipeline.cli.invocation import Invocation, echo
from pipeline.errors import ExitCode
from pipeline.orchestration.bench import render_text, run_bench


def local_aws(inv: Invocation, port: str, scenario: str | None) -> ExitCode:
    support.require_local_extra()
    with support.needs_local_extra():
        from pipeline.localaws.serve import serve  # the optional `local` extra (moto)

        serve(settings.as_port(port), scenario, echo)
    return ExitCode.OK


def hardening_coverage(
    inv: Invocation, platform: str | None, level: str | None, json: bool
) -> ExitCode:
    report = coverage.coverage_report(
        settings.as_platform(inv.setting("platform", platform)),
        settings.as_level(inv.setting("level", level)),
    )
    renderer = coverage.render_coverage_json if json else coverage.render_coverage_text
    echo(renderer(report))
    return ExitCode.OK


def iam_policy(inv: Invocation, job: str | None) -> ExitCode:
    echo(render(job, inv.root / "policies/iam"))
    return ExitCode.OK


def bench(inv: Invocation, json: bool, gate_targets: str) -> ExitCode:
    targets = settings.as_count(gate_targets, "--gate-targets", maximum=100_000)
    report = run_bench(lambda line: print(line, file=sys.stderr, flush=True), gate_targets=targets)
    echo(json_.dumps(report, indent=2) if json else render_text(report))
    return ExitCode.OK


def tool(name: str) -> str:
    """A tool of this Python environment (the venv running ``invoke``)."""
    return f"{Path(sys.executable).parent}/{name}"


def shell_scripts(root: Path) -> list[str]:
    """Every shell script shellcheck checks, relative to the project."""
    scripts = sorted(str(p.relative_to(root)) for p in (root / "packer").rglob("*.sh"))
    return scripts + ["scripts/bootstrap", ".ci/run"]


def lint_commands(root: Path) -> list[str]:
    """ruff, mypy, the import contracts, shellcheck, the policies, actionlint and zizmor (with
    workflows), packer fmt."""
    workflows = sorted(str(p) for p in (root / ".github/workflows").glob("*.yml"))
    packer_dirs = sorted({str(p.parent) for p in (root / "packer").rglob("*.pkr.hcl")})
    commands = [
        tool("ruff check ."),
        tool("ruff format --check ."),
        tool("mypy"),
        tool("lint-imports --no-logo --no-cache"),  # the one-way house (docs/architecture.md)
        "shellcheck -x " + " ".join(shell_scripts(root)),
        tool("invoke policy.validate"),
    ]
    if workflows:
        commands.append(tool("actionlint ") + " ".join(workflows))
        commands.append(tool("zizmor --offline --no-progress .github/workflows"))
    commands += [f"packer fmt -check {d}" for d in packer_dirs]
    return commands


def pytest_command(k: str | None, args: str) -> str:
    """pytest of this environment, with ``-k`` and extra arguments."""
    select = f" -k '{k}'" if k else ""
    return f"{tool('pytest')}{select} {args}"


def run_all(c: Context, commands: Sequence[str]) -> None:
    """Run every command, then fail if any failed (so one run shows every problem)."""
    failed = []
    for command in commands:
        print(f"$ {command}", flush=True)
        result = c.run(command, warn=True, pty=False)
        if result is None or not result.ok:
            failed.append(command)
    if failed:
        raise Exit("failed: " + "; ".join(failed), code=1)
