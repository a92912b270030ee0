"""The gate and policy commands as functions: read inputs, judge, write reports.

``tasks.py`` calls these and maps their errors to exit codes; they never exit themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import (
    crosscheck,
    findings,
    gate,
    github,
    node,
    outputs,
    policy,
    results,
    safeio,
    sections,
    vulns,
)
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


EXPIRING = f"CIS exception expires within {policy.EXPIRY_WARNING_DAYS} days"


def validate_policies(paths: Sequence[Path], today: date, echo: Echo) -> int:
    """Validate policies (schema, semantics, expiry). Returns the number of exceptions.

    Raises PolicyError listing every problem of every file (expired exceptions included).
    """
    loaded = policy.load_all(paths)
    problems: list[str] = []
    for pol in loaded.values():
        errors, warnings = policy.expiry_problems(pol, today)
        problems += errors
        for warning in warnings:  # a notice, never a failure: CI stays green until expiry
            echo(f"WARNING  {warning}")
            github.emit(github.Command("warning", warning, (("title", EXPIRING),)), echo)
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
    supplies Inspector's counts to reconcile the rows with, and the local-AWS marker; its
    checks.json and cis-report.csv, when there, Inspector's views to cross-check each row with.
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
    node_verdict, vuln_verdict = judge_sections(
        Path(results_path).parent, chosen, evidence.architectures, today
    )
    verdict = sections.combine(verdict, node_verdict, vuln_verdict)
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
    """Read scan.json, targets.json and run.json from ``folder`` when they exist, and
    Inspector's other views of the rows (checks.json, cis-report.csv) when they do.

    Malformed or self-contradicting files, scan.json or targets.json without the other, and a
    view without scan.json, are ConfigErrors (exit 2) naming the file and JSON path. A scan that
    did not COMPLETE, targets Inspector did not scan and what cannot be used of a view become
    ``ScanFacts.problems``: the verdict is ERROR (exit 4); so does any disagreement of the rows
    with a view (the gate cross-checks them: ``pipeline.crosscheck``).
    """
    scan_path, targets_path, run_path = (folder / n for n in EVIDENCE_FILES)
    scan = _evidence_json(scan_path)
    targets = _evidence_json(targets_path)
    run = _evidence_json(run_path)
    checks_path, report_path = folder / crosscheck.CHECKS_FILE, folder / crosscheck.REPORT_FILE
    checks = _evidence_json(checks_path)
    report = _evidence_bytes(report_path)
    facts = None
    for path, view in ((checks_path, checks), (report_path, report)):
        if scan is None and view is not None:
            raise ConfigError(
                f"{path}: no scan.json beside it: the run's evidence is incomplete "
                "(keep the evidence folder whole)"
            )
    # The scan and its per-target counts come as a pair: either alone cannot be reconciled.
    if (scan is None) != (targets is None):
        there, lost = (targets_path, "scan.json") if scan is None else (scan_path, "targets.json")
        raise ConfigError(
            f"{there}: no {lost} beside it: the run's evidence is incomplete "
            "(keep the evidence folder whole)"
        )
    if scan is not None:
        if not isinstance(scan, dict):
            raise ConfigError(f"{scan_path}: $: expected a ListCisScans scan object")
        counts, problems = None, _scan_status_problems(scan, scan_path)
        if targets is not None:
            counts, target_problems = _target_counts(targets, targets_path)
            problems += target_problems
        scan_arn = scan.get("scanArn")
        if scan_arn is not None and not isinstance(scan_arn, str):
            raise ConfigError(f"{scan_path}: $.scanArn: expected a string, got {scan_arn!r}")
        check_counts: results.CheckCounts | None = None
        if checks is not None:
            check_counts, unusable = crosscheck.read_checks(checks, str(checks_path), scan_arn)
            problems += unusable
        report_rows: tuple[results.ReportRow, ...] | None = None
        if report is not None:
            report_rows, unusable = crosscheck.read_report(report, str(report_path), scan_arn)
            problems += unusable
        facts = results.ScanFacts(
            level=results.level_number(scan.get("securityLevel"), f"{scan_path}: $.securityLevel"),
            target_counts=counts,
            total_checks=_count(scan, "totalChecks", scan_path),
            failed_checks=_count(scan, "failedChecks", scan_path),
            scan_arn=scan_arn,
            problems=tuple(problems),
            check_counts=check_counts,
            report_rows=report_rows,
        )
    context: dict[str, Any] = {}
    architectures: dict[str, str] = {}
    if isinstance(run, dict):
        local = run.get("local")
        if local is not None and not isinstance(local, bool):
            raise ConfigError(f"{run_path}: $.local: expected true or false, got {local!r}")
        if local is True:
            context["local"] = True
        if isinstance(run.get("run_id"), str):
            context["run_id"] = run["run_id"]
        architectures = _architectures(run.get("architectures"), run_path)
        labels = run.get("target_labels")
        if isinstance(labels, dict):
            context["target_labels"] = {str(k): str(v) for k, v in labels.items()}
    elif run is not None:
        raise ConfigError(f"{run_path}: $: expected an object")
    return Evidence(facts, architectures, context)


EVIDENCE_FILES = ("scan.json", "targets.json", "run.json")
PACKAGE_FILES = (
    findings.COVERAGE_FILE,
    findings.FINDINGS_FILE,
    findings.COUNTS_FILE,
    findings.LAUNCHED_FILE,
)


def judge_sections(
    folder: Path,
    policies: Mapping[str, policy.ExceptionsPolicy],
    architectures: Mapping[str, str],
    today: date,
) -> tuple[node.NodeVerdict | None, vulns.VulnVerdict | None]:
    """The node and vulnerability sections from the evidence beside the results (a validate
    run's ``evidence/``): each None when its files are absent (evidence of an older run, or
    results from elsewhere); ConfigError (exit 2) when only some of the package scan's are there.
    ``policies``: the targets (test instances) and each one's policy."""
    probe = _evidence_json(folder / node.EVIDENCE_FILE)
    node_verdict = None if probe is None else node.evaluate(probe, list(policies))
    documents = [_evidence_json(folder / name) for name in PACKAGE_FILES]
    present = [d is not None for d in documents]
    if any(present) and not all(present):
        lost = [n for n, there in zip(PACKAGE_FILES, present, strict=True) if not there]
        raise ConfigError(
            f"{folder / lost[0]}: missing beside the other package-scan evidence: the run's "
            "evidence is incomplete (keep the evidence folder whole)"
        )
    if not all(present):
        return node_verdict, None
    coverage, listed, counts, launched = documents
    if not isinstance(launched, dict) or not all(isinstance(v, str) for v in launched.values()):
        raise ConfigError(f"{folder / findings.LAUNCHED_FILE}: $: expected instance → time")
    vuln_verdict = vulns.evaluate(
        coverage,
        listed,
        counts,
        launched=launched,
        policies=policies,
        architectures=architectures,
        today=today,
    )
    return node_verdict, vuln_verdict


