"""Issue 23, a release engineer's first week: one settings path for validate and the chain,
Packer variables, re-validation that cannot strand a released image, expiry warnings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml

import tasks
from pipeline import commands, heartbeat, reap, report
from pipeline.aws import AwsClients, make_clients
from pipeline.aws import release as aws_release
from pipeline.build import make_specs, variables
from pipeline.catalog import Platform
from pipeline.cli import account, stages
from pipeline.cli.invocation import Invocation
from pipeline.errors import ExitCode, PipelineError
from pipeline.localaws import LocalAws
from pipeline.orchestration import chain, nightly
from pipeline.orchestration.settings import ChainSettings
from pipeline.packer import AmiBuild, Arch
from pipeline.tags import HEARTBEAT_TAG, MANAGED_TAG, MANAGED_VALUE, RUN_TAG
from pipeline.validate import Runtime, ValidateSettings, validate_settings
from tests._dates import EXPIRED_DAY, FIRST_EXPIRY, VALID_DAY, WARNING_DAY, shifted_now
from tests.validate.conftest import FakeTime, make_ami

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
INVOKE = str(Path(sys.executable).parent / "invoke")
PROJECT = yaml.safe_load((ROOT / "invoke.yaml").read_text())["pipeline"]
CUSTOM_VALIDATE = {
    "instance_profile": "no-such-profile",
    "subnet_id": "subnet-00000000000000000",
    "security_group_id": "sg-00000000000000000",
    "public_ip": True,
    "instance_types": {"x86_64": "c6i.large", "arm64": "c7g.large"},
    "ssm_timeout_s": 61,
    "scan_timeout_s": 62,
    "ttl_minutes": 63,
}


# --- 1. build-and-validate validates with the settings `invoke validate` uses --------------------


def test_build_and_validate_runs_validate_with_invoke_yaml_validate_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = {**PROJECT, "out": str(tmp_path / "out"), "validate": CUSTOM_VALIDATE}
    seen: list[ChainSettings] = []
    monkeypatch.setattr(stages, "run_chain", lambda cfg, rt: seen.append(cfg) or _Verdict())
    inv = Invocation(config, ROOT)
    stages.build_and_validate(inv, None, None, None, None, None, False, None, False, False, [])
    (cfg,) = seen
    alone = validate_settings(config, ROOT, ami="ami-1")
    assert cfg.validate == replace(alone, amis=())
    for name in ("instance_profile", "subnet_id", "security_group_id", "public_ip"):
        assert getattr(cfg.validate, name) == CUSTOM_VALIDATE[name], name
    assert (cfg.validate.ssm_timeout_s, cfg.validate.scan_timeout_s) == (61, 62)
    assert cfg.validate.ttl_minutes == 63
    assert dict(cfg.validate.instance_types) == CUSTOM_VALIDATE["instance_types"]


class _Verdict:
    exit_code = ExitCode.OK


def test_the_chain_refuses_a_missing_instance_profile_as_validate_does(
    aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = make_ami(make_clients())
    monkeypatch.setattr(nightly, "build_or_reuse", lambda *_: ((ami,), []))
    settings = ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version=None,
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=ROOT / "policies/exceptions",
        local=True,
        validate=ValidateSettings((), instance_profile="no-such-profile"),
    )
    lines: list[str] = []
    with pytest.raises(PipelineError) as err:
        chain.run_chain(settings, _runtime(aws, lines))
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert "--instance-profile no-such-profile" in str(err.value)
    assert aws.count("RunInstances") == 1  # make_ami's only: no test instance was launched


def _runtime(aws: LocalAws, lines: list[str]) -> Runtime:
    fake = FakeTime(aws)
    return Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock)


# --- 2. Packer variables pass through: --var NAME=VALUE and pipeline.build.vars ------------------


def test_build_passes_invoke_yaml_vars_overlaid_by_var_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[dict[str, str]] = []
    monkeypatch.setattr(stages, "run_build", lambda *a, **k: seen.append(k["extra_vars"]))
    config = {
        **PROJECT,
        "out": str(tmp_path),
        "build": {"vars": {"instance_type": "m6i.large", "kms_key_id": "alias/yaml", "x": 1}},
    }
    flags = ["instance_type=m6i.xlarge", "iam_instance_profile=packer-builder"]
    stages.build(Invocation(config, ROOT), None, None, None, None, False, None, flags)
    assert seen == [
        {
            "instance_type": "m6i.xlarge",
            "kms_key_id": "alias/yaml",
            "x": "1",
            "iam_instance_profile": "packer-builder",
        }
    ]


def test_build_and_validate_carries_the_vars_to_the_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[ChainSettings] = []
    monkeypatch.setattr(stages, "run_chain", lambda cfg, rt: seen.append(cfg) or _Verdict())
    config = {**PROJECT, "out": str(tmp_path), "build": {"vars": {"kms_key_id": "alias/k"}}}
    inv = Invocation(config, ROOT)
    args = (None, None, None, None, None, False, None, False, False)
    stages.build_and_validate(inv, *args, ["instance_type=m6i.xlarge"])
    assert seen[0].build_vars == (("instance_type", "m6i.xlarge"), ("kms_key_id", "alias/k"))


@pytest.mark.parametrize(
    ("given", "configured", "fragment"),
    [
        (["subnet"], None, "--var 'subnet': expected NAME=VALUE"),
        (["=x"], None, "expected NAME=VALUE"),
        ([], ["subnet_id"], "$.pipeline.build.vars: expected a map"),
        ([], {"subnet_id": None}, "$.pipeline.build.vars.subnet_id"),
    ],
)
def test_malformed_vars_are_refused(given: list[str], configured: object, fragment: str) -> None:
    with pytest.raises(PipelineError) as err:
        variables.packer_vars(given, configured)
    assert err.value.exit_code == ExitCode.INVALID_INPUT and fragment in str(err.value)


@pytest.mark.parametrize("local", [False, True])
def test_vars_must_be_declared_by_the_template_and_not_the_pipeline_s(local: bool) -> None:
    variables.check_vars({"kms_key_id": "alias/k", "root_volume_size": "30"}, local)
    with pytest.raises(PipelineError, match="--var subnet_idd: .* declares no such") as err:
        variables.check_vars({"subnet_idd": "subnet-1"}, local)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    with pytest.raises(PipelineError, match="--var source_ami: set by the pipeline"):
        variables.check_vars({"source_ami": "ami-1"}, local)


def test_production_template_declares_the_documented_build_variables() -> None:
    known = variables.template_variables(local=False)
    assert {"subnet_id", "kms_key_id", "iam_instance_profile", "instance_type"} <= known


def test_the_chain_refuses_an_unknown_var_before_building(tmp_path: Path) -> None:
    settings = ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version=None,
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=ROOT / "policies/exceptions",
        build_vars=(("subnet", "subnet-1"),),
    )
    with pytest.raises(PipelineError, match="--var subnet: ") as err:
        chain.preflight(settings, date(2026, 12, 1))
    assert err.value.exit_code == ExitCode.INVALID_INPUT


def test_invoke_build_names_an_unknown_var_with_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [INVOKE, "build", "--var", "kms_key_id=alias/k", "--var", "no_such_var=1"]
        + ["--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: --var no_such_var: ")


# --- 4. expiry: judged on dates derived from the policies; 30 days' warning, CI stays green ------


def test_policy_validate_warns_30_days_ahead_and_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    inv = Invocation(PROJECT, ROOT)
    assert stages.policy_validate(inv, [], str(WARNING_DAY)) == ExitCode.OK
    out = capsys.readouterr().out
    days = (FIRST_EXPIRY - WARNING_DAY).days
    assert f"expires in {days} days" in out and "WARNING  " in out
    assert f"::warning title={commands.EXPIRING}::" in out  # an annotation on the CI run
    assert stages.policy_validate(inv, [], str(VALID_DAY)) == ExitCode.OK
    assert "WARNING" not in capsys.readouterr().out
    with pytest.raises(PipelineError) as err:
        stages.policy_validate(inv, [], str(EXPIRED_DAY))
    assert err.value.exit_code == ExitCode.INVALID_INPUT


# --- 6. every task that prints a result has --json ---------------------------------------------

# No result to print: a server, the developer tasks, and iam-policy (its output is JSON already).
NO_RESULT = {"local-aws", "lint", "test", "ci", "iam-policy"}


def test_every_task_that_prints_a_result_has_json() -> None:
    for name in sorted(set(tasks.ns.task_names) - NO_RESULT):
        flags = {a.name for a in tasks.ns[name].get_arguments()}
        assert "json" in flags, name


def test_gate_json_is_the_verdict_on_stdout_and_the_log_on_stderr(tmp_path: Path) -> None:
    results = ROOT / "examples/results/al2-hardened-node.json"
    proc = subprocess.run(
        [INVOKE, "gate", "--results", str(results), "--level", "2", "--json"]
        + ["--out", str(tmp_path), "--today", str(VALID_DAY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["verdict"] == "PASS" and data == json.loads((tmp_path / "verdict.json").read_text())
    assert "PASS: 240 checks" in proc.stderr


def test_policy_validate_and_reap_json(
    aws: LocalAws, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inv = Invocation(PROJECT, ROOT)
    assert stages.policy_validate(inv, [], str(WARNING_DAY), True) == ExitCode.OK
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert {p["benchmark"] for p in data["policies"]} >= {"CIS Amazon Linux 2023 Benchmark v1.0.0"}
    assert all(p["warnings"] for p in data["policies"]) and "WARNING" in captured.err
    assert account.reap(inv, "10", True, True, True) == ExitCode.OK
    (report,) = json.loads(capsys.readouterr().out).values()  # by region: only this one
    assert report["dry_run"] is True and report["failures"] == []


def test_build_json_lists_the_amis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = AmiBuild(
        ami_id="ami-0123456789abcdef0",
        region="us-east-1",
        platform=Platform.AMAZON_LINUX_2023,
        arch=Arch.X86_64,
        k8s_version="1.33",
        level=2,
        source_ami="ami-0fedcba9876543210",
        run_id="20261127T120000Z-abcdef",
        image_name="eks-cis-al2023-x86_64-k8s1.33-l2",
        git_commit="unknown",
        local=True,
        packer_run_uuid="u",
        build_time=0,
    )
    monkeypatch.setattr(stages, "run_build", lambda *a, **k: [built])
    config = {**PROJECT, "out": str(tmp_path)}
    stages.build(Invocation(config, ROOT), None, None, None, None, False, None, [], json=True)
    (ami,) = json.loads(capsys.readouterr().out)["amis"]
    assert ami["ami_id"] == "ami-0123456789abcdef0" and ami["platform"] == "AMAZON_LINUX_2023"


# --- 8. the README's command table names every flag of every task -------------------------------


def _readme_flags() -> dict[str, set[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Commands\n") :]
    section = section[: section.index("\n## ", 1)]
    found: dict[str, set[str]] = {}
    for span in re.findall(r"`(invoke [^`]+)`", section):
        task, _, rest = span.removeprefix("invoke ").partition(" ")
        found.setdefault(task, set()).update(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", rest))
    return found


def test_the_readme_command_table_lists_every_flag_of_every_task() -> None:
    documented = _readme_flags()
    for name in tasks.ns.task_names:
        task = tasks.ns[name]
        for arg in task.get_arguments():
            long = arg.name.replace("_", "-")
            spelled = f"-{long}" if len(long) == 1 else f"--{long}"
            if arg.kind is bool and arg.default is True:
                spelled = f"--no-{long}"
            assert spelled in documented.get(name, set()), f"README: invoke {name} {spelled}"


# --- 7. blocking lines first; a stock image's FAIL lines capped with a count ---------------------


def _stock_like(tmp_path: Path) -> Path:
    """The hardened example turned inside out: every PASSED check FAILED (a stock image's 100+
    blocking failures) and every excepted failure PASSED (its exceptions now unused)."""
    pages = json.loads((ROOT / "examples/results/al2-hardened-node.json").read_text())
    for page in pages:
        for row in page["scanResultDetails"]:
            row["status"] = {"PASSED": "FAILED", "FAILED": "PASSED"}.get(
                row["status"], row["status"]
            )
    path = tmp_path / "stock.json"
    path.write_text(json.dumps(pages))
    return path


def test_console_and_summary_put_what_blocks_before_the_notes(tmp_path: Path) -> None:
    lines: list[str] = []
    verdict = commands.run_gate(
        str(_stock_like(tmp_path)),
        [],
        VALID_DAY,
        str(tmp_path / "out"),
        ROOT / "policies/exceptions",
        lines.append,
        level=2,
    )
    assert verdict.exit_code == ExitCode.GATE_BLOCKED and len(verdict.failed_unexcepted) > 100
    fails = [line for line in lines if line.startswith("FAIL ")]
    assert len(fails) == report.MAX_CONSOLE_FAILURES + 1
    more = len(verdict.failed_unexcepted) - report.MAX_CONSOLE_FAILURES
    assert fails[-1].startswith(f"FAIL     … {more} more blocking failure(s)")
    unused = [i for i, line in enumerate(lines) if line.startswith("UNUSED ")]
    assert unused and max(i for i, line in enumerate(lines) if line.startswith("FAIL ")) < unused[0]
    summary = (tmp_path / "out/summary.md").read_text()
    assert summary.index("### Blocking failures") < summary.index("### Unused exceptions")


# --- 7. long waits show progress; reap covers every configured region ----------------------------


class _Images:
    """ec2.describe_images answering the given states in turn (a cross-region copy)."""

    def __init__(self, *states: str) -> None:
        self.states = list(states)

    def describe_images(self, ImageIds: list[str]) -> dict[str, Any]:  # noqa: N803 - boto3's
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"Images": [{"ImageId": i, "State": state} for i in ImageIds]}


def _copy_clients(*states: str) -> AwsClients:
    return cast(AwsClients, SimpleNamespace(ec2=_Images(*states), region="eu-west-1"))


def test_waiting_for_a_cross_region_copy_prints_progress() -> None:
    clock = [0.0]
    lines: list[str] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    clients = _copy_clients("pending", "pending", "pending", "available")
    aws_release.wait_available(
        clients, ["ami-1"], sleep=sleep, clock=lambda: clock[0], echo=lines.append
    )
    progress = [line for line in lines if "eu-west-1: waiting for ami-1 pending" in line]
    assert len(progress) >= 2 and "s elapsed)" in progress[-1], lines
    with pytest.raises(PipelineError, match="ami-1 is failed, not available"):
        aws_release.wait_available(
            _copy_clients("pending", "failed"),
            ["ami-1"],
            sleep=sleep,
            clock=lambda: clock[0],
            echo=lines.append,
        )
    with pytest.raises(PipelineError, match="ami-1 is pending after 60s"):
        aws_release.wait_available(
            _copy_clients("pending"),
            ["ami-1"],
            60,
            sleep=sleep,
            clock=lambda: clock[0],
            echo=lines.append,
        )


def test_reap_covers_every_configured_region(aws: LocalAws, tmp_path: Path) -> None:
    home = make_clients(region="us-east-1")
    away = make_clients(region="eu-west-1")
    vpc = away.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
    stale = heartbeat.stamp(NOW - timedelta(hours=3))
    tags = {MANAGED_TAG: MANAGED_VALUE, RUN_TAG: "20261127T090000Z-abcdef", HEARTBEAT_TAG: stale}
    group = away.ec2.create_security_group(
        GroupName="leaked",
        Description="a killed run's",
        VpcId=vpc["Vpcs"][0]["VpcId"],
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ],
    )["GroupId"]
    lines: list[str] = []
    reports = reap.reap_regions(home, ("eu-west-1",), NOW, lines.append)
    assert list(reports) == ["us-east-1", "eu-west-1"]
    assert reports["eu-west-1"].security_groups == [group]
    assert reports["us-east-1"].total == 0
    assert any(line.startswith("eu-west-1: reap: deleted 1 security-group") for line in lines), (
        lines
    )
    inv = Invocation({**PROJECT, "release": {**PROJECT["release"], "regions": ["eu-west-1"]}}, ROOT)
    assert account.reap(inv, "10", True, False, False) == ExitCode.OK  # both regions, again


# --- 8. the docs say what the CLI does ------------------------------------------------------------


def test_the_documented_packer_log_is_where_the_build_writes_it(tmp_path: Path) -> None:
    (spec,) = make_specs(
        [Platform.AMAZON_LINUX_2023],
        [Arch.X86_64],
        None,
        2,
        local=True,
        run_id="20261127T120000Z-abcdef",
        region="us-east-1",
        out_dir=Path("out") / "build",  # the default of build and of build-and-validate
        endpoint="http://127.0.0.1:1",
    )
    relative = spec.log_path.relative_to(Path.cwd())
    assert str(relative) == "out/build/al2023-x86_64.packer.log"
    readme = (ROOT / "README.md").read_text()
    assert f"eks-cis-ami-pipeline/{relative}" in readme
    assert "`out/build/<platform>-<arch>.packer.log`" in (ROOT / "packer/README.md").read_text()


def test_every_repository_variable_a_workflow_reads_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    used = set()
    for path in (ROOT / ".github/workflows").glob("*.yml"):
        used |= set(re.findall(r"vars\.([A-Z_]+)", path.read_text()))
    assert "AWS_REGION" in used
    assert [v for v in sorted(used) if f"`{v}`" not in readme] == []


def test_no_task_has_a_one_letter_flag_that_could_mean_two_things() -> None:
    for name in tasks.ns.task_names:
        for arg in tasks.ns[name].get_arguments():
            short = [n for n in arg.names if len(n) == 1]
            assert short in ([], [arg.name]), f"{name}: -{short[0]} for --{arg.name}"


def test_verify_after_the_first_command_says_the_local_aws_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = "ami-840280469950de48e"
    out = tmp_path / "out"
    out.mkdir()
    context = {"local": True, "amis": [{"ami": ami}]}
    (out / "verdict.json").write_text(json.dumps({"verdict": "PASS", "context": context}))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    inv = Invocation({**PROJECT, "out": str(out)}, ROOT)
    flags = (None, False, False, None, None, None)
    with pytest.raises(PipelineError) as err:
        account.verify(inv, ami, *flags)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert "stopped with it" in str(err.value) and "invoke local-aws" in str(err.value)
    assert not account.made_by_a_stopped_local_aws(inv, "ami-0000000000000000a")
