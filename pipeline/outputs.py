"""Writing a verdict to disk (verdict.json, junit.xml, summary.md) and to GitHub Actions.

Reports are always written, whatever the verdict: nothing is lost when the gate fails.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import github, report
from pipeline.errors import ConfigError
from pipeline.gate import Verdict


@dataclass(frozen=True, slots=True)
class ReportPaths:
    verdict_json: Path
    junit_xml: Path
    summary_md: Path


def ensure_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create the output folder; an unusable one is a ConfigError naming the flag."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{flag} {out}: cannot create output folder: {exc.strerror}") from exc
    return out


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (a reader never sees half a file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
    os.replace(tmp, path)
    return path


def write_reports(verdict: Verdict, out_dir: str | Path) -> ReportPaths:
    """Write the three report files into ``out_dir`` and return their paths."""
    out = ensure_dir(out_dir)
    paths = ReportPaths(out / "verdict.json", out / "junit.xml", out / "summary.md")
    write_json(paths.verdict_json, report.to_json(verdict))
    with open(paths.junit_xml, "w", encoding="utf-8") as handle:
        report.write_junit(verdict, handle)
    paths.summary_md.write_text(report.to_markdown(verdict) + "\n", encoding="utf-8")
    return paths


def publish(verdict: Verdict, paths: ReportPaths, echo: Callable[[str], None]) -> None:
    """Console table, then under GitHub Actions: annotations and the step summary."""
    for line in report.console_lines(verdict):
        echo(line)
    echo(f"reports: {paths.verdict_json} {paths.junit_xml} {paths.summary_md}")
    if github.active():
        for line in report.github_annotations(verdict):
            echo(line)
        github.append_step_summary(paths.summary_md.read_text(encoding="utf-8"))
