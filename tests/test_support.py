"""What real AWS can validate today (no AL2), and the one-line hint for a missing `local` extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import support
from pipeline.aws import AwsClients, make_clients
from pipeline.build import run_build
from pipeline.catalog import Platform
from pipeline.errors import ConfigError, ExitCode
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from pipeline.validate import preflight as validate_preflight
from tests._dates import shifted_now
from tests.validate.conftest import FakeTime, make_ami, settings

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).parent / "invoke")
DATES = ("2025-11-26", "2026-06-30")


@pytest.mark.parametrize(
    ("platform", "real_aws", "refused"),
    [
        (Platform.AMAZON_LINUX_2023, True, False),
        (Platform.AMAZON_LINUX_2023, False, False),
        (Platform.AMAZON_LINUX_2, True, True),
        (Platform.AMAZON_LINUX_2, False, False),  # the local AWS rehearsal keeps AL2
    ],
)
def test_the_support_table(platform: Platform, real_aws: bool, refused: bool) -> None:
    if not refused:
        support.check_real_aws([platform], real_aws=real_aws, what="--platform x")
        return
    with pytest.raises(ConfigError) as err:
        support.check_real_aws([platform], real_aws=real_aws, what="--platform al2")
    message = str(err.value)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert message.startswith("--platform al2: ") and "\n" not in message
    assert all(day in message for day in DATES), message


def test_only_al2023_is_scannable_on_real_aws() -> None:
    assert {Platform.AMAZON_LINUX_2023} == support.REAL_AWS_PLATFORMS
    assert support.AL2_EKS_END_OF_SUPPORT < support.AL2_INSPECTOR_CIS_DISCONTINUED


def _no_network(clients: AwsClients) -> None:
    """Any HTTP request from these clients fails the test (they point at real AWS)."""

    def refuse(**kwargs: Any) -> None:
        raise AssertionError(f"an AWS request was about to be sent: {kwargs.get('event_name')}")

    for name in ("ec2", "iam", "inspector2", "ssm", "sts"):
        getattr(clients, name).meta.events.register("before-send.*.*", refuse)


@pytest.mark.parametrize("platforms", [["al2"], ["al2023", "al2"]])
def test_build_refuses_al2_against_real_aws_before_any_call(platforms: list[str]) -> None:
    clients = make_clients(region="us-east-1")  # no endpoint override: real AWS
    _no_network(clients)

    def runner(*_: Any) -> int:
        raise AssertionError("packer must not run")

    with pytest.raises(ConfigError) as err:
        run_build(platforms, ["x86_64", "arm64"], local=False, clients=clients, runner=runner)
    assert all(day in str(err.value) for day in DATES)
    assert clients.calls.total == 0


def test_validate_refuses_an_al2_ami_on_real_aws_before_launching(
    aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = make_clients()
    ami = make_ami(clients, "al2", "x86_64")
    # The local AWS stands in for a real endpoint: the code asks only is_aws_endpoint.
    monkeypatch.setattr(validate_preflight, "is_aws_endpoint", lambda _url: True)
    fake = FakeTime(aws)
    with pytest.raises(ConfigError) as err:
        run_validate(
            settings(tmp_path, ami),
            clients,
            Runtime(now=shifted_now, echo=lambda _: None, sleep=fake.sleep, clock=fake.clock),
        )
    assert str(err.value).startswith(f"--ami {ami}: Amazon Linux 2 cannot be validated")
    assert all(day in str(err.value) for day in DATES)
    assert clients.calls.counts["ec2:RunInstances"] == 1  # make_ami's own, none by validate
    assert clients.calls.counts["inspector2:CreateCisScanConfiguration"] == 0


def test_cli_build_al2_on_real_aws_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    proc = subprocess.run(
        [INVOKE, "build", "--platform", "al2", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --platform al2: "), proc.stderr
    assert all(day in lines[0] for day in DATES)


# --- a runtime-only install asked for the local AWS ----------------------------------------------


def test_require_local_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    support.require_local_extra()  # the dev environment has it
    monkeypatch.setitem(sys.modules, "moto", None)  # what `import moto` sees without the extra
    with pytest.raises(ConfigError) as err:
        support.require_local_extra()
    assert str(err.value) == support.LOCAL_EXTRA_HINT
    assert "'local' extra" in str(err.value) and ".venv/bin/pip install" in str(err.value)


@pytest.mark.parametrize(
    ("missing", "mapped"),
    [("moto", True), ("moto.core", True), ("werkzeug.serving", True), ("yaml", False)],
)
def test_needs_local_extra_maps_only_the_extras_modules(missing: str, mapped: bool) -> None:
    def fail() -> None:
        with support.needs_local_extra():
            raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)

    if mapped:
        with pytest.raises(ConfigError, match="'local' extra"):
            fail()
    else:
        with pytest.raises(ModuleNotFoundError):
            fail()


_WITHOUT_MOTO = (
    "import sys; sys.modules['moto'] = None; "
    "from invoke.main import program; program.run(['invoke', *sys.argv[1:]])"
)


@pytest.mark.parametrize(
    "argv",
    [["local-aws"], ["build-and-validate", "--local"], ["build", "--local"]],
    ids=lambda a: a[0],
)
def test_cli_without_the_local_extra_says_which_extra(argv: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    if argv[0] != "local-aws":
        argv = [*argv, "--out", str(tmp_path / "out")]
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_MOTO, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == f"error: {support.LOCAL_EXTRA_HINT}", proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_build_and_validate_refuses_al2_on_real_aws_before_any_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.orchestration import chain

    made: list[AwsClients] = []

    def guarded_clients(**kwargs: Any) -> AwsClients:
        clients = make_clients(**kwargs)  # no endpoint override: real AWS
        _no_network(clients)
        made.append(clients)
        return clients

    monkeypatch.setattr(chain, "make_clients", guarded_clients)
    cfg = chain.ChainSettings(
        platforms=("al2023", "al2"),
        archs=("x86_64",),
        k8s_version=None,
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=ROOT / "policies/exceptions",
    )
    with pytest.raises(ConfigError) as err:
        chain.run_chain(cfg, Runtime(now=shifted_now, echo=lambda _: None))
    assert all(day in str(err.value) for day in DATES)
    assert made and made[0].calls.total == 0
