"""``invoke channels``: each channel's image per region, its verification now, its history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.aws import AwsClients
from pipeline.cli import account
from pipeline.cli.invocation import Invocation
from pipeline.errors import ExitCode
from pipeline.localaws import LocalAws
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.release.status import channel_status, status_lines
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests.release.conftest import POLICY_DIR, REGIONS, base_ami, pipeline_ami, release
from tests.validate.conftest import FakeTime, settings

ROOT = Path(__file__).resolve().parents[2]
PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _released(aws: LocalAws, clients: AwsClients, tmp_path: Path) -> str:
    ami = pipeline_ami(clients, "released")
    fake = FakeTime(aws)
    rt = Runtime(now=shifted_now, echo=lambda _: None, sleep=fake.sleep, clock=fake.clock)
    assert run_validate(settings(tmp_path, ami), clients, rt).verdict.value == "PASS"
    run_promote(
        PromoteRequest(ami=ami, regions=("us-east-1", "eu-west-1")),
        release(),
        clients,
        shifted_now(),
        lambda _: None,
        policy_dir=POLICY_DIR,
        known_regions=REGIONS,
    )
    return ami


def test_channels_show_image_verification_and_history_per_region(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    ami = _released(aws, clients, tmp_path)
    config = release(regions=["eu-west-1"])
    found = channel_status(config, clients, now=shifted_now(), policy_dir=POLICY_DIR)
    assert [(c.region, c.channel, c.parameter) for c in found] == [
        ("eu-west-1", "stable", PARAM),
        ("us-east-1", "stable", PARAM),
    ]
    home = found[1]
    assert (home.image, home.verified, home.reasons) == (ami, True, ())
    assert [v.version for v in home.history] == [1] and home.history[0].image == ami
    assert found[0].image != ami and found[0].verified, found[
        0
    ].reasons  # a copy: its source's record

    # Someone publishes a stock image by hand: shown NOT VERIFIED, the history keeps both.
    stock = base_ami(clients)
    clients.ssm.put_parameter(Name=PARAM, Value=stock, Type="String", Overwrite=True)
    (changed,) = channel_status(release(), clients, now=shifted_now(), channel="stable")
    assert (changed.image, changed.verified) == (stock, False) and changed.reasons
    assert [v.image for v in changed.history] == [stock, ami]
    lines = status_lines([changed])
    assert lines[0].startswith("us-east-1  stable") and "NOT VERIFIED" in lines[0]
    assert lines[1].startswith("    v2  " + stock) and lines[2].startswith("    v1  " + ami)


def test_invoke_channels_json_and_exit_0(
    aws: LocalAws, clients: AwsClients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ami = _released(aws, clients, tmp_path)
    inv = Invocation(
        {"policy_dir": "policies/exceptions", "release": {"channels": {"stable": {}}}}, ROOT
    )
    capsys.readouterr()
    assert account.show_channels(inv, None, True) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    (entry,) = data["channels"]
    assert entry["image"] == ami and entry["verified"] is True
    assert entry["history"][0]["image"] == ami
    assert account.show_channels(inv, None, False) == ExitCode.OK
    assert f"stable     al2023/x86_64/1.32  {ami}  verified" in capsys.readouterr().out


def test_no_channel_and_an_unknown_channel(aws: LocalAws, clients: AwsClients) -> None:
    assert channel_status(release(), clients, now=shifted_now()) == []
    assert status_lines([]) == ["no channel parameters found"]
    with pytest.raises(Exception, match="--channel nightly: not a configured channel"):
        channel_status(release(), clients, now=shifted_now(), channel="nightly")
