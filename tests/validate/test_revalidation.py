"""Re-validating a released image (issue 23): invalid input is refused before any tag changes,
and an aborted re-validation is recovered by running ``invoke validate --ami X`` again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import AwsClients
from pipeline.errors import AwsError, ExitCode, PipelineError
from pipeline.evidence.verify import verify_ami
from pipeline.gate import Outcome
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from pipeline.validate import run as validate_run
from tests.validate.conftest import ami_tags, make_ami, settings


def _validated(clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path) -> str:
    ami = make_ami(clients, "al2023", "x86_64")
    verdict = run_validate(settings(tmp_path / "first", ami), clients, runtime())
    assert verdict.verdict is Outcome.PASS
    assert verify_ami(clients, ami).ok
    return ami


def _other_vpc_group(clients: AwsClients) -> str:
    vpc = clients.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    return str(
        clients.ec2.create_security_group(GroupName="x", Description="x", VpcId=vpc)["GroupId"]
    )


BAD_INPUT: list[tuple[str, Callable[[AwsClients], dict[str, Any]], str]] = [
    ("subnet", lambda _: {"subnet_id": "subnet-0000000000000bad0"}, "--subnet-id subnet-0000"),
    (
        "security group",
        lambda _: {"security_group_id": "sg-0000000000000bad0"},
        "--security-group-id sg-0000000000000bad0 (pipeline.network.security_group_id): no "
        "such security group",
    ),
    ("group in another VPC", lambda c: {"security_group_id": _other_vpc_group(c)}, "not in the"),
    ("profile", lambda _: {"instance_profile": "no-such-profile"}, "--instance-profile"),
]


@pytest.mark.parametrize(("name", "change", "fragment"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_invalid_input_leaves_a_released_image_s_tags_and_record_untouched(
    name: str,
    change: Callable[[AwsClients], dict[str, Any]],
    fragment: str,
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
) -> None:
    ami = _validated(clients, runtime, tmp_path)
    before = ami_tags(clients, ami)
    with pytest.raises(PipelineError) as err:
        run_validate(settings(tmp_path / "again", ami, **change(clients)), clients, runtime())
    assert err.value.exit_code == ExitCode.INVALID_INPUT, name
    assert fragment in str(err.value), str(err.value)
    assert ami_tags(clients, ami) == before and before["cis:verdict"] == "PASS"
    assert verify_ami(clients, ami).ok


def test_an_aborted_revalidation_is_recovered_by_validating_again(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ami = _validated(clients, runtime, tmp_path)

    def crash(*_: Any, **__: Any) -> Any:
        raise AwsError("ec2:RunInstances: the run died here")

    with monkeypatch.context() as patch:
        patch.setattr(validate_run, "launch_all", crash)
        with pytest.raises(AwsError):
            run_validate(settings(tmp_path / "aborted", ami), clients, runtime())
    assert ami_tags(clients, ami)["cis:verdict"] == "PENDING"  # fail closed: no older PASS
    assert not verify_ami(clients, ami).ok
    # The documented recovery (README, "Release channels"): validate the image again.
    again = run_validate(settings(tmp_path / "again", ami), clients, runtime())
    assert again.verdict is Outcome.PASS
    assert ami_tags(clients, ami)["cis:verdict"] == "PASS"
    assert verify_ami(clients, ami).ok
