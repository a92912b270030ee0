"""Cleanup on every way out (normal end, error, SIGINT, SIGTERM) unless ``keep`` is set: the
run's heartbeat, its signal handling, the cleanup steps and what they could not delete."""

from __future__ import annotations

import _thread
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from types import FrameType

from pipeline import heartbeat
from pipeline.aws import AwsClients, ec2, inspector
from pipeline.errors import AwsError, ExitCode, PipelineError
from pipeline.validate.settings import Runtime


class Interrupted(PipelineError):
    """SIGTERM/SIGINT arrived; everything created was cleaned up. Exit 130 (SIGINT) or 143."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; cleaned up")
        self.exit_code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


class Signalled(BaseException):
    """Raised by the signal handler. A BaseException, so no ``except Exception`` on the way
    (botocore retries any Exception a send raises) can swallow it; the run turns it into
    Interrupted once the cleanup has run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class HeartbeatLost(AwsError):
    """The run's heartbeat could not be written (``heartbeat.MAX_FAILURES`` times in a row): the
    run stopped and cleaned up before ``invoke reap`` could take it for abandoned (exit 1)."""


@contextmanager
def cleaning_up(
    clients: AwsClients, rt: Runtime, *, keep: bool
) -> Iterator[tuple[ExitStack, heartbeat.Heartbeat]]:
    """The run's cleanup stack and heartbeat: the block registers what it creates on the stack,
    which deletes it on every way out, signals included; ``keep`` leaves it after a normal end.

    A lost heartbeat interrupts the run as SIGTERM would (the cleanup runs) and ends it with
    HeartbeatLost naming the cause; ``keep`` is then ignored (the resources would be reaped).
    """
    installed: list[bool] = []

    def on_lost(reason: str) -> None:
        rt.echo(f"ERROR  {reason}: stopping the run and cleaning up")
        if installed:  # the run's main thread handles SIGTERM: stop it there
            _thread.interrupt_main(signal.SIGTERM)

    # The heartbeat stops first (innermost), then cleanup deletes what it kept alive.
    beat = heartbeat.Heartbeat(
        partial(ec2.write_tags, clients), now=rt.now, echo=rt.echo, on_lost=on_lost
    )
    try:
        with ExitStack() as cleanup, _signals_raise(installed), _beating(beat):
            yield cleanup, beat
            if beat.lost:
                raise HeartbeatLost(f"validate stopped: {beat.lost}")
            if keep:
                rt.echo("--keep: leaving the instances, security group and scan configuration")
                cleanup.pop_all()
    except Signalled:
        if beat.lost:
            raise HeartbeatLost(f"validate stopped: {beat.lost}; cleaned up") from None
        raise


def terminate(clients: AwsClients, rt: Runtime, ids: list[str]) -> None:
    quietly(rt, f"terminate {', '.join(ids)}", ec2.terminate, clients, ids)
    quietly(rt, "wait for termination", ec2.wait_terminated, clients, ids)


def quietly(rt: Runtime, what: str, fn: Callable[..., object], *args: object) -> None:
    """Cleanup step: a failure is reported, never raised (it must not hide the verdict)."""
    try:
        fn(*args)
        rt.echo(f"cleanup: {what}")
    except Exception as exc:  # noqa: BLE001 - cleanup must go on; the failure is reported
        rt.echo(f"WARNING  cleanup failed: {what}: {exc}")


def leftovers(clients: AwsClients, run_id: str) -> list[str]:
    """What the run created that its cleanup could not delete (ec2:DescribeInstances,
    ec2:DescribeSecurityGroups, inspector2:ListCisScanConfigurations)."""
    left = [i.id for i in ec2.run_instances(clients, run_id) if i.state in ("pending", "running")]
    groups = ec2.tagged_security_groups(clients, ec2.RUN_TAG)
    left += [group for group, tags in groups.items() if tags.get(ec2.RUN_TAG) == run_id]
    return left + inspector.find_configurations(clients, f"cis-validate-{run_id}")


@contextmanager
def _beating(beat: heartbeat.Heartbeat) -> Iterator[None]:
    """Stop the run's heartbeat on every way out (it starts once the instances exist)."""
    try:
        yield
    finally:
        beat.stop()


@contextmanager
def _signals_raise(installed: list[bool]) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into Signalled so ``finally``/ExitStack cleanup runs; further
    signals are ignored until cleanup is done (a second Ctrl-C must not leak the instances).
    ``installed`` gets True while the handlers are in place (the main thread only)."""
    signals = (signal.SIGINT, signal.SIGTERM)

    def handler(signum: int, _: FrameType | None) -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
        raise Signalled(signum)

    try:
        previous = {sig: signal.signal(sig, handler) for sig in signals}
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    installed.append(True)
    try:
        yield
    finally:
        installed.clear()
        for sig, old in previous.items():
            signal.signal(sig, old)
