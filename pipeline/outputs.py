"""Writing a verdict to disk (verdict.json, junit.xml, summary.md) and to GitHub Actions.

Reports are always written, whatever the verdict: nothing is lost when the gate fails. Every
file is written atomically (a temporary file in the same folder, then ``os.replace``), never
through a symbolic link, with mode 0o644 whatever the umask; folders created here get 0o755.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pipeline import github, report
from pipeline.errors import ConfigError, one_line
from pipeline.gate import Verdict

FILE_MODE = 0o644
DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class ReportPaths:
    verdict_json: Path
    junit_xml: Path
    summary_md: Path


def ensure_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create the output folder (and missing parents, each 0o755); an unusable one is a
    ConfigError naming the flag. Folders that already exist keep their mode."""
    out = Path(path)
    missing = [p for p in (out, *out.parents) if not p.is_dir()]
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=DIR_MODE)
            except FileExistsError:
                if not folder.is_dir():
                    raise
                continue
            os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise ConfigError(f"{flag} {out}: cannot create output folder: {exc.strerror}") from exc
    return out


def write_atomic(path: Path, write: Callable[[IO[str]], object]) -> Path:
    """Write a text file atomically: a reader sees the old file or the new one, never half.

    A destination that is a symbolic link is refused (ConfigError naming it): the report is
    never written through a link planted in the output folder. ``os.replace`` would replace
    a link created after the check, not follow it. The temporary file is removed on error.
    """

    def text(fd: int) -> None:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
            os.fchmod(handle.fileno(), FILE_MODE)

    return _replace(path, text)


def write_bytes(path: Path, data: bytes) -> Path:
    """``write_atomic`` for bytes as they are (a document downloaded as evidence)."""

    def raw(fd: int) -> None:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), FILE_MODE)

    return _replace(path, raw)


def _replace(path: Path, fill: Callable[[int], None]) -> Path:
    """A temporary file beside ``path`` filled by ``fill`` (given its descriptor), then moved
    over ``path``; never through a symbolic link (see ``write_atomic``)."""
    if path.is_symlink():
        raise ConfigError(f"{path}: is a symbolic link; refusing to write a report through it")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    try:
        fill(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """``write_atomic`` for a string."""
    return write_atomic(path, lambda handle: handle.write(text))


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (``write_atomic``)."""

    def dump(handle: IO[str]) -> None:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")

    return write_atomic(path, dump)


def write_reports(verdict: Verdict, out_dir: str | Path) -> ReportPaths:
    """Write the three report files into ``out_dir`` and return their paths."""
    out = ensure_dir(out_dir)
    paths = ReportPaths(out / "verdict.json", out / "junit.xml", out / "summary.md")
    write_json(paths.verdict_json, report.to_json(verdict))
    write_atomic(paths.junit_xml, lambda handle: report.write_junit(verdict, handle))
    write_text(paths.summary_md, report.to_markdown(verdict) + "\n")
    return paths


def publish(verdict: Verdict, paths: ReportPaths, echo: Callable[[str], None]) -> None:
    """Console table, then under GitHub Actions: annotations and the step summary.

    Console lines are neutralised by ``report``; annotations go through ``github.emit`` so no
    untrusted text around them is ever read as a workflow command.
    """
    github.start_untrusted_output(echo)
    for line in report.console_lines(verdict):
        echo(line)
    echo(one_line(f"reports: {paths.verdict_json} {paths.junit_xml} {paths.summary_md}"))
    if github.active():
        for command in report.github_annotations(verdict):
            github.emit(command, echo)
        github.append_step_summary(paths.summary_md.read_text(encoding="utf-8"))
