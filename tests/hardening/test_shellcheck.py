"""Every hardening script, the node-readiness probe and the test stub are shellcheck clean,
following sourced files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.hardening.conftest import SCRIPTS, STUB

SHELLCHECK = shutil.which("shellcheck")
SCRIPT_FILES = [
    SCRIPTS / "cis-harden.sh",
    SCRIPTS / "cis" / "lib.sh",
    *sorted((SCRIPTS / "cis").glob("*/section*.sh")),
    SCRIPTS / "node" / "probe.sh",
    STUB,
]


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (apt)")
@pytest.mark.parametrize(
    "script", SCRIPT_FILES, ids=lambda p: str(p.relative_to(SCRIPTS.parents[1]))
)
def test_shellcheck_clean(script: Path) -> None:
    """One shellcheck per script (cis-harden.sh and lib.sh take ~2 s each: -x follows every
    file they source)."""
    assert SHELLCHECK is not None
    proc = subprocess.run(
        [SHELLCHECK, "-x", "--shell=bash", str(script)],
        capture_output=True,
        text=True,
        cwd=script.parent,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_section_script_is_checked() -> None:
    for platform in ("al2023", "al2"):
        sections = sorted((SCRIPTS / "cis" / platform).glob("section*.sh"))
        assert [p.name for p in sections] == [f"section{n}.sh" for n in range(1, 7)]
        assert set(sections) <= set(SCRIPT_FILES)
    shared = sorted((SCRIPTS / "cis" / "shared").glob("section*.sh"))
    assert shared, "cis/shared/section*.sh"
    assert set(shared) <= set(SCRIPT_FILES)
