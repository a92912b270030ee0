"""packer/scripts/node/probe.sh, the node-readiness probe, run with bash on described nodes
(tests/hardening/nodeprobe.py): a healthy node passes every check; each broken condition in
tests/cases/hardening/node-probe.yaml fails its own check and no other; the output format is
exact; the probe changes nothing and never stops half-way."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hardening import fakeroot
from tests.hardening.nodeprobe import (
    CATALOGUE,
    FORBIDDEN,
    PROBE,
    REPO,
    Node,
    ProbeRun,
    catalogue_ids,
    run_probe,
)

CASES = yaml.safe_load((REPO / "tests/cases/hardening/node-probe.yaml").read_text())
IDS = catalogue_ids()
MAX_OBSERVED = 200
# Every call the probe may make: reads only.
READ_ONLY_CALLS = [
    re.compile(r"^systemctl is-(enabled|active) [\w@.-]+$"),
    re.compile(r"^modprobe -n -v [\w-]+$"),
    re.compile(r"^iptables (--version|-S)$"),
    re.compile(r"^chronyc tracking$"),
    re.compile(
        r"^curl -sS --noproxy \* --connect-timeout \d+ --max-time \d+ -X PUT "
        r"-H X-aws-ec2-metadata-token-ttl-seconds: \d+ http://169\.254\.169\.254/latest/api/token$"
    ),
    re.compile(
        r"^curl -sS --noproxy \* --connect-timeout \d+ --max-time \d+ -o /dev/null "
        r"-w %\{http_code\} (-H X-aws-ec2-metadata-token: \S+ )?"
        r"http://169\.254\.169\.254/latest/meta-data/instance-id$"
    ),
]


def _node(change: dict[str, Any]) -> Node:
    node = Node()
    for key, value in change.items():
        if key in ("files", "links", "executables", "units", "active", "modprobe"):
            mapping = getattr(node, key)
            for name, item in value.items():
                if item is None and key != "files":
                    mapping.pop(name, None)
                elif key == "modprobe":
                    mapping[name] = (item[0], item[1])
                else:
                    mapping[name] = item
        else:
            assert key in {f.name for f in dataclasses.fields(Node)}, key
            setattr(node, key, tuple(value) if isinstance(value, list) else value)
    return node


def assert_format(run: ProbeRun) -> None:
    """The spec's format, exactly: header, one line per check in catalogue order, trailer."""
    assert run.returncode == 0, run.stderr
    lines = run.lines()
    assert lines[0] == f"NODE-PROBE|1|{len(IDS)}"
    assert lines[-1] == f"NODE-PROBE-END|{len(IDS)}"
    body = lines[1:-1]
    assert len(body) == len(IDS)
    for line, check in zip(body, IDS, strict=True):
        prefix, got_id, status, observed = line.split("|", 3)
        assert (prefix, got_id) == ("NODE", check)
        assert status in ("PASS", "FAIL")
        assert observed, line
        assert len(observed) <= MAX_OBSERVED, line
        assert "|" not in observed
        assert all(0x20 <= ord(c) <= 0x7E for c in observed), line
    assert run.stdout.isascii() and run.stdout.endswith("\n")


def assert_read_only(run: ProbeRun) -> None:
    changing = [c for c in run.calls if not any(p.match(c) for p in READ_ONLY_CALLS)]
    assert not changing, f"calls that are not read-only: {changing}"


def test_a_healthy_node_passes_every_check(tmp_path: Path) -> None:
    run = run_probe(tmp_path, Node())
    assert_format(run)
    failed = {k: v for k, v in run.results().items() if v[0] != "PASS"}
    assert not failed, failed
    assert_read_only(run)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_broken_condition_fails_its_own_check(tmp_path: Path, case: dict[str, Any]) -> None:
    run = run_probe(tmp_path, _node(case["change"]))
    assert_format(run)
    results = run.results()
    failed = sorted(k for k, (status, _) in results.items() if status == "FAIL")
    want = [case["fails"]] if case["fails"] else []
    assert failed == want, f"GOT {json.dumps(results, indent=1)}"
    if case["fails"]:
        assert case["observed"] in results[case["fails"]][1]
    assert_read_only(run)


def test_the_cases_cover_every_check() -> None:
    assert {c["fails"] for c in CASES if c["fails"]} == set(IDS)
    assert len({c["name"] for c in CASES}) == len(CASES)


