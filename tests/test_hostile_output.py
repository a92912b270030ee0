"""Output no scan text or policy text can hijack: Actions log, summary.md, junit.xml, files.

The adversary controls titles, status reasons, target labels (AMI names), policy reasons and
approvers. The log is read the way the Actions runner reads it (a tiny parser below), summary.md
with a CommonMark parser, junit.xml with ``xml.etree``.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from pipeline import gate, github, node, outputs, policy, report, results, sections
from pipeline.errors import ConfigError, PipelineError
from pipeline.gate import ExceptionNote, Verdict
from pipeline.schema import schema_problems
from tests import _sectioncase as sectioncase
from tests._complete import complete_rows, page
from tests._dates import WARNING_DAY

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).parent / "invoke")
POLICY = ROOT / "policies/exceptions/amazon-linux-2023.yaml"
TODAY = WARNING_DAY  # some exceptions expire within 30 days: warnings are emitted too

HOSTILE = [
    "x\n::error::forged",
    "\n::stop-commands::abc",
    "::add-mask::secret",
    "%0A::error::percent-encoded",
    "cr-only\r::error::forged-after-cr",
    "crlf\r\n  ::warning::indented",
    "\n##[error]legacy command",
    "\n::endgroup::",
    "\n::0123456789abcdef0123456789abcdef::",
    "<script>alert(1)</script>",
    "[link](javascript:alert(1))",
    "![img](http://example.invalid/pixel.png)",
    "| a | b `code` *em* _u_ ~~s~~",
    "# heading",
    "<details><summary>open me</summary>",
    "<!-- hidden",
    "@someone $x^2$ \u202egnp.exe",
    "\x00\x1b[31m\x7f\ufffe\uffff\ud800",
    "x\n::set-output name=verdict::PASS",
    "\u202eSSAP\u202c <b>bold</b> **strong** \u2066::error::isolated\u2069",
    "\n::warning::big " + "A" * 10_000,  # 10 kB: every human-facing report caps it
]
MARKERS = ("forged", "secret", "percent-encoded", "legacy", "abc")


# ---------------------------------------------------------------- the runner, as a parser


_COMMAND = re.compile(r"^::([A-Za-z-]+)(?: ([^:]*))?::(.*)$")
_LEGACY = re.compile(r"^##\[([A-Za-z-]+)(?: ([^\]]*))?\](.*)$")


def honoured(log: str) -> list[str]:
    """The command lines a runner would act on, in order; a stop counts as a command unless it
    is one of the pipeline's own (a fresh 128-bit random token each time).

    Lines split on CR, LF and CRLF; leading white space is ignored; while commands are
    stopped only ``::<token>::`` (the exact token) resumes them.
    """
    out: list[str] = []
    tokens: list[str] = []
    token: str | None = None
    for raw in re.split(r"\r\n|\r|\n", log):
        line = raw.strip()
        if token is not None:
            if line.lower() == f"::{token}::".lower():
                token = None
            continue
        match = _COMMAND.match(line) or _LEGACY.match(line)
        if not match:
            continue
        if match.group(1).lower() == "stop-commands":
            token = match.group(3)
            if re.fullmatch(r"[0-9a-f]{32}", token) and token not in tokens:
                tokens.append(token)
                continue
        out.append(line)
    return out


def test_the_parser_sees_what_an_unprotected_log_would_do() -> None:
    """The oracle itself: the old behaviour (plain printing) is caught as forgery."""
    assert honoured("FAIL x\n::error::forged\r::add-mask::s\n  ##[error]y") == [
        "::error::forged",
        "::add-mask::s",
        "##[error]y",
    ]
    assert honoured("::stop-commands::" + "a" * 32 + "\n::error::no\n::" + "a" * 32 + "::") == []
    assert honoured("x\n::stop-commands::abc\n::error::silenced") == ["::stop-commands::abc"]


# ---------------------------------------------------------------- a hostile verdict


def _verdict(texts: list[str], *, local: bool = False, judged: bool = True) -> Verdict:
    """A real gate verdict (complete results, one blocking and one excepted failure), with
    every untrusted field replaced by hostile text; ``judged``: with the node and vulnerability
    sections too (``_sectioncase.hostile``)."""
    rows = complete_rows(failed=["1.1.1.1", "3.2.1"])
    parsed = results.parse_document([page(rows)], "results.json")
    pol = policy.load(POLICY)
    verdict = gate.evaluate(parsed.rows, {r.target: pol for r in parsed.rows}, TODAY, level=2)
    text = itertools.cycle(texts)

    def hostile_finding(f: gate.Finding) -> gate.Finding:
        row = dataclasses.replace(f.result, title=next(text), status_reason=next(text))
        exc = f.exception
        if exc is not None:
            exc = dataclasses.replace(exc, reason=next(text), approved_by=next(text))
        return dataclasses.replace(f, result=row, message=next(text), exception=exc)

    hostile_policy = dataclasses.replace(pol, source=str(Path.cwd() / "policies" / next(text)))
    notes = tuple(
        ExceptionNote(dataclasses.replace(n.exception, title=next(text)), hostile_policy)
        for n in verdict.expiring_soon
    )
    target = verdict.targets[0].target
    hostile = dataclasses.replace(
        verdict,
        failed_unexcepted=tuple(hostile_finding(f) for f in verdict.failed_unexcepted),
        failed_excepted=tuple(hostile_finding(f) for f in verdict.failed_excepted),
        skipped=tuple(hostile_finding(f) for f in verdict.skipped[:5]),
        expiring_soon=notes,
        policies=(hostile_policy,),
        errors=tuple(texts),
        warnings=tuple(texts),
        context={"target_labels": {target: next(text)}, "run_id": next(text), "local": local},
    )
    return sectioncase.hostile(hostile, texts, TODAY) if judged else hostile


@pytest.fixture
def actions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))
    monkeypatch.setattr(github, "_CHANNEL", github._Channel())
    yield tmp_path


def test_no_untrusted_text_becomes_a_workflow_command(actions: Path) -> None:
    verdict = _verdict(HOSTILE)
    log: list[str] = []
    github.start_untrusted_output(log.append)
    log.append("untrusted output before any command: " + HOSTILE[0])
    with github.group("validate and gate", log.append):
        paths = outputs.write_reports(verdict, actions / "out")
        outputs.publish(verdict, paths, log.append)
    own = [c.render() for c in report.github_annotations(verdict)]
    sections_own = sectioncase.section_annotations(
        verdict
    )  # 1 failed node check, 1 blocking finding
    assert len(own) == len(verdict.errors) + 1 + len(verdict.expiring_soon) + sections_own
    assert honoured("\n".join(log)) == ["::group::validate and gate", *own, "::endgroup::"]
    for command in own:
        assert not re.search(r"[\r\n]", command)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_each_hostile_text_alone(actions: Path, text: str) -> None:
    verdict = _verdict([text])
    log: list[str] = []
    github.start_untrusted_output(log.append)
    paths = outputs.write_reports(verdict, actions / "out")
    outputs.publish(verdict, paths, log.append)
    got = honoured("\n".join(log))
    assert got == [c.render() for c in report.github_annotations(verdict)]
    assert all(g.startswith(("::error title=", "::warning title=")) for g in got)


def test_console_lines_are_single_printable_lines() -> None:
    for line in report.console_lines(_verdict(HOSTILE)):
        assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029\u202e]", line), line
        line.encode("utf-8")  # no lone surrogate


def test_command_escaping() -> None:
    cmd = github.Command("error", "50% a\r\nb", (("title", "x:y,z%\n"),))
    assert cmd.render() == "::error title=x%3Ay%2Cz%25%0A::50%25 a%0D%0Ab"


def test_outside_actions_nothing_is_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setattr(github, "_CHANNEL", github._Channel())
    log: list[str] = []
    github.start_untrusted_output(log.append)
    github.emit(github.Command("error", "x"), log.append)
    with github.group("build", log.append):
        pass
    assert log == ["== build"]


def test_cli_under_actions_honours_only_its_own_annotations(tmp_path: Path) -> None:
    rows = complete_rows(failed=["1.1.1.1"])
    for row, text in zip(rows, HOSTILE, strict=False):
        row["statusReason"] = text
    rows[0]["title"] = HOSTILE[0] + rows[0]["title"]  # title drift: an error naming it
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps([page(rows)]))
    out = tmp_path / "out"
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}
    proc = subprocess.run(
        [INVOKE, "gate", "--results", str(results_file), "--level", "2", "--out", str(out)],
        cwd=ROOT,
        env={**env, "GITHUB_OUTPUT": str(tmp_path / "o.txt")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (3, 4), proc.stderr
    got = honoured(proc.stdout)
    verdict = json.loads((out / "verdict.json").read_text())
    blocking = min(50, len(verdict["failed_unexcepted"]))
    errors = min(50, len(verdict["errors"]))
    assert len(got) == errors + blocking + len(verdict["expiring_soon"])
    assert got and all(g.startswith(("::error title=", "::warning title=")) for g in got)
    assert all(line.startswith("error: ") for line in proc.stderr.splitlines())


def test_node_and_inspector_text_is_capped_and_inert_in_every_human_report() -> None:
    """What the probe saw and what Inspector says (10 kB, commands, bidi, HTML): cut to one
    short line on the console and in annotations, to one inert cell in summary.md; whole, and
    schema-valid, only in verdict.json."""
    big = HOSTILE[-1]
    verdict = _verdict([big, HOSTILE[-3], HOSTILE[-2]])
    lines = [x for x in report.console_lines(verdict) if x.startswith(("NODE", "VULN"))]
    assert any(x.startswith("NODE FAIL ") for x in lines)
    assert any(x.startswith("VULN FAIL ") for x in lines)
    assert any(x.startswith("VULN EXCEPTED ") for x in lines)
    for line in lines:
        assert len(line) <= report.MAX_SECTION_LINE, line[:80]
        assert not re.search(
            r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]", line
        )
    commands = report.github_annotations(verdict)
    own = [c for c in commands if not dict(c.properties)["title"].startswith("CIS ")]
    assert len(own) == sectioncase.section_annotations(verdict)
    for command in own:
        assert len(command.message) <= report.MAX_SECTION_LINE
        assert not re.search(r"[\r\n\u202e]", command.render())
    markdown = report.to_markdown(verdict)
    assert "A" * report.MAX_CELL_CHARS not in markdown
    assert "\u202e" not in markdown and "<b>" not in markdown and "::set-output" not in markdown
    data = report.to_json(verdict)
    assert schema_problems(data, "verdict.schema.json", "hostile") == []
    node_failed = data["sections"]["node"]["failed"]
    assert big in [r["observed"] for r in node_failed] + [r["title"] for r in node_failed]
    json.dumps(data)  # lone surrogates and all: the machine-readable record keeps every text


def test_a_hostile_probe_line_proves_nothing_more_than_its_first_200_characters() -> None:
    """The probe's output is untrusted too: a line break ends an observed text (what follows is
    not a probe line), and no observed text is longer than the parser keeps."""
    target = "i-0123456789abcdef0"
    check = node.load_catalogue().checks[0].id
    lines = sectioncase.probe_output({}).splitlines()
    lines[1] = f"NODE|{check}|FAIL|<b>x</b> \u202e" + "B" * 10_000 + "\n::set-output name=v::PASS"
    judged = node.evaluate(sectioncase.node_document({target: {"raw": lines}}), [target])
    (failed,) = judged.failed
    assert failed.observed.startswith("<b>x</b>") and len(failed.observed) == node.MAX_OBSERVED
    verdict = sections.combine(_verdict(["t"], judged=False), judged, None)
    (line,) = [x for x in report.console_lines(verdict) if x.startswith("NODE FAIL")]
    assert "\\u202e" in line and "set-output" not in line
    assert "&lt;b&gt;x&lt;/b&gt;" in report.to_markdown(verdict)


# ---------------------------------------------------------------- $GITHUB_OUTPUT


def _read_outputs(text: str) -> dict[str, str]:
    """The runner's reading of $GITHUB_OUTPUT: ``k=v`` lines and ``k<<DELIM`` heredocs."""
    values: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delim:
                    break
                body.append(inner)
            values[key] = "\n".join(body)
        else:
            key, value = line.split("=", 1)
            values[key] = value
    return values


