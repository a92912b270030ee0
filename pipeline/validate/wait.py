"""Waiting: the polling schedules (real AWS's, or a quick one for the local AWS) and the wait for
the test instances to come Online in SSM."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline.aws import AwsClients, iam, ssm
from pipeline.polling import BACKOFF, SSM_WAIT, Schedule, poll_until
from pipeline.validate.settings import Runtime, ValidateSettings


def schedule(settings: ValidateSettings, real_aws: Schedule) -> Schedule:
    """``real_aws`` (its intervals capped by ``poll_max_s``) unless polling the local AWS, whose
    scans take seconds: there 2 s doubling up to ``poll_max_s``."""
    cap = settings.poll_max_s
    paced = settings.real_aws_polling
    if paced is None:
        paced = not settings.local
    if not paced:
        return replace(BACKOFF, interval_s=min(BACKOFF.interval_s, cap), max_interval_s=cap)
    interval = min(real_aws.interval_s, cap)
    return replace(real_aws, interval_s=interval, max_interval_s=min(real_aws.max_interval_s, cap))


def poll(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout_s: float,
    describe: Callable[[Any], str],
    settings: ValidateSettings,
    rt: Runtime,
    paced: Schedule | None = None,
) -> Any:
    """``poll_until`` on the run's clock; ``paced``: the schedule (default: backoff)."""
    return poll_until(
        fetch,
        done,
        timeout_s=timeout_s,
        describe=describe,
        sleep=rt.sleep,
        clock=rt.clock,
        echo=rt.echo,
        schedule=paced or schedule(settings, BACKOFF),
    )


def wait_ssm(
    clients: AwsClients, settings: ValidateSettings, rt: Runtime, ids: list[str]
) -> list[str]:
    """Wait until SSM sees every instance Online; the problems of those that never are."""
    rt.echo(f"waiting for SSM to see {len(ids)} instance(s) Online")
    status = poll(
        lambda: ssm.ping_status(clients, ids),
        lambda s: all(s.get(i) == "Online" for i in ids),
        settings.ssm_timeout_s,
        lambda s: f"{sum(v == 'Online' for v in s.values())}/{len(ids)} Online",
        settings,
        rt,
        schedule(settings, SSM_WAIT),
    )
    missing = [i for i in ids if status.get(i) != "Online"]
    return [
        f"{i}: not Online in SSM after {settings.ssm_timeout_s:.0f}s (status "
        f"{status.get(i, 'unregistered')}); likely causes: the instance profile lacks "
        f"{iam.SSM_CORE}, no route to the SSM endpoints (VPC endpoints or NAT), or the SSM agent "
        "is not running"
        for i in missing
    ]
