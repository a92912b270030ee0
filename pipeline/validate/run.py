"""One validate run, step by step: preflight, launch, wait for SSM, scan, collect, gate, record,
clean up. Each step is a module of this package."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import gate, heartbeat, sections
from pipeline.aws import AwsClients, BotoCoreError, ClientError, boundary
from pipeline.errors import AwsError, PipelineError
from pipeline.validate import readiness
from pipeline.validate.cleanup import Signalled, cleaning_up, leftovers
from pipeline.validate.collect import collect
from pipeline.validate.launch import launch_all
from pipeline.validate.preflight import Run, preflight
from pipeline.validate.record import (
    record_aborted,
    record_exit_1,
    record_verdict,
    run_context,
    supersede_verdicts,
)
from pipeline.validate.scan import scan_configuration, wait_scan
from pipeline.validate.settings import Runtime, ValidateSettings
from pipeline.validate.wait import wait_ssm


def run_validate(settings: ValidateSettings, clients: AwsClients, rt: Runtime) -> gate.Verdict:
    """Validate AMIs (see ``_run``); botocore errors become one-line pipeline errors."""
    with boundary("validate"):
        return _run(settings, clients, rt)


def _run(settings: ValidateSettings, clients: AwsClients, rt: Runtime) -> gate.Verdict:
    """Validate every AMI in one scan; write reports into ``settings.out_dir``; return the verdict.

    Raises ConfigError (exit 2) for bad input found in preflight, ScanError (exit 4) when
    Inspector is not enabled, Interrupted on a signal. Trust problems after launch come back as
    an ERROR verdict (exit 4) with the reports written.
    """
    run = preflight(settings, clients, rt)
    context = run_context(run, clients)
    try:
        with cleaning_up(clients, rt, keep=run.settings.keep) as (cleanup, beat):
            supersede_verdicts(clients, run.images, run.run_id, rt)
            verdict = _scan_and_gate(clients, run, rt, context, cleanup, beat)
    except (PipelineError, ClientError, BotoCoreError, Signalled) as caught:
        exc = record_aborted(caught, context, run, clients, rt)
        if exc is caught:
            raise
        raise exc from caught
    verdict = record_verdict(verdict, context, run, clients, rt)
    leaked = [] if run.settings.keep else leftovers(clients, run.run_id)
    if leaked:  # the verdict stands, but the run did not end cleanly: exit 1, and say so
        note = f"cleanup left {', '.join(leaked)}: `invoke reap` removes them"
        record_exit_1(verdict, note, run.out)
        raise AwsError(note)
    return verdict


def _scan_and_gate(
    clients: AwsClients,
    run: Run,
    rt: Runtime,
    context: dict[str, Any],
    cleanup: ExitStack,
    beat: heartbeat.Heartbeat,
) -> gate.Verdict:
    """Launch, wait for SSM, scan, collect and judge; what it creates goes on ``cleanup``."""
    settings = run.settings
    instances = launch_all(clients, run, rt, context, cleanup, beat)
    chosen = {i: run.policies[img.platform] for i, img in instances.items() if img.platform}
    context["target_labels"] = {
        i: f"{img.id} {img.platform.short if img.platform else '?'}/{img.architecture}"
        for i, img in instances.items()
    }
    architectures = {i: str(img.architecture) for i, img in instances.items()}
    problems = wait_ssm(clients, settings, rt, list(instances))
    if problems:
        return gate.evaluate(
            [], chosen, _judged(rt, context), level=settings.level, problems=problems
        )

    side = readiness.start(clients, rt, list(instances), run.run_id, run.probe)
    config_arn = scan_configuration(clients, settings, rt, run.run_id, cleanup)
    context["scan_configuration_arn"] = config_arn
    scan = wait_scan(clients, settings, rt, config_arn, side)
    if scan is None:
        missing = [f"no scan appeared for {config_arn}"]
        return gate.evaluate(
            [], chosen, _judged(rt, context), level=settings.level, problems=missing
        )
    context["scan_arn"] = scan.scan_arn
    found = collect(clients, run, rt, scan, config_arn, list(instances), context, architectures)
    today = _judged(rt, context)
    node, vulns = readiness.collect(
        clients,
        side,
        Path(settings.out_dir) / "evidence",
        settings=settings,
        rt=rt,
        launched=found.launched,
        policies=chosen,
        architectures=architectures,
        today=today,
    )
    cis = gate.evaluate(
        found.rows,
        chosen,
        today,
        level=settings.level,
        facts=found.facts,
        expected_targets=list(instances),
        problems=found.problems,
        architectures=architectures,
    )
    return sections.combine(cis, node, vulns)


def _judged(rt: Runtime, context: dict[str, Any]) -> date:
    """The day exceptions expire by: the moment the verdict is made, which the signed record
    then carries as its verification time (``record_verdict``), so ``verify --regate`` judges
    as of the same instant. Never the day the scan started: a scan can cross midnight."""
    now = rt.now()
    context["judged_at"] = now.isoformat()  # verdict.json's context says it too
    return now.date()