@given(st.text(max_size=40), st.sampled_from(["", "\n", "x\nforged=1\nEOF\n", "EOF_"]))
@settings(max_examples=settings().max_examples)  # the profile's budget
def test_output_values_round_trip_and_add_no_keys(value: str, tail: str) -> None:
    values = {"verdict": value + tail, "ami-ids": "ami-1,ami-2"}
    if "\r" in value:
        values["verdict"] = value.replace("\r", "")  # the runner's own line reading drops CR
    assert _read_outputs(github.output_lines(values)) == values


@pytest.mark.parametrize("key", ["", "a b", "a=b", "a<<b", "x\ny", "-lead"])
def test_output_names_are_validated(key: str) -> None:
    with pytest.raises(PipelineError, match="not a valid output name"):
        github.output_lines({key: "v"})


# ---------------------------------------------------------------- summary.md


_GITHUB_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_OWN_HTML = {"<details><summary>", "</summary>", "</details>"}


def test_summary_markdown_is_inert() -> None:
    markdown = report.to_markdown(_verdict(HOSTILE))
    tokens = _GITHUB_MD.parse(markdown)
    inline = [child for t in tokens for child in (t.children or [])]
    html = [t.content for t in tokens + inline if t.type in ("html_block", "html_inline")]
    assert all(any(own in h for own in _OWN_HTML) for h in html), html
    assert not [t for t in inline if t.type in ("link_open", "image", "code_inline", "s_open")]
    assert not [t for t in inline if t.type in ("em_open", "strong_open")]
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    own = ("✅", "❌", "⚠️", "Not a", "Blocking", "Failures", "Exceptions", "Expired", "Unused")
    own += ("Node readiness: ", "Node probe", "Node checks", "Vulnerabilit", "Package scan")
    assert all(h.startswith((*own, "Warnings")) for h in headings), headings
    rendered = _GITHUB_MD.render(markdown)
    for bad in ("<script", "href=", "<img", "<!--", "<summary>open me", "<code>", "<h1>"):
        assert bad not in rendered


