"""The gate and ``invoke gate`` tried as an adversary: evidence files, pages and API answers that
used to give a PASS (or a traceback) without a complete, reconciled, level-true scan.

Each case starts from a validate run's complete evidence folder (results.json, scan.json,
targets.json, run.json) that passes, changes one thing, and names what must come out: a verdict
(ERROR is exit 4) or exit 2 with one line naming the file and the JSON path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline import commands, gate, policy, results
from pipeline.aws.inspector import ScanTarget
from pipeline.errors import ConfigError, ExitCode
from pipeline.validate.scan import target_problems
from tests._complete import SCAN_ARN, complete_rows, page, status_counts

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies/exceptions"
DAY = date(2026, 12, 1)
FAILED = ["1.6.1.6", "2.1.2", "3.2.1", "3.4.2.7", "4.2.2", "4.2.4", "5.1.1.6", "6.1.11", "6.1.12"]
SKIP = """
skips:
  - check_id: 1.1.1.1
    title: Ensure mounting of squashfs filesystems is disabled
    reason: Inspector does not evaluate this check on arm64 instances.
    approved_by: platform-security
    expires: 2027-01-31
    architectures: [arm64]
"""

Files = dict[str, Any]


def complete(targets: tuple[str, ...] = ("i-1",), skipped: tuple[str, ...] = ()) -> Files:
    """The evidence of a passing LEVEL_2 run, as validate writes it (contents, by file name)."""
    pages, counts, total, failed = [], [], 0, 0
    for target in targets:
        rows = complete_rows(target=target, failed=FAILED, skipped=skipped)
        pages.append(page(rows, target))
        c = status_counts(rows)
        counts.append({"targetResourceId": target, "statusCounts": c, "targetStatus": "COMPLETED"})
        total, failed = total + len(rows), failed + c["failed"]
    scan = {"scanArn": SCAN_ARN, "securityLevel": "LEVEL_2", "status": "COMPLETED"}
    run = {"run_id": "20261127T000000Z-abcdef", "local": True}
    run["architectures"] = dict.fromkeys(targets, "x86_64")
    return {
        "results.json": pages,
        "scan.json": scan | {"totalChecks": total, "failedChecks": failed},
        "targets.json": counts,
        "run.json": run,
    }


def write(folder: Path, files: Files) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is not None:  # None: the file is absent; a str: its exact text
            text = content if isinstance(content, str) else json.dumps(content)
            (folder / name).write_text(text)
    return folder / "results.json"


def judge(tmp_path: Path, files: Files, policy_file: Path | None = None) -> gate.Verdict:
    given = [str(policy_file)] if policy_file else []
    return commands.run_gate(
        str(write(tmp_path / "evidence", files)),
        given,
        DAY,
        str(tmp_path / "out"),
        POLICIES,
        lambda _: None,
    )


GONE = object()  # _set's value that deletes the key


def _set(path: str, value: Any) -> Callable[[Files], None]:
    """Set ``file:key.key`` (list indexes as numbers) to ``value``; GONE deletes the key."""
    name, _, keys = path.partition(":")

    def edit(files: Files) -> None:
        node = files[name]
        *parents, last = [int(k) if k.isdigit() else k for k in keys.split(".")]
        for key in parents:
            node = node[key]
        if value is GONE:
            del node[last]
        else:
            node[last] = value

    return edit


def _swap_pages(files: Files) -> None:
    first, second = files["results.json"]
    first["targetResourceId"], second["targetResourceId"] = "i-2", "i-1"


def _twice(files: Files) -> None:
    files["targets.json"].append({**files["targets.json"][0], "targetStatus": "FAILED"})


def _twice_identical(files: Files) -> None:
    files["targets.json"].append(dict(files["targets.json"][0]))


def _drop(name: str) -> Callable[[Files], None]:
    def edit(files: Files) -> None:
        files[name] = None

    return edit


# (case, targets, edit, verdict, needle): the verdict a corrupted evidence folder must get.
VERDICTS: list[tuple[str, tuple[str, ...], Callable[[Files], None], str, str]] = [
    ("untouched", ("i-1",), lambda f: None, "PASS", ""),
    ("scan cancelled", ("i-1",), _set("scan.json:status", "CANCELLED"), "ERROR", "'CANCELLED'"),
    ("scan failed", ("i-1",), _set("scan.json:status", "FAILED"), "ERROR", "not COMPLETED"),
    ("scan status gone", ("i-1",), _set("scan.json:status", GONE), "ERROR", "None, not COMPLETED"),
    (
        "target not managed by SSM",
        ("i-1",),
        _set("targets.json:0.targetStatusReason", "SSM_UNMANAGED"),
        "ERROR",
        "(SSM_UNMANAGED): it was not scanned",
    ),
    (
        "target timed out",
        ("i-1",),
        _set("targets.json:0.targetStatus", "TIMED_OUT"),
        "ERROR",
        "is 'TIMED_OUT'",
    ),
    ("target listed twice, identical", ("i-1",), _twice_identical, "PASS", ""),
    (
        "a row without scanArn",
        ("i-1",),
        _set("results.json:0.scanResultDetails.5.scanArn", GONE),
        "ERROR",
        "(or none)",
    ),
    (
        "a row whose scanArn is not a string",
        ("i-1",),
        _set("results.json:0.scanResultDetails.5.scanArn", False),
        "ERROR",
        "not this scan's",
    ),
    ("nextToken 0", ("i-1",), _set("results.json:0.nextToken", 0), "ERROR", "more results"),
    ("nextToken false", ("i-1",), _set("results.json:0.nextToken", False), "ERROR", "incomplete"),
    ("nextToken blank", ("i-1",), _set("results.json:0.nextToken", " "), "ERROR", "incomplete"),
    (
        "nextToken empty (botocore: last page)",
        ("i-1",),
        _set("results.json:0.nextToken", ""),
        "PASS",
        "",
    ),
    ("nextToken null", ("i-1",), _set("results.json:0.nextToken", None), "PASS", ""),
    (
        "pages answered for the other instance",
        ("i-1", "i-2"),
        _swap_pages,
        "ERROR",
        "the API answered for another instance",
    ),
]


@pytest.mark.parametrize(
    ("targets", "edit", "want", "needle"),
    [v[1:] for v in VERDICTS],
    ids=[v[0] for v in VERDICTS],
)
def test_evidence_that_lies_is_never_a_pass(
    tmp_path: Path,
    targets: tuple[str, ...],
    edit: Callable[[Files], None],
    want: str,
    needle: str,
) -> None:
    files = complete(targets)
    edit(files)
    verdict = judge(tmp_path, files)
    assert verdict.verdict.value == want, verdict.errors
    if needle:
        assert any(needle in e for e in verdict.errors), verdict.errors
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["verdict"] == want


# (case, edit, message): evidence that contradicts itself or is malformed is exit 2, one line.
REFUSED: list[tuple[str, Callable[[Files], None], str]] = [
    ("target listed twice, differently", _twice, "targets.json: $[1].targetResourceId: i-1 is"),
    ("targets without scan", _drop("scan.json"), "targets.json: no scan.json beside it"),
    ("scan without targets", _drop("targets.json"), "scan.json: no targets.json beside it"),
    ("scanArn not a string", _set("scan.json:scanArn", 7), "scan.json: $.scanArn: expected"),
    (
        "count as a string",
        _set("targets.json:0.statusCounts.failed", "9"),
        "$[0].statusCounts.failed",
    ),
    ("local as a string", _set("run.json:local", "false"), "run.json: $.local: expected true"),
    (
        "architectures a list",
        _set("run.json:architectures", ["arm64"]),
        "$.architectures: expected",
    ),
    ("architecture upper case", _set("run.json:architectures.i-1", "ARM64"), "$.architectures.i-1"),
    ("architecture padded", _set("run.json:architectures.i-1", "arm64 "), "not one of x86_64"),
    (
        "page target a list",
        _set("results.json:0.targetResourceId", ["i-1"]),
        "$[0].targetResourceId",
    ),
    (
        "run.json null",
        lambda f: f.update({"run.json": "null"}),
        "run.json: $: expected an object or a list, got null",
    ),
    ("page target blank", _set("results.json:0.targetResourceId", " "), "expected an instance ID"),
]


@pytest.mark.parametrize(("edit", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_malformed_evidence_is_exit_2_naming_the_file_and_path(
    tmp_path: Path, edit: Callable[[Files], None], message: str
) -> None:
    files = complete()
    edit(files)
    with pytest.raises(ConfigError) as caught:
        judge(tmp_path, files)
    assert caught.value.exit_code == ExitCode.INVALID_INPUT
    assert message in str(caught.value)


def test_an_evidence_path_that_is_not_a_file_is_not_absent(tmp_path: Path) -> None:
    files = complete()
    files["targets.json"] = None
    write(tmp_path / "evidence", files)
    (tmp_path / "evidence/targets.json").mkdir()  # "no counts to reconcile with"
    with pytest.raises(ConfigError, match="targets.json: not a regular file"):
        judge(tmp_path, files)


@pytest.mark.parametrize(
    ("architecture", "want"), [("arm64", "PASS"), ("x86_64", "ERROR")], ids=["arm64", "x86_64"]
)
def test_an_architecture_scoped_skip_needs_that_architecture(
    tmp_path: Path, architecture: str, want: str
) -> None:
    """run.json's architectures decide which scoped skips apply. ``invoke gate`` trusts them as
    much as the unsigned results beside them (whoever can write one can write the other);
    validate takes them from DescribeImages, and ``verify --regate`` from the signed evidence."""
    pol = tmp_path / "skips.yaml"
    pol.write_text((POLICIES / "amazon-linux-2023.yaml").read_text() + SKIP)
    files = complete(skipped=("1.1.1.1",))
    files["run.json"]["architectures"]["i-1"] = architecture
    verdict = judge(tmp_path, files, pol)
    assert verdict.verdict.value == want, verdict.errors


def test_rows_of_a_target_without_a_policy_are_untrusted_not_invalid_input() -> None:
    """Validate chooses a policy per launched instance: rows about any other target (an API
    answering for another instance) make the scan untrustworthy (exit 4), not a user error."""
    shipped = policy.load(POLICIES / "amazon-linux-2023.yaml")
    rows = complete_rows(target="i-1", failed=FAILED) + complete_rows(target="i-9")
    parsed = results.parse_document(rows, "results.json")
    verdict = gate.evaluate(parsed.rows, {"i-1": shipped}, DAY, level=2)
    assert verdict.exit_code == ExitCode.UNTRUSTED_SCAN
    assert any("i-9: results for a target that is not one" in e for e in verdict.errors)
    assert {t.target: t.verdict.value for t in verdict.targets} == {"i-1": "PASS", "i-9": "ERROR"}


@pytest.mark.parametrize(
    "check_id",
    ["1" * 5000, "9" * 4301 + ".1", "xccdf_org.cisecurity.benchmarks_rule_" + "7" * 4400 + "_x"],
    ids=["5000-digits", "4301-digit-part", "xccdf-4400-digits"],
)
def test_a_check_id_too_long_for_int_is_a_problem_not_a_traceback(
    tmp_path: Path, check_id: str
) -> None:
    """Python refuses int() of more than 4,300 digits; sorting IDs must not depend on it."""
    files = complete()
    rows = files["results.json"][0]["scanResultDetails"]
    rows[0]["checkId"] = check_id
    rows.append({**rows[1], "checkId": check_id[::-1], "status": "FAILED"})
    verdict = judge(tmp_path, files)
    assert verdict.verdict is gate.Outcome.ERROR
    assert any("is not a CIS recommendation number" in e for e in verdict.errors)
    assert max(len(e) for e in verdict.errors) < 1000  # the ID is not echoed whole
    shipped = policy.load(POLICIES / "amazon-linux-2023.yaml")
    raw = [{**r, "checkId": check_id if i == 0 else r["checkId"]} for i, r in enumerate(rows)]
    direct = gate.evaluate(
        [results.CheckResult(r["checkId"], results.CheckStatus.PASSED, "i-1") for r in raw],
        {"i-1": shipped},
        DAY,
        level=2,
    )  # rows built by hand, past the parser's bound: the gate itself must not crash either
    assert direct.verdict is gate.Outcome.ERROR


def _target(status: str = "COMPLETED", passed: int = 213) -> ScanTarget:
    raw = {"targetResourceId": "i-1", "targetStatus": status}
    return ScanTarget("i-1", status, None, "AMAZON_LINUX_2023", passed, 9, 21, raw)


@pytest.mark.parametrize(
    ("listed", "problem"),
    [
        ([_target()], False),
        ([_target(), _target()], False),
        ([_target("FAILED"), _target()], True),  # the last one used to win
        ([_target(), _target(passed=1)], True),
    ],
    ids=["once", "twice-identical", "failed-then-completed", "two-counts"],
)
def test_validate_refuses_a_target_inspector_lists_twice_differently(
    listed: list[ScanTarget], problem: bool
) -> None:
    found = target_problems(listed, ["i-1"])
    assert bool(found) is problem, found
    assert all("more than once" in p or "FAILED" in p for p in found)


@pytest.mark.parametrize(
    ("edit", "code", "needle"),
    [(_twice, 2, "listed again"), (_set("scan.json:status", "CANCELLED"), 4, "")],
    ids=["exit-2", "exit-4"],
)
def test_cli_exit_codes_and_one_line(
    tmp_path: Path, edit: Callable[[Files], None], code: int, needle: str
) -> None:
    files = complete()
    edit(files)
    results_path = write(tmp_path / "evidence", files)
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "gate", "--results", str(results_path)]
        + ["--out", str(tmp_path / "out"), "--today", DAY.isoformat()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    if needle:
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], done.stderr
