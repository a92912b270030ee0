"""The scan: one one-time CIS scan configuration targeting the run's instances (deleted at
cleanup), the wait for its scan, and the checks that say whether the scan can be trusted."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace

from pipeline.aws import AwsClients, ec2, iam, inspector
from pipeline.polling import SCAN_WAIT
from pipeline.validate import readiness
from pipeline.validate.cleanup import quietly
from pipeline.validate.launch import run_tags
from pipeline.validate.settings import Runtime, ValidateSettings, fresh_run
from pipeline.validate.wait import poll, schedule

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def scan_configuration(
    clients: AwsClients, settings: ValidateSettings, rt: Runtime, run_id: str, cleanup: ExitStack
) -> str:
    """The run's scan configuration (an earlier run's reused, never duplicated): its ARN."""
    name = f"cis-validate-{run_id}"
    # Reuse (never duplicate) an earlier run's configuration; a run ID made by this run has none.
    found = [] if fresh_run(settings) else inspector.find_configurations(clients, name)
    if found:
        arn = found[0]
        rt.echo(f"reusing scan configuration {arn}")
    else:
        arn = inspector.create_one_time_scan(
            clients,
            scan_name=name,
            level=settings.level,
            target_tags={ec2.RUN_TAG: [run_id]},
            tags=run_tags(run_id, rt.now()),
        )
        rt.echo(f"created one-time LEVEL_{settings.level} CIS scan configuration {arn}")
    cleanup.callback(
        quietly,
        rt,
        f"delete scan configuration {arn}",
        inspector.delete_configuration,
        clients,
        arn,
    )
    return arn


# No two calls of the loop closer than this: the package scan is looked at halfway through a
# wait of at least twice this, or in place of the scan once the scan has ended.
MIN_GAP_S = 5.0


def wait_scan(
    clients: AwsClients,
    settings: ValidateSettings,
    rt: Runtime,
    config_arn: str,
    side: readiness.Readiness | None = None,
) -> inspector.CisScan | None:
    """The configuration's scan once it ends (or as it stands at the timeout); None: none yet.

    ``side``: Inspector's package scan of the instances, awaited in the same loop (the scan's
    timeout bounds both), so it overlaps the CIS scan instead of following it. One call at a
    time but once: ``ListCisScans`` on the scan's schedule, ``ListCoverage`` halfway through each
    wait long enough to keep both ``MIN_GAP_S`` apart, right after the poll that sees the scan
    end (if the package scan is still pending then), and then in the scan's place.
    """
    last: list[inspector.CisScan | None] = [None]

    def ended() -> bool:
        return last[0] is not None and last[0].status in TERMINAL

    def fetch() -> inspector.CisScan | None:
        if not ended():
            last[0] = inspector.find_scan(clients, config_arn)
            if ended() and side is not None and not side.done:
                # the scan just ended: look at the package scan now, not a wait later (the
                # loop's one moment of two calls: it would otherwise add up to an interval)
                readiness.tick(clients, side)
        elif side is not None and not side.done:
            readiness.tick(clients, side)
        return last[0]

    def sleep(seconds: float) -> None:
        if side is None or side.done or ended() or seconds < 2 * MIN_GAP_S:
            rt.sleep(seconds)
            return
        rt.sleep(seconds / 2)
        readiness.tick(clients, side)
        rt.sleep(seconds - seconds / 2)

    def describe(scan: inspector.CisScan | None) -> str:
        shown = f"scan {scan.status}" if scan else "scan not listed yet"
        return f"{shown}; {side.describe()}" if side is not None else shown

    found: inspector.CisScan | None = poll(
        fetch,
        lambda s: s is not None and s.status in TERMINAL and (side is None or side.done),
        settings.scan_timeout_s,
        describe,
        settings,
        replace(rt, sleep=sleep),
        schedule(settings, SCAN_WAIT),
    )
    return found


def scan_problems(scan: inspector.CisScan, settings: ValidateSettings) -> list[str]:
    """Why the scan itself proves nothing: not ended, not COMPLETED, or zero checks."""
    if scan.status not in TERMINAL:
        return [f"scan {scan.scan_arn} still {scan.status} after {settings.scan_timeout_s:.0f}s"]
    if scan.status != "COMPLETED":
        return [f"scan {scan.scan_arn} ended {scan.status}"]
    if not scan.total_checks:
        return [
            f"scan {scan.scan_arn} COMPLETED with zero checks: the instance role probably lacks "
            f"{iam.CIS_POLICY}, or another scan configuration targets the same instances"
        ]
    return []


def interference(
    clients: AwsClients, run_id: str, instances: list[str], config_arn: str
) -> tuple[list[str], dict[str, str]]:
    """What was changed from outside while the scan ran (fail closed: exit 4). A test instance
    that stopped or went away, or a deleted scan configuration, leaves results nobody can
    vouch for (ec2:DescribeInstances, inspector2:ListCisScanConfigurations). Also when each
    instance launched, for the package scan's evidence (one DescribeInstances serves both)."""
    found = ec2.run_instances(clients, run_id)
    running = {i.id for i in found if i.state == "running"}
    launched = {i.id: i.launched.isoformat() for i in found if i.launched and i.id in instances}
    problems = [
        f"{i}: no longer running after the scan (terminated or stopped from outside?): its "
        "results cannot be trusted"
        for i in instances
        if i not in running
    ]
    if config_arn not in inspector.find_configurations(clients, f"cis-validate-{run_id}"):
        problems.append(f"scan configuration {config_arn} was deleted from outside during the scan")
    return problems, launched


_REASON_HINT = {
    "SSM_UNMANAGED": ": Inspector could not reach it through SSM (agent, profile, endpoints)",
    "UNSUPPORTED_OS": ": Inspector has no CIS benchmark for this operating system",
    "SCAN_IN_PROGRESS": ": the instance never reported back (role without the CIS policy?)",
}


def target_problems(targets: list[inspector.ScanTarget], instances: list[str]) -> list[str]:
    """Each instance the scan did not cover, or covered with a reason (meaning: not scanned)."""
    seen: dict[str, inspector.ScanTarget] = {}
    problems = []
    for item in targets:  # which of two different answers is Inspector's? Neither, then.
        if item.target in seen and seen[item.target] != item:
            problems.append(
                f"{item.target}: Inspector lists this target more than once, with different "
                "status or counts"
            )
        seen.setdefault(item.target, item)
    for instance in instances:
        target = seen.get(instance)
        if target is None:
            problems.append(f"{instance}: not a target of the scan (tags not matched?)")
        elif target.status != "COMPLETED" or target.reason:
            # The service reports e.g. COMPLETED + SSM_UNMANAGED: a reason means "not scanned".
            hint = _REASON_HINT.get(target.reason or "", "")
            problems.append(
                f"{instance}: scan target {target.status} ({target.reason or 'no reason given'})"
                f"{hint}"
            )
    return problems
