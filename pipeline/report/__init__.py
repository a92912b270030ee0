"""Pure renderers of the one verdict model: verdict.json, junit.xml, summary.md, the console
lines and GitHub annotations, each showing three sections: CIS, node readiness and package
vulnerabilities (a section this run did not judge says so).

Nothing here decides anything; it only presents ``pipeline.gate.Verdict``. ``common`` holds the
limits and the escaping every renderer uses on untrusted text (scan titles, the node probe's
output, Inspector's findings, policy text); ``lines`` each section's counts and blocking lines.
"""

from __future__ import annotations

from pipeline.report.common import (
    MAX_CELL_CHARS,
    MAX_CONSOLE_FAILURES,
    MAX_MARKDOWN_ROWS,
    MAX_SECTION_LINE,
    NOT_JUDGED,
    SCHEMA_VERSION,
    context_title,
    display_path,
    target_label,
)
from pipeline.report.console import console_lines, github_annotations
from pipeline.report.document import to_json
from pipeline.report.junit import write_junit
from pipeline.report.lines import counts
from pipeline.report.markdown import to_markdown

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_CONSOLE_FAILURES",
    "MAX_MARKDOWN_ROWS",
    "MAX_SECTION_LINE",
    "NOT_JUDGED",
    "SCHEMA_VERSION",
    "console_lines",
    "context_title",
    "counts",
    "display_path",
    "github_annotations",
    "target_label",
    "to_json",
    "to_markdown",
    "write_junit",
]
