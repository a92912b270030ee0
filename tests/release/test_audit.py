"""``invoke audit``: re-validate the image each channel serves, report its three-section verdict;
exit 3 when one no longer passes, 4 when one could not be validated, 0 otherwise; ``--dry-run``
validates nothing; nothing is ever revoked or re-pointed. Through the local AWS, with the node
probe's and package scan's answers stood in for (``tests._sections``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.aws import AwsClients
from pipeline.cli import audit as audit_cli
from pipeline.cli.invocation import Invocation
from pipeline.errors import ExitCode
from pipeline.localaws import LocalAws
from pipeline.orchestration.audit import audit_lines, run_audit
from pipeline.tags import REVOKED_TAG
from pipeline.validate import Runtime
from tests._dates import shifted_now
from tests._sections import Cve, Knobs, readiness_answered
from tests.release.conftest import ROOT, pipeline_ami, release
from tests.validate.conftest import FakeTime, ami_tags, settings

STABLE = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"
CANDIDATE = "/eks-cis-ami/al2023/x86_64/1.33/candidate/image-id"
GONE = "ami-0000000000000000f"


def _serve(clients: AwsClients, parameter: str, ami: str) -> None:
    clients.ssm.put_parameter(Name=parameter, Value=ami, Type="String", Overwrite=True)


def _audit(
    aws: LocalAws, clients: AwsClients, tmp_path: Path, knobs: Knobs | None = None, **kw: object
) -> tuple[object, list[str], Knobs]:
    fake = FakeTime(aws)
    lines: list[str] = []
    rt = Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock)
    with readiness_answered(knobs) as used:
        result = run_audit(release(), settings(tmp_path), clients, rt, **kw)  # type: ignore[arg-type]
    return result, lines, used


def test_every_channel_image_passes_exit_0(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    stable, candidate = pipeline_ami(clients, "stable"), pipeline_ami(clients, "cand", k8s="1.33")
    _serve(clients, STABLE, stable)
    _serve(clients, CANDIDATE, candidate)
    result, _, used = _audit(aws, clients, tmp_path)
    assert result.exit_code == ExitCode.OK  # type: ignore[attr-defined]
    assert used.calls == ["start", "collect"]  # one validate run for both images
    doc = result.as_dict()  # type: ignore[attr-defined]
    assert [(c["channel"], c["image"], c["verdict"]) for c in doc["channels"]] == [
        ("candidate", candidate, "PASS"),
        ("stable", stable, "PASS"),
    ]
    assert doc["channels"][0]["sections"] == {
        "cis": "PASS",
        "node": "PASS",
        "vulnerabilities": "PASS",
    }
    text = audit_lines(result)  # type: ignore[arg-type]
    assert any(
        stable in x and "PASS (CIS PASS, node PASS, vulnerabilities PASS)" in x for x in text
    )
    assert ami_tags(clients, stable)["cis:verdict"] == "PASS"  # the new record's tags


def test_an_image_that_no_longer_passes_is_exit_3_and_stays_served(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    ami = pipeline_ami(clients, "stable")
    _serve(clients, STABLE, ami)
    published = Knobs(cves=(Cve("CVE-2026-4242", "CRITICAL", "YES"),))
    result, _, _ = _audit(aws, clients, tmp_path, published)
    assert result.exit_code == ExitCode.GATE_BLOCKED  # type: ignore[attr-defined]
    (entry,) = result.images  # type: ignore[attr-defined]
    assert entry.verdict == "FAIL" and entry.sections["vulnerabilities"] == "FAIL"
    assert any(
        "CVE-2026-4242 CRITICAL" in r and "no approved exception" in r for r in entry.reasons
    )
    text = "\n".join(audit_lines(result))  # type: ignore[arg-type]
    assert "nothing was revoked" in text
    assert clients.ssm.get_parameter(Name=STABLE)["Parameter"]["Value"] == ami  # never revokes
    assert REVOKED_TAG not in ami_tags(clients, ami)


def test_an_image_that_cannot_be_validated_is_exit_4(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    ami = pipeline_ami(clients, "stable")
    _serve(clients, STABLE, ami)
    _serve(clients, CANDIDATE, GONE)
    failing = Knobs(failing=frozenset({"node.kubelet.installed"}))
    result, _, _ = _audit(aws, clients, tmp_path, failing)
    assert result.exit_code == ExitCode.UNTRUSTED_SCAN  # type: ignore[attr-defined]  # over 3
    by_channel = {a.entry.channel: a for a in result.images}  # type: ignore[attr-defined]
    assert by_channel["candidate"].verdict == "ERROR"
    assert "does not exist" in by_channel["candidate"].reasons[0]
    assert by_channel["stable"].verdict == "FAIL"
    assert by_channel["stable"].sections["node"] == "FAIL"
    assert any(r.startswith("node node.kubelet.installed") for r in by_channel["stable"].reasons)


def test_dry_run_lists_and_validates_nothing(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    ami = pipeline_ami(clients, "stable")
    _serve(clients, STABLE, ami)
    result, lines, used = _audit(aws, clients, tmp_path, dry_run=True)
    assert result.exit_code == ExitCode.OK and used.calls == []  # type: ignore[attr-defined]
    assert any(f"would re-validate {ami} (stable al2023/x86_64/1.32" in x for x in lines)
    assert "cis:verdict" not in ami_tags(clients, ami)
    none, _, _ = _audit(aws, clients, tmp_path, channel="candidate")
    assert none.exit_code == ExitCode.OK and none.images == ()  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="--channel nightly: not a configured channel"):
        _audit(aws, clients, tmp_path, channel="nightly")


def test_invoke_audit_json_and_exit_code(
    aws: LocalAws,
    clients: AwsClients,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ami = pipeline_ami(clients, "stable")
    _serve(clients, STABLE, ami)
    inv = Invocation(
        {
            "policy_dir": "policies/exceptions",
            "release": {"channels": {"stable": {}, "candidate": {"min_level": 1}}},
        },
        ROOT,
    )
    out = str(tmp_path / "out")
    assert audit_cli.audit(inv, None, True, out, False, True) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is True and data["channels"][0]["image"] == ami
    fake = FakeTime(aws)
    monkeypatch.setattr(
        audit_cli,
        "Runtime",
        lambda echo: Runtime(now=shifted_now, echo=echo, sleep=fake.sleep, clock=fake.clock),
    )
    with readiness_answered():  # Inspector's EC2 scanning is off: nothing can be proven
        assert audit_cli.audit(inv, "stable", False, out, False, True) == ExitCode.UNTRUSTED_SCAN
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == 4 and data["channels"][0]["verdict"] == "ERROR"
    assert "could not be validated: Amazon Inspector EC2 scanning is DISABLED" in str(data)
    with readiness_answered(Knobs(cves=(Cve("CVE-2026-4242", "HIGH", "YES"),))):
        assert audit_cli.audit(inv, "stable", False, out, True, True) == ExitCode.GATE_BLOCKED
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == 3 and data["channels"][0]["verdict"] == "FAIL"
    assert (tmp_path / "out" / "verdict.json").is_file()
