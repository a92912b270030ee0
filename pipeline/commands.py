"""The gate and policy commands as functions: read inputs, judge, write reports.

``tasks.py`` calls these and maps their errors to exit codes; they never exit themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import gate, outputs, policy, results, safeio
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
    level: int | None = None,
) -> gate.Verdict:
    """Judge a results file and write verdict.json, junit.xml and summary.md into ``out_dir``.

    ``--policy`` given once: that policy judges every target. Otherwise each target gets the
    policy of its platform from ``default_policy_dir`` (or from several ``--policy`` files).
    The level is ``level`` (``--level``), else the ``securityLevel`` of the run's evidence beside
    the results file (scan.json); that evidence (scan.json, targets.json, run.json) also
    supplies Inspector's counts to reconcile the rows with, and the local-AWS marker.
    Raises ConfigError (exit 2) when the level cannot be established.
    """
    parsed = results.load(results_path)
    evidence = load_evidence(Path(results_path).parent)
    if level is None and evidence.facts is None:
        raise ConfigError(
            f"--level: give the level the scan ran at (1 or 2): no scan.json beside "
            f"{results_path} says it"
        )
    explicit = None
    if len(policy_files) == 1:
        explicit = policy.load(policy_files[0])
        available = {explicit.platform: explicit}
    else:
        available = policy.load_all(policy_paths(policy_files, default_policy_dir))
    chosen = gate.select_policies(parsed.rows, available, explicit)
    verdict = gate.evaluate(
        parsed.rows,
        chosen,
        today,
        level=level if level is not None else evidence.facts.level if evidence.facts else None,
        facts=evidence.facts,
        expected_targets=parsed.targets,
        problems=parsed.problems,
        architectures=evidence.architectures,
    )
    verdict = replace(verdict, context={**verdict.context, **evidence.context})
    paths = outputs.write_reports(verdict, out_dir)
    outputs.publish(verdict, paths, echo)
    return verdict


@dataclass(frozen=True)
class Evidence:
    """What a validate run left beside its results.json (all optional)."""

    facts: results.ScanFacts | None = None
    architectures: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


EVIDENCE_MAX_BYTES = 16 * 1024 * 1024


def load_evidence(folder: Path) -> Evidence:
    """Read scan.json, targets.json and run.json from ``folder`` when they exist.

    Malformed files are ConfigErrors (exit 2) naming the file and JSON path.
    """
    scan_path, targets_path, run_path = (folder / n for n in EVIDENCE_FILES)
    scan = _evidence_json(scan_path)
    targets = _evidence_json(targets_path)
    run = _evidence_json(run_path)
    facts = None
    if scan is not None:
        if not isinstance(scan, dict):
            raise ConfigError(f"{scan_path}: $: expected a ListCisScans scan object")
        counts = None
        if targets is not None:
            counts = _target_counts(targets, targets_path)
        facts = results.ScanFacts(
            level=results.level_number(scan.get("securityLevel"), f"{scan_path}: $.securityLevel"),
            target_counts=counts,
            total_checks=_count(scan, "totalChecks", scan_path),
            failed_checks=_count(scan, "failedChecks", scan_path),
            scan_arn=scan.get("scanArn") if isinstance(scan.get("scanArn"), str) else None,
        )
    context: dict[str, Any] = {}
    architectures: dict[str, str] = {}
    if isinstance(run, dict):
        if run.get("local") is True:
            context["local"] = True
        if isinstance(run.get("run_id"), str):
            context["run_id"] = run["run_id"]
        archs = run.get("architectures")
        if isinstance(archs, dict):
            architectures = {str(k): str(v) for k, v in archs.items()}
        labels = run.get("target_labels")
        if isinstance(labels, dict):
            context["target_labels"] = {str(k): str(v) for k, v in labels.items()}
    elif run is not None:
        raise ConfigError(f"{run_path}: $: expected an object")
    return Evidence(facts, architectures, context)


EVIDENCE_FILES = ("scan.json", "targets.json", "run.json")


def _evidence_json(path: Path) -> Any:
    if not path.is_file():
        return None
    return safeio.load_json(path, limit=EVIDENCE_MAX_BYTES, what="evidence")


def _count(obj: dict[str, Any], key: str, source: Path) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{source}: $.{key}: expected a count, got {value!r}")
    return value


def _target_counts(document: Any, source: Path) -> dict[str, results.StatusCounts]:
    if not isinstance(document, list):
        raise ConfigError(f"{source}: $: expected a list of target aggregations")
    out: dict[str, results.StatusCounts] = {}
    for i, item in enumerate(document):
        if not isinstance(item, dict) or not isinstance(item.get("targetResourceId"), str):
            raise ConfigError(f"{source}: $[{i}]: expected a target with targetResourceId")
        raw = item.get("statusCounts") or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: $[{i}].statusCounts: expected an object")
        values = {k: _count(raw, k, source) or 0 for k in ("passed", "failed", "skipped")}
        out[item["targetResourceId"]] = results.StatusCounts(**values)
    return out
