"""scripts/bootstrap's apt step with stubbed system commands: it waits for a held dpkg lock
(bounded) and shows apt's own output when apt fails; shellcheck keeps it clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "scripts" / "bootstrap"

# Each stub records "<name> <args>" in $CALLS; apt-get fails when $APT_FAIL names its action.
STUB = """#!/usr/bin/env bash
echo "${0##*/} $*" >>"$CALLS"
case ${0##*/} in
dpkg-query) [[ " $INSTALLED " == *" ${*: -1} "* ]] && echo "install ok installed"; exit 0 ;;
apt-get)
  for a in "$@"; do
    if [[ $a == "${APT_FAIL:-none}" ]]; then
      echo "E: Could not get lock /var/lib/dpkg/lock-frontend." \\
        "It is held by process 812 (unattended-upgr)"
      echo "E: Unable to acquire the dpkg frontend lock, is another process using it?" >&2
      exit 100
    fi
  done
  echo "Reading package lists..."; exit 0 ;;
apt-cache) exit 0 ;;
sudo) exec "$@" ;;
python3)  # python3 -m venv .venv
  mkdir -p .venv/bin && ln -sf "$(command -v pip-stub)" .venv/bin/python; exit 0 ;;
*) exit 0 ;;
esac
"""


def _run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(BOOTSTRAP, repo / "scripts" / "bootstrap")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    stub = stubs / "_stub"
    stub.write_text(STUB)
    stub.chmod(0o755)
    for name in ("dpkg-query", "apt-get", "apt-cache", "sudo", "python3", "pip-stub", "packer"):
        (stubs / name).symlink_to(stub)
    calls = tmp_path / "calls"
    calls.touch()
    proc = subprocess.run(
        ["bash", str(repo / "scripts" / "bootstrap")],
        capture_output=True,
        text=True,
        env={"PATH": f"{stubs}:/usr/bin:/bin", "CALLS": str(calls), "INSTALLED": "", **env},
        timeout=60,
        check=False,
    )
    return proc, calls.read_text().splitlines()


def test_waits_for_the_dpkg_lock_and_installs(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    apt = [c for c in calls if c.startswith("apt-get ")]
    assert [c.split()[3] for c in apt] == ["update", "install"]
    assert all(c.startswith("apt-get -o DPkg::Lock::Timeout=300 ") for c in apt)
    assert "python3 python3-venv python3-pip git" in apt[1]
    assert "waits up to 5 min for a dpkg lock" in proc.stdout
    assert "Reading package lists" not in proc.stdout + proc.stderr, "quiet when apt succeeds"


@pytest.mark.parametrize("action", ["update", "install"])
def test_an_apt_failure_shows_apts_own_output(tmp_path: Path, action: str) -> None:
    proc, calls = _run(tmp_path, APT_FAIL=action)
    assert proc.returncode == 1
    assert f"'apt-get {action} " in proc.stderr
    assert "It is held by process 812 (unattended-upgr)" in proc.stderr
    assert "Unable to acquire the dpkg frontend lock" in proc.stderr
    assert "bootstrap: could not install: python3 python3-venv python3-pip git" in proc.stderr
    assert not [c for c in calls if c.startswith("python3")], "stops before the virtualenv"


def test_the_lock_wait_is_configurable_and_nothing_installed_means_no_apt(
    tmp_path: Path,
) -> None:
    proc, calls = _run(tmp_path, BOOTSTRAP_APT_LOCK_TIMEOUT="60")
    assert all("DPkg::Lock::Timeout=60" in c for c in calls if c.startswith("apt-get"))
    assert "waits up to 1 min" in proc.stdout
    done, calls = _run(tmp_path / "again", INSTALLED="python3 python3-venv python3-pip git")
    assert done.returncode == 0, done.stderr
    assert not [c for c in calls if c.startswith("apt-get")]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_clean() -> None:
    proc = subprocess.run(
        ["shellcheck", str(BOOTSTRAP)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
