"""What every renderer of the verdict shares: limits, how targets and policy files are named,
and how untrusted text is made inert (Markdown, XML, one console line)."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from xml.sax.saxutils import escape, quoteattr

from pipeline.errors import one_line
from pipeline.gate import ExceptionNote, Finding, Outcome, Verdict

SCHEMA_VERSION = 1
MAX_MARKDOWN_ROWS = 200
MAX_CELL_CHARS = 500  # untrusted text in one Markdown cell or list item
MAX_CONSOLE_FAILURES = 25  # FAIL lines on the console; the reports list every one
MAX_SECTION_LINE = 1000  # a node or vulnerability line (console, verdict.json): Inspector's text
NOT_JUDGED = "not judged"
MARK = {Outcome.PASS: "✅", Outcome.FAIL: "❌", Outcome.ERROR: "⚠️"}


def target_label(verdict: Verdict, target: str) -> str:
    """How a target is named to people: its AMI (from the run context) and instance ID."""
    labels = verdict.context.get("target_labels")
    if isinstance(labels, Mapping) and target in labels:
        return f"{labels[target]} ({target})"
    return target


def display_path(source: str, base: str | None = None) -> str:
    """A policy file as reports name it: relative to ``base`` (default: the working directory,
    the repository root in CI) when under it, else its file name; never this machine's
    absolute path. Pure path arithmetic, no file system access."""
    root = os.path.abspath(base if base is not None else os.getcwd())
    path = os.path.normpath(os.path.join(root, source))
    if os.path.commonpath([root, path]) == root and path != root:
        return os.path.relpath(path, root).replace(os.sep, "/")
    return os.path.basename(path) or source


def exit_code(verdict: Verdict) -> int:
    """The code the process exits with: an aborted run's (1, 2, 130, 143) else the verdict's."""
    code = verdict.context.get("exit_code")
    return code if isinstance(code, int) else int(verdict.exit_code)


def context_title(verdict: Verdict) -> str:
    run_id = verdict.context.get("run_id")
    title = f" (run {run_id})" if run_id else ""
    return title + (" on the local AWS, not a real account" if verdict.context.get("local") else "")


def section_line(text: str) -> str:
    """A node or vulnerability line: one printable line, cut at ``MAX_SECTION_LINE``."""
    return one_line(text, MAX_SECTION_LINE)


def group_by_check(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        grouped[f.result.check_id].append(f)
    return dict(grouped)


def dedupe(notes: Iterable[ExceptionNote]) -> list[ExceptionNote]:
    """One note per (policy, check), the first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for n in notes:
        key = (n.policy.source, n.exception.check_id)
        if key not in seen:
            seen.add(key)
            out.append(n)
    return out


# ---------------------------------------------------------------- Markdown

_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-!|~$^@:])")


def md(text: str) -> str:
    """Untrusted text as inert Markdown on one line: no HTML (``<script>``, ``<details>``,
    comments), no links, images, code spans, headings, table breaks or mentions; control
    characters shown as escapes and at most ``MAX_CELL_CHARS`` characters."""
    safe = one_line(text, MAX_CELL_CHARS)
    safe = safe.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCTUATION.sub(r"\\\1", safe)


def capped(rows: Iterator[str] | Iterable[str], total: int) -> list[str]:
    """At most ``MAX_MARKDOWN_ROWS`` table rows, then one saying how many more there are."""
    out = [r for _, r in zip(range(MAX_MARKDOWN_ROWS), rows, strict=False)]
    if total > MAX_MARKDOWN_ROWS:
        out.append(f"| … | {total - MAX_MARKDOWN_ROWS} more in verdict.json | | |")
    return out + [""]


def md_list(items: Iterable[str], total: int, limit: int = MAX_MARKDOWN_ROWS) -> list[str]:
    """Untrusted lines as a capped Markdown list (each made inert by ``md``), then a blank."""
    out = [f"- {md(i)}" for _, i in zip(range(limit), items, strict=False)]
    if total > limit:
        out.append(f"- … {total - limit} more in verdict.json")
    return out + [""]


# ---------------------------------------------------------------- XML

# XML 1.0 allows tab, LF, CR and these ranges; anything else (other C0 controls, U+FFFE/FFFF,
# lone surrogates) would make junit.xml unparsable, so it is shown as a visible escape.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def attr(text: str) -> str:
    """A quoted XML attribute value for any text (``quoteattr`` escapes CR, LF and tab)."""
    return quoteattr(xml_safe(text))


def text(value: str) -> str:
    """XML character data for any text."""
    return escape(xml_safe(value))