def _evidence_json(path: Path) -> Any:
    if not _present(path):
        return None
    document = safeio.load_json(path, limit=EVIDENCE_MAX_BYTES, what="evidence")
    if document is None:  # present but null: not the same as absent
        raise ConfigError(f"{path}: $: expected an object or a list, got null")
    return document


def _evidence_bytes(path: Path) -> bytes | None:
    """A document kept as downloaded (the CIS report), or None when absent."""
    if not _present(path):
        return None
    return safeio.read_bytes(path, limit=safeio.RESULTS_MAX_BYTES, what="evidence")


def _present(path: Path) -> bool:
    """A regular file is there; nothing is; else (a folder, FIFO, dangling link) ConfigError."""
    if not path.is_file():
        if path.exists() or path.is_symlink():  # a folder, FIFO or dangling link: not absent
            raise ConfigError(f"{path}: not a regular file")
        return False
    return True


def _count(obj: dict[str, Any], key: str, source: Path, path: str = "$") -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{source}: {path}.{key}: expected a count, got {value!r}")
    return value


def _scan_status_problems(scan: dict[str, Any], source: Path) -> list[str]:
    """A scan that did not COMPLETE proves nothing, whatever rows it left (as in validate)."""
    status = scan.get("status")
    if status != "COMPLETED":
        return [f"{source}: $.status: the scan is {status!r}, not COMPLETED: it proves nothing"]
    return []


ARCHITECTURES = ("x86_64", "arm64")


def _architectures(value: Any, source: Path) -> dict[str, str]:
    """run.json's target → architecture (validate took them from DescribeImages).

    They decide which architecture-scoped skips apply, so anything but x86_64/arm64 per target
    is exit 2, never ignored. They are as trustworthy as the results beside them: ``invoke gate``
    on unsigned files proves consistency only; ``verify --regate`` checks them against the record.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: $.architectures: expected an object of target: architecture")
    for target, arch in value.items():
        if arch not in ARCHITECTURES:
            raise ConfigError(
                f"{source}: $.architectures.{target}: {arch!r} is not one of x86_64, arm64"
            )
    return dict(value)


def _target_counts(
    document: Any, source: Path
) -> tuple[dict[str, results.StatusCounts], list[str]]:
    """statusCounts per target, and each target Inspector says it did not scan (as validate
    does: a status other than COMPLETED, or any targetStatusReason). A target listed twice with
    different contents is exit 2 (which one is Inspector's?); identical repeats merge."""
    if not isinstance(document, list):
        raise ConfigError(f"{source}: $: expected a list of target aggregations")
    out: dict[str, results.StatusCounts] = {}
    first: dict[str, int] = {}
    problems: list[str] = []
    for i, item in enumerate(document):
        if not isinstance(item, dict) or not isinstance(item.get("targetResourceId"), str):
            raise ConfigError(f"{source}: $[{i}]: expected a target with targetResourceId")
        target = item["targetResourceId"]
        if target in first:
            if item != document[first[target]]:
                raise ConfigError(
                    f"{source}: $[{i}].targetResourceId: {target} is listed again (first at "
                    f"$[{first[target]}]) with different contents"
                )
            continue
        first[target] = i
        raw = item.get("statusCounts") or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: $[{i}].statusCounts: expected an object")
        at = f"$[{i}].statusCounts"
        values = {k: _count(raw, k, source, at) or 0 for k in ("passed", "failed", "skipped")}
        out[target] = results.StatusCounts(**values)
        status, reason = item.get("targetStatus"), item.get("targetStatusReason")
        if status != "COMPLETED" or reason is not None:
            problems.append(
                f"{source}: $[{i}]: target {target} is {status!r} "
                f"({reason or 'no reason given'}): it was not scanned"
            )
    return out, problems
