"""``invoke reap``: clean up what pipeline runs leaked (test instances, build instances,
scan configurations, security groups). Safe to run any time: it only touches resources
tagged by this pipeline whose run is over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from pipeline.aws import AwsClients, boundary, ec2, inspector
from pipeline.errors import PipelineError

RUN_TAG = ec2.RUN_TAG
EXPIRES_TAG = "cis-validate:expires-at"
BUILD_RUN_TAG = "cis-ami:run-id"
CONFIG_PREFIX = "cis-validate-"


@dataclass
class ReapReport:
    instances: list[str] = field(default_factory=list)
    configurations: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.instances) + len(self.configurations) + len(self.security_groups)


def expired(instance: ec2.Instance, now: datetime, max_age: timedelta) -> bool:
    """A test instance past its expires-at tag, or any tagged instance older than ``max_age``."""
    stamp = instance.tags.get(EXPIRES_TAG)
    if stamp:
        try:
            if datetime.fromisoformat(stamp.replace("Z", "+00:00")) <= now:
                return True
        except ValueError:
            return True  # a tag we did not write: treat as leaked
    return instance.launched is not None and now - instance.launched > max_age


def run_reap(
    clients: AwsClients,
    now: datetime,
    echo: Callable[[str], None],
    *,
    max_age: timedelta = timedelta(hours=3),
    dry_run: bool = False,
) -> ReapReport:
    """Find and delete leaked resources; failures are reported, the rest still reaped."""
    report = ReapReport()
    act = _Actor(report, echo, dry_run)
    with boundary("reap"):
        live = ec2.tagged_instances(clients, RUN_TAG) + ec2.tagged_instances(clients, BUILD_RUN_TAG)
        doomed = [i for i in live if expired(i, now, max_age)]
        survivors = {i.tags.get(RUN_TAG) for i in live if i not in doomed}
        if doomed:
            ids = [i.id for i in doomed]
            act.do(
                f"instances {', '.join(ids)}",
                report.instances,
                ids,
                lambda: ec2.terminate(clients, ids),
            )
        for name, arn in inspector.configurations_named(clients, CONFIG_PREFIX).items():
            if name.removeprefix(CONFIG_PREFIX) not in survivors:
                act.do(
                    f"scan configuration {name}",
                    report.configurations,
                    [arn],
                    partial(inspector.delete_configuration, clients, arn),
                )
        if doomed and not dry_run:
            act.do(
                "(waiting for terminations)",
                [],
                [],
                lambda: ec2.wait_terminated(clients, [i.id for i in doomed]),
            )
        for group_id, tags in ec2.tagged_security_groups(clients, RUN_TAG).items():
            if tags.get(RUN_TAG) not in survivors:
                act.do(
                    f"security group {group_id}",
                    report.security_groups,
                    [group_id],
                    partial(ec2.delete_security_group, clients, group_id),
                )
    echo(f"reap: {report.total} resource(s) {act.verb}, {len(report.failures)} failure(s)")
    return report


@dataclass
class _Actor:
    """Runs one clean-up action: in a dry run only reports it; a failure is kept, not raised."""

    report: ReapReport
    echo: Callable[[str], None]
    dry_run: bool

    @property
    def verb(self) -> str:
        return "would delete" if self.dry_run else "deleted"

    def do(
        self, what: str, bucket: list[str], items: list[str], action: Callable[[], object]
    ) -> None:
        try:
            if not self.dry_run:
                action()
        except PipelineError as exc:
            self.report.failures.append(f"{what}: {exc}")
            self.echo(f"WARNING  deleting {what} failed: {exc}")
            return
        bucket.extend(items)
        if items:
            self.echo(f"{self.verb} {what}")
