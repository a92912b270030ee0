"""The data volume on a fake root with emulated mounts, and the auditd "audit log full" choice.

The stubs emulate mounts (stubs/stub.sh): what a mount hides stays in ``<state>/under/``, so a
test can see whether the build leaves anything underneath the new file systems.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hardening.conftest import Run, needs_runner, new_root, run_functions

pytestmark = needs_runner

Hardened = Callable[[str, int], Run]
DATA_MOUNTS = ["/var", "/var/tmp", "/var/log", "/var/log/audit", "/home"]
# the first function of each platform that sets up the data volume (separate /var)
SETUP = {"al2023": "cis_1_1_3_1", "al2": "cis_1_1_10"}
AUDIT_FULL = {"al2023": "cis_5_2_2_3", "al2": "cis_4_1_2_3"}


def _files(top: Path) -> set[str]:
    """Every entry under ``top`` (relative paths), symbolic links not followed."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            found.add(str((Path(dirpath) / name).relative_to(top)))
    return found


def _hidden(state: Path) -> dict[str, set[str]]:
    """What each emulated mount hides: mount point -> entries underneath it."""
    under = state / "under"
    if not under.is_dir():
        return {}
    return {store.name.replace("%", "/"): _files(store) for store in sorted(under.iterdir())}


def _fstab(run: Run) -> dict[str, list[str]]:
    entries = {}
    for line in run.file("/etc/fstab").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = line.split()
            entries[fields[1]] = fields
    return entries


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_content_is_copied_and_nothing_stays_hidden(
    tmp_path: Path, stub_bin: Path, platform: str
) -> None:
    root, state = new_root(tmp_path, platform)
    for path, text in {
        "var/tmp/build-marker": "t",
        "var/log/audit/audit.log.1": "a",
        "var/log/marker.log": "l",
        "var/lib/marker/state": "s",
        "home/ec2-user/.marker": "h",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    before = {top: _files(root / top) for top in ("var", "home")}

    run = run_functions(root, platform, 2, stub_bin, state, [SETUP[platform]])

    assert run.returncode == 0, run.stderr
    hidden = _hidden(state)
    assert sorted(m.removeprefix(str(root)) for m in hidden) == sorted(DATA_MOUNTS)
    assert {m: e for m, e in hidden.items() if e} == {}, "left hidden under the new mounts"
    for top, entries in before.items():
        missing = entries - _files(root / top)
        assert not missing, f"not copied to the data volume: /{top}/{sorted(missing)[:5]}"
    assert (root / "var/log/audit/audit.log.1").read_text() == "a"
    assert (root / "home/ec2-user/.marker").read_text() == "h"
    assert not (root / "mnt/cis-rootfs").exists() and not (root / "mnt/cis-data").exists()


def test_the_root_file_system_is_emptied_after_the_mounts(hardened: Hardened) -> None:
    run = hardened("al2023", 2)
    mounts = [c for c in run.calls if c.startswith(("mount", "umount"))]
    bind = next(i for i, c in enumerate(mounts) if c.startswith("mount --bind"))
    final = [i for i, c in enumerate(mounts) if c.startswith("mount ") and "/mnt/" not in c]
    assert len(final) == len(DATA_MOUNTS) and max(final) < bind
    assert mounts[bind + 1].startswith("umount") and mounts[bind + 1].endswith("/mnt/cis-rootfs")
    assert {m: e for m, e in _hidden(run.state).items() if e} == {}


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_a_node_without_the_data_volume_still_boots(hardened: Hardened, platform: str) -> None:
    entries = _fstab(hardened(platform, 2))
    for mountpoint in DATA_MOUNTS:
        options = entries[mountpoint][3].split(",")
        assert "nofail" in options, mountpoint
        assert "x-systemd.device-timeout=10s" in options, mountpoint
        assert len(entries[mountpoint]) == 6


@pytest.mark.parametrize("platform", ["al2023", "al2"])
@pytest.mark.parametrize("action", [None, "suspend", "single", "halt"])
def test_audit_full_action(
    tmp_path: Path, stub_bin: Path, platform: str, action: str | None
) -> None:
    root, state = new_root(tmp_path, platform)
    env = {"CIS_AUDIT_FULL_ACTION": action} if action else {}
    run = run_functions(root, platform, 2, stub_bin, state, [AUDIT_FULL[platform]], extra_env=env)
    assert run.returncode == 0, run.stderr
    conf = run.file("/etc/audit/auditd.conf").splitlines()
    want = action or "suspend"  # the default never halts the node
    assert f"admin_space_left_action = {want}" in conf
    assert f"disk_full_action = {want}" in conf
    assert "space_left_action = email" in conf


def test_an_unknown_audit_full_action_fails(tmp_path: Path, stub_bin: Path) -> None:
    root, state = new_root(tmp_path, "al2023")
    before = (root / "etc/audit/auditd.conf").read_text()
    run = run_functions(
        root, "al2023", 2, stub_bin, state, ["cis_5_2_2_3"],
        extra_env={"CIS_AUDIT_FULL_ACTION": "reboot"},
    )  # fmt: skip
    assert run.returncode == 1
    assert run.lines["5.2.2.3"].startswith("failed (CIS_AUDIT_FULL_ACTION=reboot")
    assert (root / "etc/audit/auditd.conf").read_text() == before
