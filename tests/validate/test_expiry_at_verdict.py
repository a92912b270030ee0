"""Exceptions expire as of the moment the verdict is made and signed, never as of the moment the
scan started: a run that crosses midnight on an exception's expiry day must not sign a PASS that
needed it, and ``verify --regate`` must judge as of the same instant."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.aws import AwsClients
from pipeline.evidence.regate import regate
from pipeline.evidence.verify import verify_ami
from pipeline.gate import Outcome
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests.validate.conftest import ROOT, FakeTime, ami_tags, make_ami, settings

EXPIRY_DAY = datetime(2026, 12, 24, tzinfo=UTC)


def _policies_expiring(folder: Path, day: datetime) -> Path:
    """The shipped policies with every exception (and skip) expiring on ``day``."""
    shutil.copytree(ROOT / "policies/exceptions", folder)
    for path in folder.glob("*.yaml"):
        text = re.sub(r"expires: \d{4}-\d{2}-\d{2}", f"expires: {day:%Y-%m-%d}", path.read_text())
        path.write_text(text)
    return folder


def _clock_from(start: datetime, fake: FakeTime) -> Callable[[], datetime]:
    """Wall-clock time that moves with the run's fake sleeping."""
    return lambda: start + timedelta(seconds=fake.clock())


def test_an_exception_that_expires_during_the_scan_does_not_cover_the_verdict(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    aws.load_scenario({"scan": {"duration_s": 600}})  # starts before midnight, ends after it
    fake = FakeTime(aws)
    start = EXPIRY_DAY.replace(hour=23, minute=58)
    rt = Runtime(
        echo=lambda _: None, sleep=fake.sleep, clock=fake.clock, now=_clock_from(start, fake)
    )
    policies = _policies_expiring(tmp_path / "policies", EXPIRY_DAY)
    ami = make_ami(clients)

    verdict = run_validate(settings(tmp_path, ami, policy_dir=policies), clients, rt)

    assert verdict.verdict is Outcome.FAIL, verdict.errors
    assert verdict.expired_exceptions and not verdict.failed_excepted
    assert ami_tags(clients, ami)["cis:verdict"] == "FAIL"
    record = verify_ami(clients, ami)
    assert record.time_verified is not None and record.time_verified.date() > EXPIRY_DAY.date()
    again = regate(record)
    assert again.reproduced and again.recomputed == "FAIL", again


def test_the_same_run_a_day_earlier_is_covered(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    aws.load_scenario({"scan": {"duration_s": 600}})
    fake = FakeTime(aws)
    start = (EXPIRY_DAY - timedelta(days=1)).replace(hour=23, minute=58)
    rt = Runtime(
        echo=lambda _: None, sleep=fake.sleep, clock=fake.clock, now=_clock_from(start, fake)
    )
    policies = _policies_expiring(tmp_path / "policies", EXPIRY_DAY)
    ami = make_ami(clients)

    verdict = run_validate(settings(tmp_path, ami, policy_dir=policies), clients, rt)

    assert verdict.verdict is Outcome.PASS, verdict.errors
    again = regate(verify_ami(clients, ami))
    assert again.reproduced and again.recomputed == "PASS", again
