"""Packer's output: one console line per stage, errors shown, everything in the image's log file;
and the Packer version the production template needs. Cases: cases/packer_output/<name>.txt
(``-machine-readable`` lines) with <name>.yaml (the stages and errors the console shows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from pipeline import build
from pipeline.aws import AwsClients
from pipeline.build import process
from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.packer import (
    Arch,
    BuildSpec,
    check_packer_version,
    is_error_line,
    stage_of,
    stages,
    ui_lines,
)

CASES = sorted((Path(__file__).parent / "cases" / "packer_output").glob("*.txt"))


def _expect(path: Path) -> dict[str, list[str]]:
    return dict(yaml.safe_load(path.with_suffix(".yaml").read_text()))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_stages_and_errors(path: Path) -> None:
    raw = path.read_text().splitlines()
    want = _expect(path)
    texts = [text for line in raw for text in ui_lines(line)]
    assert stages(texts) == want["stages"]
    errors = [text for line in raw if is_error_line(line) for text in ui_lines(line)]
    assert errors == want["errors"]


def _spec(tmp_path: Path) -> BuildSpec:
    return BuildSpec(
        platform=Platform.AMAZON_LINUX_2023,
        arch=Arch.X86_64,
        k8s_version="1.33",
        level=2,
        run_id="20261127T120000Z-abc123",
        region="us-east-1",
        manifest_path=tmp_path / "out" / "al2023-x86_64.manifest.json",
        source_ami="ami-048ad8e3b9d167dc3",
    )


def _replay(raw: Sequence[str], code: int) -> Callable[..., int]:
    def runner(argv: Sequence[str], env: Mapping[str, str], on_line: Callable[[str], None]) -> int:
        assert argv[1] == "build"
        for line in raw:
            on_line(line)
        return code

    return runner


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_console_shows_stages_and_the_log_keeps_everything(path: Path, tmp_path: Path) -> None:
    raw = path.read_text().splitlines()
    want = _expect(path)
    spec = _spec(tmp_path)
    console: list[str] = []
    outcome = process.run_packer(spec, _replay(raw, 0), {}, console.append, "packer")

    assert spec.log_path == tmp_path / "out" / "al2023-x86_64.packer.log"
    assert console[0] == f"[al2023-x86_64] packer log: {spec.log_path}"
    shown = [line.removeprefix("[al2023-x86_64] ") for line in console[1:]]
    assert [s for s in shown if s in want["stages"]] == want["stages"]
    assert [s for s in shown if s not in want["stages"]] == want["errors"]
    log = spec.log_path.read_text().splitlines()
    assert log[0].startswith("# packer build -machine-readable ")
    # every UI message as text, every other record (artifacts, ...) as it came
    assert log[1:] == [out for line in raw for out in (ui_lines(line) or [line]) if out.strip()]
    assert outcome.returncode == 0


SAY, MESSAGE = "==> eks-cis.amazon-ebs.eks-cis: ", "    eks-cis.amazon-ebs.eks-cis: "


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        (SAY + "Launching a source AWS instance...", "launching source instance"),
        (MESSAGE + "cis-harden: CIS al2 level 1 on / (aarch64)", "provisioning (hardening)"),
        (SAY + "Creating AMI x-1 from instance i-0abc", "creating AMI"),
        (SAY + "Provisioning with shell script: /tmp/packer-shell1", None),
        (
            SAY + "Provisioning with shell script: packer/scripts/security-updates.sh",
            "provisioning (security updates)",
        ),
        (MESSAGE + "echo Creating AMI", None),
        (MESSAGE + "1.1.3.1 Ensure separate partition exists for /var: applied", None),
        ("Build 'eks-cis.amazon-ebs.eks-cis' finished after 11 minutes.", None),
    ],
)
def test_stage_of(text: str, stage: str | None) -> None:
    assert stage_of(text) == stage


@pytest.mark.parametrize(
    ("output", "error"),
    [
        ("Packer v1.10.0", None),
        ("Packer v1.11.2\n\nYour version of Packer is out of date! The latest is 1.12.0.", None),
        ("Packer v2.0.0", None),
        ("Packer v1.6.6", "packer 1.6.6 is too old for the production template, which needs"),
        ("Packer v1.9.4", "packer 1.9.4 is too old"),
        ("", "`packer version` printed 'nothing', not a Packer version"),
        ("bash: packer: command not found", "printed 'bash: packer: command not found'"),
    ],
)
def test_check_packer_version(output: str, error: str | None) -> None:
    if error is None:
        assert check_packer_version(output) >= (1, 10, 0)
        return
    with pytest.raises(ConfigError) as err:
        check_packer_version(output)
    assert error in str(err.value)
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("version", "local"), [("Packer v1.6.6", False), ("Packer v1.6.6", True)])
def test_a_real_build_needs_packer_1_10(
    tmp_path: Path, local_clients: AwsClients, version: str, local: bool
) -> None:
    calls: list[list[str]] = []

    def runner(argv: Sequence[str], env: Mapping[str, str], on_line: Callable[[str], None]) -> int:
        calls.append(list(argv))
        if argv[1] == "version":
            on_line(version)
            return 0
        raise AssertionError(f"packer {argv[1]} must not run")

    spec = replace(
        _spec(tmp_path),
        source_ami=None,  # resolved from SSM: only after the version check
        local=local,
        endpoint=local_clients.endpoint_url if local else None,
    )
    if local:  # the local template keeps Debian's 1.6.6: no version check, straight to the build
        with pytest.raises(AssertionError, match="packer build must not run"):
            build.build_images([spec], local_clients, runner=runner, out=lambda _: None)
        assert [c[1] for c in calls] == ["build"]
        return
    with pytest.raises(ConfigError) as err:
        build.build_images([spec], local_clients, runner=runner, out=lambda _: None)
    assert err.value.exit_code == 2
    assert err.value.lines() == [str(err.value)] and "\n" not in str(err.value)
    assert str(err.value).startswith("packer 1.6.6 is too old for the production template")
    assert [c[1] for c in calls] == ["version"], "no packer init, no build"
    assert local_clients.calls.total == 0, "refused before any AWS call"
