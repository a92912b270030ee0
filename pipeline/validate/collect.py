"""Collect: the scan's evidence into ``--out/evidence`` (the scan, the run, its targets, every
result page, Inspector's CIS report), with every reason not to trust it, for the gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import outputs, results
from pipeline.aws import AwsClients, inspector
from pipeline.errors import ConfigError, PipelineError
from pipeline.validate.preflight import Run
from pipeline.validate.scan import TERMINAL, interference, scan_problems, target_problems
from pipeline.validate.settings import Runtime


@dataclass(frozen=True)
class Collected:
    """What the gate judges: the parsed result rows, Inspector's own account of the scan, and
    every problem found on the way (each one makes the verdict ERROR)."""

    rows: tuple[results.CheckResult, ...]
    facts: results.ScanFacts | None
    problems: list[str]


def collect(
    clients: AwsClients,
    run: Run,
    rt: Runtime,
    scan: inspector.CisScan,
    config_arn: str,
    instances: list[str],
    context: dict[str, Any],
    architectures: dict[str, str],
) -> Collected:
    """Write the scan's evidence and read its results (ec2:DescribeInstances and
    inspector2:ListCisScanConfigurations for interference, then its targets, result pages and
    report)."""
    settings = run.settings
    evidence = Path(settings.out_dir) / "evidence"
    outputs.ensure_dir(evidence)
    outputs.write_json(evidence / "scan.json", scan.raw)
    outputs.write_json(
        evidence / "run.json",
        {
            "run_id": run.run_id,
            "requested_level": f"LEVEL_{settings.level}",
            "local": settings.local,
            "architectures": architectures,
            "target_labels": context["target_labels"],
        },
    )
    problems = scan_problems(scan, settings)
    problems += interference(clients, run.run_id, instances, config_arn)
    targets = inspector.scan_targets(clients, scan.scan_arn) if scan.status in TERMINAL else []
    outputs.write_json(evidence / "targets.json", [t.raw for t in targets])
    problems += target_problems(targets, instances)
    pages = [
        page
        for instance in instances
        for page in inspector.result_pages(clients, scan.scan_arn, run.account, instance)
    ]
    outputs.write_json(evidence / "results.json", pages)
    rt.echo(f"collected {sum(len(p.get('scanResultDetails', [])) for p in pages)} results")
    try:
        inspector.download_report(clients, scan.scan_arn, evidence / "cis-report.csv")
    except PipelineError as exc:  # the report is part of the evidence: without it, no PASS
        problems.append(f"CIS report not downloaded: {exc} (results are in evidence/)")
    parsed = results.parse_document(pages, str(evidence / "results.json"))
    facts, fact_problems = _scan_facts(scan, targets)
    return Collected(parsed.rows, facts, problems + fact_problems + list(parsed.problems))


def _scan_facts(
    scan: inspector.CisScan, targets: list[inspector.ScanTarget]
) -> tuple[results.ScanFacts | None, list[str]]:
    """Inspector's own account of the scan (level, per-target counts, totals) for the gate."""
    try:
        level = results.level_number(scan.raw.get("securityLevel"), f"scan {scan.scan_arn}")
    except ConfigError as exc:
        return None, [f"{exc}: the scan's level cannot be established"]
    counts = {
        t.target: results.StatusCounts(passed=t.passed, failed=t.failed, skipped=t.skipped)
        for t in targets
    }
    facts = results.ScanFacts(level, counts, scan.total_checks, scan.failed_checks, scan.scan_arn)
    return facts, []
