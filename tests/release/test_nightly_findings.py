"""The nightly re-validation of an unchanged image lists the findings new since its previous
record: vulnerability IDs in the new findings evidence but not in the previous record's signed
``evidence/findings.json`` (a CVE published since the build). Pure parts, then through the local
AWS with the package scan's answers stood in for (``tests._sections``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline import drift
from pipeline.aws import AwsClients
from pipeline.localaws import LocalAws
from pipeline.orchestration import nightly
from pipeline.validate import Runtime, run_validate
from tests._sections import Cve, Knobs, findings_document, readiness_answered
from tests.release.conftest import pipeline_ami, release, verified
from tests.release.test_nightly_provenance import _settings, _unchanged
from tests.validate.conftest import FakeTime, settings

A = "i-0aaaaaaaaaaaaaaaa"
RECORD = "s3://evidence/123456789012/us-east-1/ami-0a/run-1/attestation.dsse.json"


def test_the_previous_records_vulnerability_ids_are_read_from_its_findings_evidence() -> None:
    document = findings_document([A], [Cve("CVE-2026-1000"), Cve("CVE-2026-1001", "LOW")])
    assert drift.vulnerability_ids(document, A) == {"CVE-2026-1000", "CVE-2026-1001"}
    assert drift.vulnerability_ids(document, "i-0other") is None
    assert drift.vulnerability_ids({A: [{"findings": [{"oops": 1}], "x": 2}, "junk"]}, A) == set()
    good = replace(
        verified("ami-0a"),
        record_uri=RECORD,
        inputs={
            "evidence/findings.json": json.dumps(document).encode(),
            "verdict.json": json.dumps(
                {"context": {"amis": [{"ami": "ami-0a", "instance": A}]}}
            ).encode(),
        },
    )
    assert nightly.previous_findings(good) == drift.PreviousFindings(
        RECORD, frozenset({"CVE-2026-1000", "CVE-2026-1001"})
    )
    old = replace(good, inputs={"verdict.json": good.inputs["verdict.json"]})
    assert nightly.previous_findings(old).ids is None
    assert "no findings evidence" in str(nightly.previous_findings(old).why)
    assert nightly.previous_findings(None).ids is None


def _markdown(item: dict[str, Any]) -> str:
    return "\n".join(drift.render_markdown([{"ami": "ami-0a", "channel": "stable", **item}]))


def test_the_drift_section_lists_new_findings_or_says_why_not() -> None:
    new = drift.new_findings(
        drift.PreviousFindings(RECORD, frozenset({"CVE-2026-1000"})),
        {"CVE-2026-1000": "MEDIUM", "CVE-2026-2000": "HIGH"},
    )
    assert new["findings"] == [{"vulnerability_id": "CVE-2026-2000", "severity": "HIGH"}]
    assert "findings new since " in _markdown({"new_findings": new})
    assert "CVE-2026-2000 (HIGH)" in _markdown({"new_findings": new})
    none = drift.new_findings(drift.PreviousFindings(RECORD, frozenset({"CVE-2026-1000"})), {})
    assert none["findings"] == [] and ": none" in _markdown({"new_findings": none})
    unknown = drift.new_findings(drift.PreviousFindings(None, None, "no record"), {})
    assert "not known (no record)" in _markdown({"new_findings": unknown})
    hostile = drift.new_findings(
        drift.PreviousFindings(RECORD, frozenset()), {"CVE-1<script>`|#": "HIGH"}
    )
    text = _markdown({"new_findings": hostile})
    assert not any(c in text.replace("### ", "") for c in "<>`|#")
    assert "findings new" not in _markdown({"new_findings": None})  # a built image: none


def test_a_revalidated_unchanged_image_reports_findings_published_since(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    ami = pipeline_ami(clients, "unchanged", tags=_unchanged(clients))
    fake = FakeTime(aws)
    lines: list[str] = []
    rt = Runtime(echo=lines.append, sleep=fake.sleep, clock=fake.clock)
    with readiness_answered(Knobs(cves=(Cve("CVE-2026-1000"),))):
        first = run_validate(settings(tmp_path / "first", ami), clients, rt)
    assert first.verdict.value == "PASS", lines[-20:]

    # The nightly decision: the image is unchanged, its record is proven and read once.
    (decision,) = nightly.decide(_settings(tmp_path), clients)
    assert decision.reuse == ami
    assert decision.previous is not None and decision.previous.ids == {"CVE-2026-1000"}

    published = (Cve("CVE-2026-1000"), Cve("CVE-2026-2000", "HIGH", "YES"))
    with readiness_answered(Knobs(cves=published)):
        again = run_validate(settings(tmp_path / "again", ami), clients, rt)
    assert again.verdict.value == "FAIL"  # the new CVE is fixable HIGH: it blocks
    lines.clear()
    verdict = nightly.record_and_compare(
        again, clients, release(), tmp_path / "again" / "out", lines.append, decisions=[decision]
    )
    (report,) = verdict.context["drift"]  # type: ignore[misc]
    assert report["new_findings"]["since"] == decision.previous.record
    assert report["new_findings"]["findings"] == [
        {"vulnerability_id": "CVE-2026-2000", "severity": "HIGH"}
    ]
    assert any("findings new since" in x and "CVE-2026-2000 (HIGH)" in x for x in lines), lines
    summary = (tmp_path / "again" / "out" / "summary.md").read_text().splitlines()
    (line,) = [x for x in summary if x.startswith("- findings new since")]
    assert "2026\\-2000" in line and "HIGH" in line and "1000" not in line  # escaped Markdown
