"""The gate and policy commands as functions: read inputs, judge, write reports.

``tasks.py`` calls these and maps their errors to exit codes; they never exit themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from pipeline import gate, outputs, policy, results
from pipeline.errors import ConfigError, PolicyError

Echo = Callable[[str], None]


def parse_today(value: str | None, default: date) -> date:
    """``--today YYYY-MM-DD``; None gives ``default`` (the caller's clock)."""
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--today: {value!r} is not a date (YYYY-MM-DD)") from exc


def policy_paths(given: Sequence[str], default_dir: Path) -> list[Path]:
    """The policies named on the command line, else every file of the default directory."""
    paths = [Path(p) for p in given] if given else policy.discover(default_dir)
    return [_relative(p) for p in paths]


def _relative(path: Path) -> Path:
    """Show paths under the working directory relative to it (stable in reports)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def validate_policies(paths: Sequence[Path], today: date, echo: Echo) -> int:
    """Validate policies (schema, semantics, expiry). Returns the number of exceptions.

    Raises PolicyError listing every problem of every file (expired exceptions included).
    """
    loaded = policy.load_all(paths)
    problems: list[str] = []
    for pol in loaded.values():
        errors, warnings = policy.expiry_problems(pol, today)
        problems += errors
        for warning in warnings:
            echo(f"WARNING  {warning}")
    if problems:
        raise PolicyError(problems[0], problems=problems)
    for pol in loaded.values():
        echo(
            f"OK       {pol.source}: {len(pol.exceptions)} exceptions for "
            f"{pol.catalogue.label} (sha256 {pol.sha256[:12]})"
        )
    return sum(len(p.exceptions) for p in loaded.values())


def run_gate(
    results_path: str,
    policy_files: Sequence[str],
    today: date,
    out_dir: str,
    default_policy_dir: Path,
    echo: Echo,
) -> gate.Verdict:
    """Judge a results file and write verdict.json, junit.xml and summary.md into ``out_dir``.

    ``--policy`` given once: that policy judges every target. Otherwise each target gets the
    policy of its platform from ``default_policy_dir`` (or from several ``--policy`` files).
    """
    parsed = results.load(results_path)
    explicit = None
    if len(policy_files) == 1:
        explicit = policy.load(policy_files[0])
        available = {explicit.platform: explicit}
    else:
        available = policy.load_all(policy_paths(policy_files, default_policy_dir))
    chosen = gate.select_policies(parsed.rows, available, explicit)
    verdict = gate.evaluate(
        parsed.rows, chosen, today, expected_targets=parsed.targets, problems=parsed.problems
    )
    paths = outputs.write_reports(verdict, out_dir)
    outputs.publish(verdict, paths, echo)
    return verdict
