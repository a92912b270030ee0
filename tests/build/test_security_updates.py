"""Security updates and the SELinux mode as Packer variables: declared with documented defaults,
passed through by the pipeline (``--var``), rendered into the provisioner's environment, and
acted on by packer/scripts/security-updates.sh (run here with a stubbed dnf/yum/rpm)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _packer_hcl import PACKER_DIR, PRODUCTION_FILES, Evaluator, merged, provisioners, variables

from pipeline.build.variables import check_vars, packer_vars
from pipeline.errors import ConfigError

SCRIPT = PACKER_DIR / "scripts" / "security-updates.sh"


@pytest.fixture(scope="module")
def prod() -> dict[str, list[Any]]:
    return merged(PRODUCTION_FILES)


def _updates_step(doc: dict[str, list[Any]]) -> dict[str, Any]:
    (step,) = [
        b for k, b in provisioners(doc) if b.get("script", "").endswith("security-updates.sh")
    ]
    return step


def _harden_step(doc: dict[str, list[Any]]) -> str:
    (step,) = [b for k, b in provisioners(doc) if "cis-harden.sh" in " ".join(b.get("inline", []))]
    (line,) = step["inline"]
    return str(line)


def test_security_updates_default_on_from_the_latest_release(prod: dict[str, list[Any]]) -> None:
    declared = variables(prod)
    assert declared["security_updates"]["type"] == "bool"
    assert declared["security_updates"]["default"] is True
    releasever = declared["security_updates_releasever"]
    assert releasever["default"] == "latest"
    (check,) = releasever["validation"]
    assert "latest" in check["condition"] and "2023" in check["condition"]
    assert "README.md" in declared["security_updates"]["description"]


def test_security_updates_run_before_the_hardening(prod: dict[str, list[Any]]) -> None:
    steps = [b for _, b in provisioners(prod)]
    updates = steps.index(_updates_step(prod))
    harden = next(
        i for i, b in enumerate(steps) if "cis-harden.sh" in " ".join(b.get("inline", []))
    )
    assert updates < harden
    assert "sudo" in _updates_step(prod)["execute_command"]


def test_selinux_mode_defaults_to_permissive(prod: dict[str, list[Any]]) -> None:
    var = variables(prod)["selinux_mode"]
    assert var["default"] == "permissive"
    (check,) = var["validation"]
    assert '["permissive", "enforcing"]' in check["condition"]
    assert "CIS_SELINUX_MODE=${var.selinux_mode}" in _harden_step(prod)


def _environment(doc: dict[str, list[Any]], flags: list[str]) -> dict[str, str]:
    """The provisioner's environment for ``invoke build --var ...`` flags, as Packer renders it."""
    values: dict[str, Any] = packer_vars(flags, None)
    check_vars(values, local=False)
    values |= {"platform": "al2023"}
    rendered = Evaluator(doc, values).render(_updates_step(doc)["environment_vars"])
    env = {}
    for item in rendered:
        name, _, value = str(item).partition("=")
        env[name] = {"True": "true", "False": "false"}.get(value, value)  # HCL bools
    return env


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        ([], {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_RELEASEVER": "latest"}),
        (["security_updates=false"], {"SECURITY_UPDATES": "false"}),
        (
            ["security_updates_releasever=2023.9.20251117"],
            {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_RELEASEVER": "2023.9.20251117"},
        ),
    ],
)
def test_the_variables_reach_the_provisioner(
    prod: dict[str, list[Any]], flags: list[str], want: dict[str, str]
) -> None:
    env = _environment(prod, flags)
    assert env["SECURITY_UPDATES_PLATFORM"] == "al2023"
    assert want.items() <= env.items()


def test_selinux_mode_is_passed_through_not_refused() -> None:
    check_vars(packer_vars(["selinux_mode=enforcing"], None), local=False)
    with pytest.raises(ConfigError, match="declares no such Packer variable"):
        check_vars(packer_vars(["selinux=enforcing"], None), local=False)


def _run(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    log.write_text("")
    for name in ("dnf", "yum", "rpm"):
        stub = bindir / name
        stub.write_text(
            f'#!/bin/bash\nprintf "%s\\n" "{name} $*" >>{log}\n'
            "[[ $0 == */rpm ]] && echo system-release-2023.6.20241010-0.amzn2023.noarch\n"
            'exit "${STUB_RC:-0}"\n'
        )
        os.chmod(stub, 0o755)
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        env={"PATH": f"{bindir}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return done, log.read_text().splitlines()


@pytest.mark.parametrize(
    ("env", "rc", "calls"),
    [
        (
            {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_RELEASEVER": "latest",
             "SECURITY_UPDATES_PLATFORM": "al2023"},
            0,
            ["rpm -q system-release", "dnf -y --releasever=latest upgrade --security"],
        ),
        (
            {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_RELEASEVER": "2023.9.20251117",
             "SECURITY_UPDATES_PLATFORM": "al2023"},
            0,
            ["rpm -q system-release", "dnf -y --releasever=2023.9.20251117 upgrade --security"],
        ),
        (
            {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_PLATFORM": "al2"},
            0,
            ["yum -y update --security"],
        ),
        ({"SECURITY_UPDATES": "false", "SECURITY_UPDATES_PLATFORM": "al2023"}, 0, []),
        ({"SECURITY_UPDATES": "yes", "SECURITY_UPDATES_PLATFORM": "al2023"}, 2, []),
        (
            {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_RELEASEVER": "2023.9",
             "SECURITY_UPDATES_PLATFORM": "al2023"},
            2,
            [],
        ),
        (
            {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_RELEASEVER": "2023.9.20251117",
             "SECURITY_UPDATES_PLATFORM": "al2"},
            2,
            [],
        ),
        ({"SECURITY_UPDATES": "true", "SECURITY_UPDATES_PLATFORM": "rhel9"}, 2, []),
    ],
)  # fmt: skip
def test_security_updates_script(
    tmp_path: Path, env: dict[str, str], rc: int, calls: list[str]
) -> None:
    done, got = _run(tmp_path, env)
    assert done.returncode == rc, done.stdout + done.stderr
    assert got == calls


def test_a_failed_update_fails_the_build(tmp_path: Path) -> None:
    done, _ = _run(
        tmp_path,
        {"SECURITY_UPDATES": "true", "SECURITY_UPDATES_PLATFORM": "al2023", "STUB_RC": "1"},
    )
    assert done.returncode == 1


def test_script_is_shellcheck_clean() -> None:
    shellcheck = subprocess.run(["which", "shellcheck"], capture_output=True, check=False)
    if shellcheck.returncode != 0:
        pytest.skip("shellcheck not installed")
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
