"""promote refuses an image whose signed record lacks a section (CIS, node, vulnerabilities) or
failed one (exit 3, one line each, like every trust refusal); a record that passed all three is
promoted. Through the local AWS, with records the test verifier stands for and records signed
by a real validate run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import AwsClients
from pipeline.errors import ExitCode, GateBlocked
from pipeline.localaws import LocalAws
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests._sections import Cve, Knobs, readiness_answered
from tests.release.conftest import (
    POLICY_DIR,
    REGIONS,
    passing_sections,
    pipeline_ami,
    release,
    verified,
)
from tests.validate.conftest import FakeTime, settings

PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _with(section: str, value: Any) -> dict[str, Any]:
    stated = passing_sections()
    if value is None:
        del stated[section]
    else:
        stated[section] = {**stated[section], "verdict": value}
    return stated


def _promote(clients: AwsClients, ami: str, stated: dict[str, Any] | None = None) -> object:
    verifier = None
    if stated is not None:
        verifier = lambda c, a: verified(a, region=c.region, sections=stated)  # noqa: E731
    return run_promote(
        PromoteRequest(ami=ami),
        release(),
        clients,
        datetime.now(UTC) if verifier else shifted_now(),
        lambda _: None,
        policy_dir=POLICY_DIR,
        verify=verifier,
        known_regions=REGIONS,
    )


@pytest.mark.parametrize(
    ("section", "verdict", "line"),
    [
        ("node", "FAIL", "the node section is FAIL, not PASS"),
        ("vulnerabilities", "FAIL", "the vulnerabilities section is FAIL, not PASS"),
        ("cis", "ERROR", "the CIS section is ERROR, not PASS"),
        ("node", None, "the record has no node section: validate again"),
        ("vulnerabilities", None, "the record has no vulnerabilities section: validate again"),
    ],
)
def test_a_record_lacking_or_failing_a_section_is_not_promoted(
    aws: LocalAws, clients: AwsClients, section: str, verdict: str | None, line: str
) -> None:
    ami = pipeline_ami(clients, "sections")
    with pytest.raises(GateBlocked) as caught:
        _promote(clients, ami, _with(section, verdict))
    assert caught.value.exit_code == ExitCode.GATE_BLOCKED
    assert f"--ami {ami}: {line}" in caught.value.lines()
    assert clients.ssm.get_parameters(Names=[PARAM])["Parameters"] == []


def test_a_record_without_sections_is_not_promoted(aws: LocalAws, clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "old-record")
    with pytest.raises(GateBlocked) as caught:
        _promote(clients, ami, {})  # an empty annotation: no section at all
    assert any("has no node section" in x for x in caught.value.lines())
    _promote(clients, ami, passing_sections())
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == ami


@pytest.mark.parametrize(
    ("knobs", "refusal"),
    [
        (Knobs(), None),
        (
            Knobs(cves=(Cve("CVE-2026-9999", "CRITICAL", "YES"),)),
            "the vulnerabilities section is FAIL, not PASS",
        ),
        (
            Knobs(failing=frozenset({"node.sysctl.ip_forward"})),
            "the node section is FAIL, not PASS",
        ),
    ],
    ids=["all-pass", "critical-cve", "node-check"],
)
def test_the_signed_record_of_a_validate_run_decides(
    aws: LocalAws, clients: AwsClients, tmp_path: Path, knobs: Knobs, refusal: str | None
) -> None:
    ami = pipeline_ami(clients, "validated")
    fake = FakeTime(aws)
    rt = Runtime(now=shifted_now, echo=lambda _: None, sleep=fake.sleep, clock=fake.clock)
    with readiness_answered(knobs):
        verdict = run_validate(settings(tmp_path, ami), clients, rt)
    assert verdict.verdict.value == ("PASS" if refusal is None else "FAIL")
    if refusal is None:
        _promote(clients, ami)
        assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == ami
        return
    with pytest.raises(GateBlocked) as caught:
        _promote(clients, ami)
    assert f"--ami {ami}: {refusal}" in caught.value.lines(), caught.value.lines()
