"""Every hardening script (and the test stub) is shellcheck clean, following sourced files."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.hardening.conftest import SCRIPTS, STUB

SHELLCHECK = shutil.which("shellcheck")
SCRIPT_FILES = [
    SCRIPTS / "cis-harden.sh",
    SCRIPTS / "cis" / "lib.sh",
    *sorted((SCRIPTS / "cis").glob("*/section*.sh")),
    STUB,
]
Results = dict[Path, subprocess.CompletedProcess[str]]


def _shellcheck(script: Path) -> subprocess.CompletedProcess[str]:
    assert SHELLCHECK is not None
    return subprocess.run(
        [SHELLCHECK, "-x", "--shell=bash", str(script)],
        capture_output=True,
        text=True,
        cwd=script.parent,
    )


@pytest.fixture(scope="module")
def shellcheck_results() -> Iterator[Results]:
    """shellcheck every script at once (one process each, in parallel: lib.sh alone takes ~2 s)."""
    if SHELLCHECK is None:
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield dict(zip(SCRIPT_FILES, pool.map(_shellcheck, SCRIPT_FILES), strict=True))


@pytest.mark.parametrize(
    "script", SCRIPT_FILES, ids=lambda p: str(p.relative_to(SCRIPTS.parents[1]))
)
def test_shellcheck_clean(shellcheck_results: Results, script: Path) -> None:
    proc = shellcheck_results[script]
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_section_script_is_checked() -> None:
    for platform in ("al2023", "al2"):
        sections = sorted((SCRIPTS / "cis" / platform).glob("section*.sh"))
        assert [p.name for p in sections] == [f"section{n}.sh" for n in range(1, 7)]
        assert set(sections) <= set(SCRIPT_FILES)
    shared = sorted((SCRIPTS / "cis" / "shared").glob("section*.sh"))
    assert shared, "cis/shared/section*.sh"
    assert set(shared) <= set(SCRIPT_FILES)
