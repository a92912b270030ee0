"""Run packer/scripts/cis-harden.sh against a throwaway root file system, with stubbed commands.

The scripts take every path under CIS_ROOT; the system commands they call (rpm, dnf, systemctl,
sfdisk, mount, grubby, aide, ...) are one recording stub (stubs/stub.sh) put first on PATH.
Full runs are shared by the session (they are the slow part): each platform/level is hardened
once, and the idempotence tests run the level 2 roots a second time. As root the scripts run
directly; otherwise under fakeroot(1) (slower: it saves its database after each run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.hardening import fakeroot

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "packer" / "scripts"
HARDEN = SCRIPTS / "cis-harden.sh"
STUB = Path(__file__).parent / "stubs" / "stub.sh"
CATALOGUES = {
    "al2023": REPO / "pipeline/data/cis/amazon_linux_2023-v1.0.0.json",
    "al2": REPO / "pipeline/data/cis/amazon_linux_2-v2.0.0.json",
}
STUBBED = [
    "rpm",
    "dnf",
    "yum",
    "systemctl",
    "sysctl",
    "modprobe",
    "mount",
    "umount",
    "sfdisk",
    "blkid",
    "mkfs.xfs",
    "udevadm",
    "partprobe",
    "restorecon",
    "setfiles",
    "selinuxenabled",
    "grubby",
    "grub2-mkconfig",
    "augenrules",
    "aide",
    "chronyc",
    "sshd",
    "visudo",
    "chpasswd",
    "pwconv",
    "authselect",
    "update-crypto-policies",
    "nmcli",
    "prelink",
    "growpart",
    "xfs_growfs",
]


def _runner_kind() -> str | None:
    """How to run the scripts so that the fake root's files count as root's.

    root: directly. Otherwise under fakeroot(1), whose database persists between the runs on
    one root. ``CIS_TEST_RUNNER=fakeroot`` forces fakeroot (to test that mode as root).
    """
    if os.environ.get("CIS_TEST_RUNNER") == "fakeroot" and shutil.which("fakeroot"):
        return "fakeroot"
    if os.geteuid() == 0:
        return "root"
    if shutil.which("fakeroot"):
        return "fakeroot"
    return None


RUNNER_KIND = _runner_kind()  # None: the tests cannot run the scripts
needs_runner = pytest.mark.skipif(
    RUNNER_KIND is None, reason="run the hardening tests as root, or install fakeroot (apt)"
)
needs_root = pytest.mark.skipif(
    RUNNER_KIND != "root", reason="creating unowned files needs real root"
)


def _prefix(state: Path, *, save: bool = True) -> list[str]:
    if RUNNER_KIND == "fakeroot":
        db = state / "fakeroot.db"
        db.touch()
        return ["fakeroot", "-i", str(db), *(["-s", str(db)] if save else []), "--"]
    return []


@dataclass
class Run:
    """One run of cis-harden.sh: its result lines, the recorded command calls, the root."""

    root: Path
    state: Path
    platform: str
    level: int
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]
    lines: dict[str, str] = field(default_factory=dict)  # id -> outcome
    faked_modes: dict[str, int] = field(default_factory=dict)  # fakeroot's view, on demand

    def file(self, path: str) -> str:
        return (self.root / path.lstrip("/")).read_text()

    def mode(self, path: str) -> int:
        """Permission bits as the scripts see them (under fakeroot: the faked ones)."""
        full = self.root / path.lstrip("/")
        if RUNNER_KIND != "fakeroot":
            return full.stat().st_mode & 0o7777
        if not self.faked_modes:  # one fakeroot call for the whole tree
            out = subprocess.run(
                [*_prefix(self.state, save=False), "find", str(self.root), "-printf", "%m %p\\n"],
                capture_output=True,
                text=True,
                check=True,
            )
            for line in out.stdout.splitlines():
                mode, name = line.split(" ", 1)
                self.faked_modes[name] = int(mode, 8)
        return self.faked_modes[str(full)]


@pytest.fixture(scope="session")
def stub_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bindir = tmp_path_factory.mktemp("stub-bin")
    for name in STUBBED:
        (bindir / name).symlink_to(STUB)
    return bindir


def _env(root: Path, state: Path, stub_bin: Path, live: bool) -> dict[str, str]:
    log = state / "calls.log"
    log.write_text("")
    return {
        "PATH": f"{stub_bin}:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(state),
        "LANG": "C",
        "TMPDIR": str(state),
        "CIS_ROOT": str(root),
        "CIS_LIVE": "1" if live else "0",
        "CIS_ARCH": "x86_64",
        "STUB_LOG": str(log),
        "STUB_STATE": str(state),
    }


def _result(
    proc: subprocess.CompletedProcess[str], root: Path, state: Path, platform: str, level: int
) -> Run:
    run = Run(
        root,
        state,
        platform,
        level,
        proc.returncode,
        proc.stdout,
        proc.stderr,
        (state / "calls.log").read_text().splitlines(),
    )
    for line in proc.stdout.splitlines():
        match = LINE.match(line)
        if match:
            run.lines[match["id"]] = match["outcome"]
    return run


# <id> <title>: applied | already compliant | skipped (<reason>) | failed (<reason>)
LINE = re.compile(
    r"^(?P<id>\d+(?:\.\d+)*) (?P<title>.+): "
    r"(?P<outcome>applied|already compliant|skipped \(.+\)|failed \(.+\))$"
)


def harden(
    root: Path,
    platform: str,
    level: int,
    stub_bin: Path,
    state: Path,
    *,
    live: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """Run cis-harden.sh on ``root``; ``state`` keeps the stubs' state between runs."""
    assert RUNNER_KIND is not None
    env = _env(root, state, stub_bin, live) | (extra_env or {})
    proc = subprocess.run(
        [*_prefix(state), "bash", str(HARDEN), "--platform", platform, "--level", str(level)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return _result(proc, root, state, platform, level)


def run_functions(
    root: Path,
    platform: str,
    level: int,
    stub_bin: Path,
    state: Path,
    functions: list[str],
    *,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """Run only the named recommendation functions (lib.sh and every section sourced)."""
    assert RUNNER_KIND is not None
    env = _env(root, state, stub_bin, True) | (extra_env or {})
    script = (
        f'. "{SCRIPTS}/cis/lib.sh"; cis_init "$1" "$2" || exit 2; shift 2\n'
        f'for s in 1 2 3 4 5 6; do . "{SCRIPTS}/cis/$CIS_PLATFORM/section$s.sh"; done\n'
        'rc=0; for fn in "$@"; do cis_run_one "$fn" || rc=1; done; exit $rc\n'
    )
    proc = subprocess.run(
        [
            *_prefix(state, save=False),
            "bash",
            "-c",
            script,
            "run",
            platform,
            str(level),
            *functions,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return _result(proc, root, state, platform, level)


def new_root(base: Path, platform: str) -> tuple[Path, Path]:
    """A fresh fake root and stub state directory for ``platform`` under ``base``."""
    root = base / "root"
    state = base / "state"
    root.mkdir(parents=True)
    state.mkdir()
    fakeroot.build(root, platform)
    (state / "packages").write_text("\n".join(fakeroot.BASE_PACKAGES[platform]) + "\n")
    return root, state


PLATFORM_LEVELS = [("al2023", 2), ("al2", 2), ("al2023", 1), ("al2", 1)]


@pytest.fixture(scope="session")
def hardened(
    tmp_path_factory: pytest.TempPathFactory, stub_bin: Path
) -> Iterator[Callable[[str, int], Run]]:
    """hardened(platform, level): the first run on a fresh root, one per platform and level.

    Each run is made on the first use of its platform and level and kept for the session (a
    pytest-xdist worker that gets only some of the tests makes only the runs they use).
    """
    if RUNNER_KIND is None:
        pytest.skip("run the hardening tests as root, or install fakeroot (apt)")
    runs: dict[tuple[str, int], Run] = {}

    def first_run(platform: str, level: int) -> Run:
        key = (platform, level)
        assert key in PLATFORM_LEVELS, key
        if key not in runs:
            base = tmp_path_factory.mktemp(f"{platform}-l{level}")
            root, state = new_root(base, platform)
            runs[key] = harden(root, platform, level, stub_bin, state)
        return runs[key]

    yield first_run


def catalogue(platform: str) -> dict[str, dict[str, object]]:
    data = json.loads(CATALOGUES[platform].read_text())
    return {r["id"]: r for r in data["recommendations"]}


FUNCTION_DEF = re.compile(r"^(cis_\d+(?:_\d+)*)\s*\(\)", re.MULTILINE)


def section_scripts(platform: str) -> list[Path]:
    """The scripts that define the recommendation functions of ``platform``.

    cis/<platform>/section*.sh, and cis/shared/section*.sh: the recommendations both benchmarks
    share (same ID, title, level and remediation), sourced by the platform's section scripts.
    """
    return [
        *sorted((SCRIPTS / "cis" / "shared").glob("section*.sh")),
        *sorted((SCRIPTS / "cis" / platform).glob("section*.sh")),
    ]


def defined_functions(platform: str) -> list[str]:
    """The recommendation functions defined for ``platform`` (see section_scripts)."""
    found: list[str] = []
    for path in section_scripts(platform):
        found.extend(FUNCTION_DEF.findall(path.read_text()))
    return found


def function_id(name: str) -> str:
    return name.removeprefix("cis_").replace("_", ".")