def test_catalogue_matches_the_probe_and_names_its_sources() -> None:
    data = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["platform"] == "AMAZON_LINUX_2023"
    assert set(data) == {"version", "platform", "checks"}
    probe_ids = re.findall(r"^  (node\.[a-z0-9_.]+)$", PROBE.read_text(), re.MULTILINE)
    assert probe_ids == IDS, "the probe prints the catalogue's checks, in its order"
    for check in data["checks"]:
        assert set(check) == {"id", "title", "rationale", "source"}, check["id"]
        assert re.fullmatch(r"node(\.[a-z0-9_]+){2}", check["id"])
        assert check["title"] and check["rationale"], check["id"]
        assert re.match(
            r"^https://(github\.com/awslabs/amazon-eks-ami/blob/main/"
            r"(templates/al2023|nodeadm)/|docs\.aws\.amazon\.com/)",
            check["source"],
        ), check["source"]
        assert check["title"].isascii() and check["rationale"].isascii()


def test_the_catalogue_is_shipped_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["pipeline"]
    shipped = {p for pattern in patterns for p in (REPO / "pipeline").glob(pattern)}
    assert CATALOGUE in shipped


def test_the_probe_changes_nothing(tmp_path: Path) -> None:
    node = Node()
    run = run_probe(tmp_path / "first", node)
    before = fakeroot.snapshot(run.root)
    again = run_probe(tmp_path / "second", node, root=run.root)
    assert fakeroot.snapshot(run.root) == before
    assert again.stdout == run.stdout
    assert not list((tmp_path / "second" / "home").iterdir()), "no file in HOME, TMPDIR or cwd"
    forbidden = [c for c in again.calls if c.split(" ", 1)[0] in FORBIDDEN]
    assert not forbidden, forbidden
    assert_read_only(again)


def test_state_changing_calls_are_caught(tmp_path: Path) -> None:
    """The read-only assertion itself: a probe that asked to start a unit would be caught."""
    run = ProbeRun(0, "", "", ["systemctl start kubelet.service", "modprobe overlay"], tmp_path)
    with pytest.raises(AssertionError, match="not read-only"):
        assert_read_only(run)
    run = ProbeRun(0, "", "", ["sysctl -w net.ipv4.ip_forward=1"], tmp_path)
    with pytest.raises(AssertionError, match="not read-only"):
        assert_read_only(run)


def test_a_node_with_nothing_fails_every_check_and_still_reports(tmp_path: Path) -> None:
    node = Node(
        files={},
        executables={},
        units={},
        active={},
        modprobe={},
        iptables_version=(127, "iptables: command not found"),
        iptables_rules=(127, ""),
        chronyc=(127, ""),
        imds_token=(7, "curl: (7) Failed to connect to 169.254.169.254 port 80"),
    )
    run = run_probe(tmp_path, node)
    assert_format(run)
    assert all(status == "FAIL" for status, _ in run.results().values())


def test_a_check_that_crashes_is_a_fail_and_the_others_still_run(tmp_path: Path) -> None:
    # the stub kills the shell that runs the check (the probe's subshell for it)
    crash = 'kill -9 "$PPID"; sleep 1; exit 0'
    node = dataclasses.replace(Node(), extra_stub={"chronyc": crash, "modprobe": crash})
    run = run_probe(tmp_path, node)
    assert_format(run)
    results = run.results()
    assert results["node.time.sync"][0] == "FAIL"
    assert results["node.kernel.overlay"][0] == "FAIL"
    assert results["node.imds.v2"][0] == "PASS", "the checks after a crash still run"


def test_hostile_output_is_cleaned_and_capped(tmp_path: Path) -> None:
    hostile = (
        "Reference ID    : " + "\u00e9|\x1b[31m::error::x|" * 60 + "\nLeap status     : Normal\n"
    )
    run = run_probe(tmp_path, dataclasses.replace(Node(), chronyc=(0, hostile)))
    assert_format(run)
    status, observed = run.results()["node.time.sync"]
    assert status == "PASS"
    assert len(observed) == MAX_OBSERVED and observed.endswith("...")
    assert "\x1b" not in observed and "|" not in observed


def test_the_probe_is_one_bash_script_with_no_other_environment() -> None:
    text = PROBE.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert set(re.findall(r"\$\{?(NODE_[A-Z_]+)", text)) == {"NODE_PROBE_ROOT"}
    # no process substitution: SSM may run the script in POSIX mode (bash as sh)
    assert "<(" not in text and ">(" not in text


@pytest.mark.parametrize("shell", [("sh",), ("bash", "--posix")], ids=["sh", "bash-posix"])
def test_the_probe_runs_as_ssm_runs_it(tmp_path: Path, shell: tuple[str, ...]) -> None:
    """AWS-RunShellScript runs the commands with sh: bash in POSIX mode on AL2023 (and here,
    where sh may be dash, the script re-runs itself with bash)."""
    healthy = run_probe(tmp_path / "bash", Node())
    run = run_probe(tmp_path / "other", Node(), shell=shell)
    assert_format(run)
    assert run.stdout == healthy.stdout
