"""Collect: the scan's evidence into ``--out/evidence`` (the scan, the run, its targets, every
result page, Inspector's per-check view and CIS report), with every reason not to trust it, for
the gate (which cross-checks every row's status with both views: ``pipeline.crosscheck``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import crosscheck, outputs, results
from pipeline.aws import AwsClients, inspector
from pipeline.errors import AwsError, ConfigError, PipelineError
from pipeline.validate.preflight import Run
from pipeline.validate.scan import TERMINAL, interference, scan_problems, target_problems
from pipeline.validate.settings import Runtime
from pipeline.validate.wait import poll


@dataclass(frozen=True)
class Collected:
    """What the gate judges: the parsed result rows, Inspector's own account of the scan, and
    every problem found on the way (each one makes the verdict ERROR)."""

    rows: tuple[results.CheckResult, ...]
    facts: results.ScanFacts | None
    problems: list[str]
    launched: dict[str, str]  # instance → when it launched (ISO 8601), as EC2 says


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
    inspector2:ListCisScanConfigurations for interference, then its targets, result pages,
    per-check view and report).

    Raises ConfigError (exit 2) when evidence cannot be written where it belongs (a symbolic
    link planted in ``--out/evidence`` is refused, never followed)."""
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
    changed, launched = interference(clients, run.run_id, instances, config_arn)
    problems += changed
    terminal = scan.status in TERMINAL
    targets = inspector.scan_targets(clients, scan.scan_arn) if terminal else []
    outputs.write_json(evidence / "targets.json", [t.raw for t in targets])
    problems += target_problems(targets, instances)
    pages = [
        page
        for instance in instances
        for page in inspector.result_pages(clients, scan.scan_arn, run.account, instance)
    ]
    outputs.write_json(evidence / "results.json", pages)
    rt.echo(f"collected {sum(len(p.get('scanResultDetails', [])) for p in pages)} results")
    checks = inspector.check_aggregation_items(clients, scan.scan_arn) if terminal else None
    outputs.write_json(evidence / crosscheck.CHECKS_FILE, checks or [])
    report: bytes | None = None
    try:
        report = _report(clients, run, rt, scan.scan_arn)
    except PipelineError as exc:  # the report is part of the evidence: without it, no PASS
        problems.append(f"CIS report not downloaded: {exc} (results are in evidence/)")
    if report is not None:  # written like every report: atomically, never through a link
        outputs.write_bytes(evidence / crosscheck.REPORT_FILE, report)
    parsed = results.parse_document(pages, str(evidence / "results.json"))
    facts, fact_problems = _scan_facts(scan, targets, checks, report, evidence)
    return Collected(parsed.rows, facts, problems + fact_problems + list(parsed.problems), launched)


def _report(clients: AwsClients, run: Run, rt: Runtime, scan_arn: str) -> bytes:
    """The scan's CSV report: Inspector answers ``IN_PROGRESS`` while it makes it, so ask
    again (on the scan's schedule, within the scan's timeout) until it says otherwise."""
    status, url = poll(
        lambda: inspector.request_report(clients, scan_arn),
        lambda answer: answer[0] != "IN_PROGRESS",
        run.settings.scan_timeout_s,
        lambda answer: f"CIS report {answer[0]}",
        run.settings,
        rt,
    )
    if status == "IN_PROGRESS":
        raise AwsError(f"still IN_PROGRESS after {run.settings.scan_timeout_s:.0f}s")
    return inspector.download_report(scan_arn, status, url)


def _scan_facts(
    scan: inspector.CisScan,
    targets: list[inspector.ScanTarget],
    checks: list[dict[str, Any]] | None,
    report: bytes | None,
    evidence: Path,
) -> tuple[results.ScanFacts | None, list[str]]:
    """Inspector's own account of the scan (level, per-target counts, totals, its per-check
    view and report, each with what cannot be used of it) for the gate."""
    try:
        level = results.level_number(scan.raw.get("securityLevel"), f"scan {scan.scan_arn}")
    except ConfigError as exc:
        return None, [f"{exc}: the scan's level cannot be established"]
    counts = {
        t.target: results.StatusCounts(passed=t.passed, failed=t.failed, skipped=t.skipped)
        for t in targets
    }
    by_check: results.CheckCounts | None = None
    report_rows: tuple[results.ReportRow, ...] | None = None
    problems: list[str] = []
    if checks is not None:  # the scan ended: its per-check view is there to compare with
        by_check, problems = crosscheck.read_checks(
            checks, str(evidence / crosscheck.CHECKS_FILE), scan.scan_arn
        )
    if report is not None:
        report_rows, unread = crosscheck.read_report(
            report, str(evidence / crosscheck.REPORT_FILE), scan.scan_arn
        )
        problems += unread
    facts = results.ScanFacts(
        level,
        counts,
        scan.total_checks,
        scan.failed_checks,
        scan.scan_arn,
        check_counts=by_check,
        report_rows=report_rows,
    )
    return facts, problems
