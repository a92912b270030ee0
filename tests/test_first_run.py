"""The first ten minutes: inputs checked before a build, visible retries, a README that is true."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import catalog, commands
from pipeline.aws import CallCounter, make_clients
from pipeline.errors import ExitCode, PipelineError
from pipeline.localaws import LocalAws
from pipeline.orchestration import chain, nightly
from pipeline.orchestration.chain import ChainSettings, run_chain
from pipeline.runs import new_run_id
from pipeline.validate import Runtime, ValidateSettings, retry_line, run_validate
from tests._dates import FIRST_EXPIRY, VALID_DAY, shifted_now
from tests.validate.conftest import FakeTime, make_ami, settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
POLICIES = ROOT / "policies/exceptions"
TODAY = date(2026, 11, 27)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


# --- everything is checked before the Packer build starts ---------------------------------------


def _chain(tmp_path: Path, **overrides: Any) -> ChainSettings:
    base: dict[str, Any] = {
        "platforms": ("al2023",),
        "archs": ("x86_64",),
        "k8s_version": None,
        "level": 2,
        "out_dir": tmp_path / "out",
        "policy_dir": POLICIES,
        "local": True,
    }
    base.update(overrides)
    return ChainSettings(**base)


def _bad_policy(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    text = (POLICIES / "amazon-linux-2023.yaml").read_text()
    (folder / "amazon-linux-2023.yaml").write_text(
        text.replace(f"expires: {FIRST_EXPIRY}", "expires: soon", 1)
    )
    return folder


def _expired_policy(tmp_path: Path) -> Path:
    folder = tmp_path / "expired"
    folder.mkdir()
    text = (POLICIES / "amazon-linux-2023.yaml").read_text()
    (folder / "amazon-linux-2023.yaml").write_text(text.replace(str(FIRST_EXPIRY), "2026-01-31", 1))
    return folder


def _bad_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "bad-scenario.yaml"
    path.write_text("scan: {final_status: DONE}\n")
    return path


def _unwritable(tmp_path: Path) -> Path:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "out"


PREFLIGHT_CASES: list[tuple[str, Callable[[Path], dict[str, Any]], str]] = [
    ("invalid policy", lambda t: {"policy_dir": _bad_policy(t)}, "$.exceptions[0].expires"),
    ("expired exception", lambda t: {"policy_dir": _expired_policy(t)}, "expired on 2026-01-31"),
    ("level", lambda _: {"level": 3}, "--level 3"),
    ("platform", lambda _: {"platforms": ("ubuntu",)}, "--platform: unknown platform"),
    ("arch", lambda _: {"archs": ("ppc64le",)}, "--arch 'ppc64le'"),
    ("k8s version", lambda _: {"k8s_version": "latest"}, "--k8s-version 'latest'"),
    ("al2 with 1.33", lambda _: {"platforms": ("al2",), "k8s_version": "1.33"}, "--k8s-version"),
    ("nothing", lambda _: {"archs": ()}, "nothing to build"),
    (
        "instance type",
        lambda _: {"validate": ValidateSettings((), instance_types={"x86_64": "m6i large"})},
        "$.pipeline.validate.instance_types.x86_64",
    ),
    ("scenario w/o --local", lambda t: {"local": False, "scenario": t / "x.yaml"}, "add --local"),
    ("scenario", lambda t: {"scenario": _bad_scenario(t)}, "$.scan.final_status"),
    ("out folder", lambda t: {"out_dir": _unwritable(t)}, "cannot write there"),
    ("no policy", lambda t: {"policy_dir": t / "none"}, "no exceptions policy directory"),
]


@pytest.mark.parametrize(("name", "change", "fragment"), PREFLIGHT_CASES, ids=lambda c: c)
def test_preflight_refuses_bad_input_with_exit_2(
    name: str, change: Callable[[Path], dict[str, Any]], fragment: str, tmp_path: Path
) -> None:
    with pytest.raises(PipelineError) as err:
        chain.preflight(_chain(tmp_path, **change(tmp_path)), TODAY)
    assert err.value.exit_code == ExitCode.INVALID_INPUT, name
    assert any(fragment in line for line in err.value.lines()), err.value.lines()


def test_preflight_accepts_the_shipped_defaults(tmp_path: Path) -> None:
    chain.preflight(_chain(tmp_path, platforms=("al2023", "al2"), archs=("x86_64", "arm64")), TODAY)


def test_an_invalid_policy_stops_build_and_validate_before_any_ami_exists(
    aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(*_: Any, **__: Any) -> Any:
        raise AssertionError("the Packer build must not start")

    monkeypatch.setattr(nightly, "run_build", no_build)
    lines: list[str] = []
    with pytest.raises(PipelineError) as err:
        run_chain(
            _chain(tmp_path, policy_dir=_bad_policy(tmp_path)),
            Runtime(echo=lines.append, now=lambda: NOW),
        )
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert "amazon-linux-2023.yaml: $.exceptions[0].expires" in err.value.lines()[0]
    clients = make_clients()
    assert clients.ec2.describe_images(Owners=["self"])["Images"] == []
    assert aws.count("RunInstances") == 0 and aws.count("CreateImage") == 0


def test_the_cli_refuses_an_invalid_policy_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    runtime = tmp_path / "cfg.yaml"  # -f, on the command line: invoke.yaml's policy_dir
    runtime.write_text(f"pipeline:\n  policy_dir: {_bad_policy(tmp_path)}\n", encoding="utf-8")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "-f", str(runtime), "build-and-validate"]
        + ["--local"]
        + ["--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and "$.exceptions[0].expires" in proc.stderr
    assert "local AWS" not in proc.stdout and "building" not in proc.stdout  # nothing started


# --- throttling retries are visible ------------------------------------------------------------


def test_the_counter_counts_only_actual_retries() -> None:
    counter = CallCounter()
    for attempts in (1, 1, 2, 3):  # two calls; the second needed attempts 2 and 3
        counter.count_retry("needs-retry.inspector2.ListCisScans", attempts=attempts)
    counter.count_retry("needs-retry.ec2.DescribeImages", attempts=1)
    assert counter.retries_as_dict() == {"inspector2:ListCisScans": 2}
    assert counter.retries_total == 2


@pytest.mark.parametrize(
    ("retries", "line"),
    [
        ({}, None),
        ({"inspector2:ListCisScans": 1}, "AWS throttling: 1 retry (ListCisScans 1)"),
        (
            {"inspector2:ListCisScans": 2, "inspector2:GetCisScanResultDetails": 5},
            "AWS throttling: 7 retries (GetCisScanResultDetails 5, ListCisScans 2)",
        ),
    ],
)
def test_retry_line(retries: dict[str, int], line: str | None) -> None:
    assert retry_line(retries) == line


def test_the_throttled_scenario_records_its_retries(aws: LocalAws, tmp_path: Path) -> None:
    aws.load_scenario(ROOT / "examples/scenarios/throttled.yaml")
    clients = make_clients()
    ami = make_ami(clients, "al2023", "x86_64")
    fake = FakeTime(aws)
    lines: list[str] = []
    run_validate(
        settings(tmp_path, ami),
        clients,
        Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock),
    )
    context = json.loads((tmp_path / "out/verdict.json").read_text())["context"]
    want = {
        "inspector2:ListCisScans": 2,
        "inspector2:GetCisScanResultDetails": 2,
        "inspector2:ListCisScanResultsAggregatedByTargetResource": 2,
    }
    assert context["aws_retries"] == want
    assert context["aws_retries_total"] == 6
    throttling = [line for line in lines if line.startswith("AWS throttling:")]
    assert throttling == [
        "AWS throttling: 6 retries (GetCisScanResultDetails 2, "
        "ListCisScanResultsAggregatedByTargetResource 2, ListCisScans 2)"
    ]


def test_no_retry_line_without_throttling(aws: LocalAws, tmp_path: Path) -> None:
    clients = make_clients()
    ami = make_ami(clients, "al2023", "x86_64")
    fake = FakeTime(aws)
    lines: list[str] = []
    run_validate(
        settings(tmp_path, ami),
        clients,
        Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock),
    )
    context = json.loads((tmp_path / "out/verdict.json").read_text())["context"]
    assert context["aws_retries"] == {} and context["aws_retries_total"] == 0
    assert not [line for line in lines if "AWS throttling" in line]


# --- the README's examples are true -------------------------------------------------------------


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def test_the_readme_exceptions_example_passes_policy_validate(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", _section("Exceptions workflow"), re.S)
    assert len(blocks) == 1, "one YAML example in the Exceptions workflow section"
    path = tmp_path / "readme-example.yaml"
    path.write_text(blocks[0])
    lines: list[str] = []
    # Judged on a fixed day before the shipped expiry (the example copies it), not the calendar.
    assert commands.validate_policies([path], VALID_DAY, lines.append) == 1, lines


def test_the_readme_run_id_example_has_the_real_format() -> None:
    shown = re.findall(r"^run (\S+): building", README, re.M)
    assert shown, "the README shows a build's first line"
    real = new_run_id(NOW)
    shape = re.sub(r"[0-9a-f]", "x", real)
    for run_id in shown:
        assert re.sub(r"[0-9a-f]", "x", run_id) == shape, (run_id, real)


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    match = re.match(r"(.+?\.)(?:\s+[A-Z]|$)", flat)
    return match.group(1) if match else flat


def test_the_readme_table_of_excepted_checks_is_the_shipped_policy() -> None:
    rows = re.findall(r"^\| (\d+(?:\.\d+)+) \| (.+?) \| (.+?) \|$", README, re.M)
    raw = yaml.safe_load((POLICIES / "amazon-linux-2023.yaml").read_text())
    want = [(e["check_id"], e["title"], _first_sentence(e["reason"])) for e in raw["exceptions"]]
    assert rows == want, "update the table in README.md 'What the first command shows'"


def test_the_readme_pass_line_counts_are_the_catalogue_and_the_policy() -> None:
    match = re.search(
        r"^PASS: (\d+) checks on 1 target\(s\): (\d+) passed, 0 blocking, (\d+) excepted, "
        r"(\d+) skipped$",
        README,
        re.M,
    )
    assert match, "the README shows the first command's final line"
    total, passed, excepted, skipped = (int(g) for g in match.groups())
    in_scope = catalog.load("AMAZON_LINUX_2023").in_scope(2)
    raw = yaml.safe_load((POLICIES / "amazon-linux-2023.yaml").read_text())
    assert total == len(in_scope)
    assert excepted == len(raw["exceptions"])  # the hardened image fails exactly these
    assert skipped == sum(not r.automated for r in in_scope)  # the manual recommendations
    assert passed == total - excepted - skipped


_RUNNABLE = re.compile(r"^(?:invoke|pip|pip3|pytest|python|ruff|mypy)\b")
_TASK_SYNOPSIS = re.compile(r"^invoke [a-z][a-z0-9.-]*(?: |$)")
_STEP = re.compile(r"^(?:\d+\.\s|   \S)")  # a numbered step or its continuation
_SPLIT = re.compile(r"&&|\|\||;")


def _typed() -> list[str]:
    """What a reader types: fenced shell lines and code spans in numbered steps."""
    found = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", README, re.S):
        for line in block.splitlines():
            found += [part.strip() for part in _SPLIT.split(line.split(" #")[0])]
    for line in README.splitlines():
        if _STEP.match(line):
            spans = re.findall(r"`([^`]+)`", line)
            found += [part.strip() for span in spans for part in _SPLIT.split(span)]
    return [c for c in found if c]


def _table_spans() -> list[str]:
    return [
        c
        for line in README.splitlines()
        if line.startswith("|")
        for c in re.findall(r"`([^`]+)`", line)
    ]


def test_every_readme_command_uses_the_venv_path() -> None:
    """Tables may name a task as ``invoke <task> …`` (a synopsis): the Commands section says
    once how to run them. Everything else a reader types carries its ``.venv/bin/`` path."""
    assert "Run each as `.venv/bin/invoke <task>`" in _section("Commands")
    bare = [c for c in _typed() if _RUNNABLE.match(c)]
    bare += [c for c in _table_spans() if _RUNNABLE.match(c) and not _TASK_SYNOPSIS.match(c)]
    assert bare == [], "prefix with .venv/bin/ (bootstrap installs into .venv)"
