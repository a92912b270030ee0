"""The one-way house (docs/architecture.md), checked: import-linter's contracts hold on the
shipped tree and break when a module imports across them; no project import hides in a function;
no module grows past what one can read at once."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_MODULE_LINES = 500
MAX_TASKS_LINES = 350
# Modules that are only optional at run time (the `local` pip extra): imported where used, each
# such import with a comment saying why.
OPTIONAL = ("pipeline.localaws",)


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts over the package copy under ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package's Python files and the contracts, to break on purpose."""
    shutil.copytree(PACKAGE, tmp_path / "pipeline", ignore=shutil.ignore_patterns("data", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_shipped_tree_keeps_every_contract() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


BREAKS = [
    pytest.param(
        "build/__init__.py",
        "\n\ndef _sneak() -> None:\n    from pipeline.release import promote  # noqa: F401\n",
        "pipeline.build is not allowed to import pipeline.release",
        id="a-stage-imports-another-inside-a-function",
    ),
    pytest.param(
        "release/promote.py",
        "\nfrom pipeline import validate  # noqa: E402,F401\n",
        "pipeline.release is not allowed to import pipeline.validate",
        id="a-stage-imports-another",
    ),
    pytest.param(
        "gate.py",
        "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        "    from pipeline.evidence import store  # noqa: F401\n",
        "pipeline.gate is not allowed to import pipeline.evidence",
        id="the-core-imports-up-even-for-types",
    ),
    pytest.param(
        "aws/s3.py",
        "\nfrom pipeline import setup  # noqa: E402,F401\n",
        "pipeline.aws is not allowed to import pipeline.setup",
        id="the-boundary-imports-up",
    ),
    pytest.param(
        "validate/__init__.py",
        "\nfrom pipeline import localaws  # noqa: E402,F401\n",
        "pipeline.validate is not allowed to import pipeline.localaws",
        id="a-stage-imports-the-local-aws",
    ),
    pytest.param(
        "localaws/wire.py",
        "\nfrom pipeline.aws import s3  # noqa: E402,F401\n",
        "pipeline.localaws is not allowed to import pipeline.aws",
        id="the-local-aws-imports-the-boundary",
    ),
    pytest.param(
        "policy.py",
        "\nfrom pipeline import gate  # noqa: E402,F401\n",
        "No import cycles between sibling modules, at any depth BROKEN",
        id="a-cycle-in-the-core",
    ),
    pytest.param(
        "newstage.py",
        '"""A module nobody placed."""\n',
        "pipeline.newstage",
        id="a-new-module-without-a-layer",
    ),
]


@pytest.mark.parametrize(("module", "added", "expected"), BREAKS)
def test_a_contract_breaks_when_an_import_crosses_it(
    tree: Path, module: str, added: str, expected: str
) -> None:
    path = tree / "pipeline" / module
    path.write_text((path.read_text() if path.exists() else "") + added)
    done = _lint_imports(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout


def _project_imports_in_functions(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, the line's text) of each project import inside a function body."""
    lines = path.read_text().splitlines()
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            names: list[str] = []
            if isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            elif isinstance(inner, ast.ImportFrom) and inner.module:
                names = [inner.module] if inner.level == 0 else ["pipeline (relative)"]
            for name in names:
                if name == "pipeline" or name.startswith(("pipeline.", "pipeline (")):
                    found.append((inner.lineno, name, lines[inner.lineno - 1]))
    return found


def _python_files() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), ROOT / "tasks.py"])


def test_no_project_import_hides_in_a_function() -> None:
    """An import inside a function to dodge a cycle is a design bug; only the optional local
    AWS is imported where it is used, with a comment saying why."""
    hidden = []
    for path in _python_files():
        for line, module, text in _project_imports_in_functions(path):
            optional = module.startswith(OPTIONAL) or module == "pipeline" and "localaws" in text
            if not (optional and "#" in text):
                hidden.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()}")
    assert hidden == []


def test_the_import_scan_sees_a_function_level_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f() -> None:\n    from pipeline import gate\n")
    found = _project_imports_in_functions(sample)
    assert found == [(2, "pipeline", "    from pipeline import gate")]


def test_every_module_can_be_read_at_once() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
    assert len((ROOT / "tasks.py").read_text().splitlines()) < MAX_TASKS_LINES