def test_summary_tables_keep_their_columns() -> None:
    markdown = report.to_markdown(_verdict(HOSTILE))
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| …"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) in (4, 5, 6), line
    assert "\r" not in markdown and "\x1b" not in markdown


def test_local_marker_in_summary_and_junit() -> None:
    verdict = _verdict(["t"], local=True)
    assert "on the local AWS, not a real account" in report.to_markdown(verdict).splitlines()[0]
    buf = io.StringIO()
    report.write_junit(verdict, buf)
    name = ET.fromstring(buf.getvalue().encode()).get("name") or ""
    assert name.startswith("CIS gate") and "on the local AWS, not a real account" in name


# ---------------------------------------------------------------- junit.xml


_ANY_CHAR = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
    st.sampled_from(["\ud800", "\udfff", "\ufffe", "\uffff", "\x00", "\x0b", "\x1b", "<", "&"]),
)


@given(st.lists(st.text(alphabet=_ANY_CHAR, max_size=30), min_size=1, max_size=8))
@settings(  # three quarters of the profile's budget: each example renders a whole report
    max_examples=3 * settings().max_examples // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_junit_is_well_formed_for_any_text(texts: list[str]) -> None:
    verdict = _verdict(texts + HOSTILE[:1])
    buf = io.StringIO()
    report.write_junit(verdict, buf)
    root = ET.fromstring(buf.getvalue().encode("utf-8"))
    cases = root.findall(".//testcase")
    assert len(cases) >= verdict.total
    legal = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
    titled = {f.result.title for f in verdict.failed_unexcepted if f.result.title}
    for title in titled:
        if legal.match(title):  # legal text survives unchanged
            assert any((c.get("name") or "").endswith(title) for c in cases)


# ---------------------------------------------------------------- files


def test_reports_are_never_written_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("verdict.json", "junit.xml", "summary.md"):
        (out / name).unlink(missing_ok=True)
        (out / name).symlink_to(victim)
        with pytest.raises(ConfigError, match=f"{out / name}: is a symbolic link"):
            outputs.write_reports(_verdict(["t"]), out)
        (out / name).unlink()
        outputs.write_reports(_verdict(["t"]), out)  # the other files are fine
    (out / "scan.json").symlink_to(victim)
    with pytest.raises(ConfigError, match="scan.json: is a symbolic link"):
        outputs.write_json(out / "scan.json", {"x": 1})
    (out / "cis-report.csv").symlink_to(victim)  # a downloaded document, written as bytes
    with pytest.raises(ConfigError, match="cis-report.csv: is a symbolic link"):
        outputs.write_bytes(out / "cis-report.csv", b"checkId,status\n")
    assert victim.read_text() == "keep me"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        out = tmp_path / "a" / "b"
        paths = outputs.write_reports(_verdict(["t"]), out)
        raw = outputs.write_bytes(out / "cis-report.csv", b"\xef\xbb\xbfcheckId\r\n")
    finally:
        os.umask(old)
    assert raw.read_bytes() == b"\xef\xbb\xbfcheckId\r\n"  # the bytes as they came
    for path in (paths.verdict_json, paths.junit_xml, paths.summary_md, raw):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    for folder in (tmp_path / "a", out):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "verdict.json"
    outputs.write_json(target, {"old": True})

    def explode(handle: io.TextIOBase) -> None:
        handle.write('{"half": ')
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        outputs.write_atomic(target, explode)
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["verdict.json"]


# ---------------------------------------------------------------- policy paths


@pytest.mark.parametrize(
    ("source", "base", "shown"),
    [
        ("/home/dev/repo/policies/x/al2.yaml", "/home/dev/repo", "policies/x/al2.yaml"),
        ("/tmp/elsewhere/al2.yaml", "/home/dev/repo", "al2.yaml"),
        ("policies/al2.yaml", "/home/dev/repo", "policies/al2.yaml"),
        ("./policies/../policies/al2.yaml", "/home/dev/repo", "policies/al2.yaml"),
        ("../../etc/al2.yaml", "/home/dev/repo", "al2.yaml"),
        ("/home/dev/repository/al2.yaml", "/home/dev/repo", "al2.yaml"),
    ],
)  # fmt: skip
def test_policy_paths_are_shown_relative_or_by_name(source: str, base: str, shown: str) -> None:
    assert report.display_path(source, base) == shown


def test_reports_never_name_this_machines_absolute_paths(tmp_path: Path) -> None:
    verdict = _verdict(["t"])
    outside = dataclasses.replace(verdict.policies[0], source=str(tmp_path / "p.yaml"))
    notes = tuple(dataclasses.replace(n, policy=outside) for n in verdict.expiring_soon)
    for v in (verdict, dataclasses.replace(verdict, policies=(outside,), expiring_soon=notes)):
        data = report.to_json(v)
        sources = [p["source"] for p in data["policies"]]
        sources += [n["policy"] for n in data["expiring_soon"]]
        assert sources and not any(s.startswith("/") for s in sources), sources
        assert str(tmp_path) not in report.to_markdown(v)
        assert str(Path.cwd()) not in report.to_markdown(v)


def test_a_flood_of_problems_is_capped_everywhere_but_verdict_json() -> None:
    """250,000 unusable rows: console, annotations and summary stay short; junit stays fast."""
    flood = tuple(f"results.json: $[{i}]: result has no checkId" for i in range(250_000))
    verdict = dataclasses.replace(_verdict(["t"], judged=False), errors=flood)
    console = report.console_lines(verdict)
    assert len(console) < 300 and "ERROR    … 249900 more in verdict.json" in console
    assert len(report.github_annotations(verdict)) <= 50 + 1 + len(verdict.expiring_soon)
    markdown = report.to_markdown(verdict)
    assert len(markdown) < 100_000 and "… 249800 more in verdict.json" in markdown
    buf = io.StringIO()
    report.write_junit(verdict, buf)  # every error stays in the machine-readable reports
    assert len(ET.fromstring(buf.getvalue().encode()).findall(".//error")) == 250_000
    assert len(report.to_json(verdict)["errors"]) == 250_000


def test_cli_error_lines_from_hostile_names_stay_one_line(tmp_path: Path) -> None:
    """A file name is untrusted too: the error names it on one line, after the stop."""
    name = tmp_path / "r\n::error::forged\r::add-mask::x.json"
    proc = subprocess.run(
        [INVOKE, "gate", "--results", str(name), "--level", "2", "--out", str(tmp_path / "o")],
        cwd=ROOT,
        env={**os.environ, "GITHUB_ACTIONS": "true"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert re.fullmatch(r"::stop-commands::[0-9a-f]{32}\n", proc.stdout)
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ") and "r\\n::error::forged\\r::add-mask::x.json" in line
    assert honoured(proc.stdout + proc.stderr) == []
