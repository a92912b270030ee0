"""No false PASS from ``invoke validate``: every way the results can lie, level integrity,
resume rules and fresh verdicts, each against the local AWS made to misbehave."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline import commands, gate, policy, results
from pipeline.aws import AwsClients, inspector
from pipeline.errors import AwsError, ConfigError, ExitCode
from pipeline.gate import Outcome
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests.validate.conftest import ROOT, ami_tags, make_ami, settings

# Each: the scenario's `results:` section (the local AWS lies), or a whole scenario (with its
# `results:`), and a fragment of the error.
# On the hardened AL2023 node 1.1.1.1 PASSES and 3.2.1 FAILS (excepted).
LIES: list[tuple[str, dict[str, Any], str]] = [
    ("failed rows dropped", {"drop_status": ["FAILED"]}, "statusCounts say"),
    ("status counts off", {"status_counts_delta": {"failed": 1}}, "statusCounts say"),
    ("scan totals off", {"scan_counts_delta": {"total_checks": 3}}, "totalChecks="),
    ("failed total off", {"scan_counts_delta": {"failed_checks": -2}}, "failedChecks="),
    ("conflicting duplicate", {"conflicting_duplicate": {"1.1.1.1": "FAILED"}}, "more than once"),
    ("scan of another level", {"scan_level": "LEVEL_1"}, "ran at LEVEL_1 but LEVEL_2"),
    ("renamed title", {"title_overrides": {"1.1.1.1": "Ensure nothing at all"}}, "title is not"),
    ("another benchmark", {"benchmark": "AMAZON_LINUX_2"}, "look like CIS Amazon Linux 2 "),
    ("automated checks skipped", {"skip_automated": ["1.1.1.3"]}, "1.1.1.3 was SKIPPED"),
    ("every check skipped", {"all_skipped": True}, "were SKIPPED"),
    # Inspector's views disagree, every count kept (the gate's cross-check, pipeline.crosscheck)
    (
        "per-check view lies",
        {"aggregated_status": {"3.2.1": "PASSED"}},
        "check 3.2.1 on AMAZON_LINUX_2023: ListCisScanResultsAggregatedByChecks counts 1 passed",
    ),
    ("CIS report lies", {"report_status": {"3.2.1": "PASSED"}}, "the CIS report says PASSED"),
    (  # a whole scenario: 1.1.1.1 FAILS (unexcepted), 3.2.1 PASSES, the rows swap them
        "statuses swapped in the rows",
        {
            "checks": {"1.1.1.1": "FAILED", "3.2.1": "PASSED"},
            "results": {"swap_status": {"1.1.1.1": "3.2.1"}},
        },
        "the result rows say PASSED, the CIS report says FAILED",
    ),
]


@pytest.mark.parametrize(("lie", "needle"), [(x[1], x[2]) for x in LIES], ids=[x[0] for x in LIES])
def test_results_that_lie_are_never_a_pass(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    lie: dict[str, Any],
    needle: str,
) -> None:
    aws.load_scenario(lie if "results" in lie else {"results": lie})
    ami = make_ami(clients)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())
    assert verdict.verdict is Outcome.ERROR, verdict.errors
    assert verdict.exit_code == ExitCode.UNTRUSTED_SCAN
    assert any(needle in e for e in verdict.errors), verdict.errors
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["verdict"] == "ERROR"
    assert ami_tags(clients, ami)["cis:verdict"] == "ERROR"


def test_a_swap_that_keeps_every_count_is_no_longer_a_pass(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """The rows report an unexcepted FAILED (1.1.1.1) as PASSED and an excepted PASSED (3.2.1)
    as FAILED: every count Inspector gives holds, so the counts alone pass it. Inspector's
    per-check view and CIS report each name both checks on the instance: ERROR, and `invoke
    gate` on the evidence says the same."""
    aws.load_scenario(
        {
            "checks": {"1.1.1.1": "FAILED", "3.2.1": "PASSED"},
            "results": {"swap_status": {"1.1.1.1": "3.2.1"}},
        }
    )
    ami = make_ami(clients)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())
    assert verdict.verdict is Outcome.ERROR and verdict.exit_code == ExitCode.UNTRUSTED_SCAN
    (instance,) = [t.target for t in verdict.targets]
    disagree = sorted(e.split(":")[0] for e in verdict.errors if "views disagree" in e)
    assert disagree == [
        "check 1.1.1.1 on AMAZON_LINUX_2023",
        f"check 1.1.1.1 on {instance}",
        "check 3.2.1 on AMAZON_LINUX_2023",
        f"check 3.2.1 on {instance}",
    ]
    assert ami_tags(clients, ami)["cis:verdict"] == "ERROR"
    # Nothing else was wrong: judged by the counts alone, the same rows pass.
    evidence = tmp_path / "out/evidence"
    facts = commands.load_evidence(evidence).facts
    assert facts is not None and facts.problems == ()
    rows = results.load(evidence / "results.json").rows
    chosen = gate.select_policies(
        rows, policy.load_all(policy.discover(ROOT / "policies/exceptions"))
    )
    blind = replace(facts, check_counts=None, report_rows=None)
    fooled = gate.evaluate(rows, chosen, verdict.today, level=2, facts=blind)
    assert fooled.verdict is Outcome.PASS, fooled.errors
    again = commands.run_gate(
        str(evidence / "results.json"),
        [],
        verdict.today,
        str(tmp_path / "regated"),
        ROOT / "policies/exceptions",
        lambda _: None,
    )
    assert again.verdict is Outcome.ERROR
    assert [e for e in again.errors if "views disagree" in e] == [
        e for e in verdict.errors if "views disagree" in e
    ]


def test_a_symlink_planted_at_the_cis_report_is_refused_not_followed(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report is written like every report: atomically, never through a link (exit 2)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    real = inspector.download_report

    def planting(scan_arn: str, status: str, url: str | None) -> bytes:
        (tmp_path / "out/evidence/cis-report.csv").symlink_to(victim)
        return real(scan_arn, status, url)

    monkeypatch.setattr(inspector, "download_report", planting)
    ami = make_ami(clients)
    with pytest.raises(ConfigError, match="cis-report.csv: is a symbolic link") as caught:
        run_validate(settings(tmp_path, ami), clients, runtime())
    assert caught.value.exit_code == ExitCode.INVALID_INPUT
    assert victim.read_text() == "precious"
    assert (tmp_path / "out/evidence/cis-report.csv").is_symlink()
    assert ami_tags(clients, ami)["cis:verdict"] == "PENDING"  # never an unfounded verdict
    assert json.loads((tmp_path / "out/verdict.json").read_text())["verdict"] == "ERROR"


def test_identical_duplicates_are_merged_and_still_pass(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    aws.load_scenario({"results": {"duplicate": ["1.1.1.1", "3.2.1"]}})
    verdict = run_validate(settings(tmp_path, make_ami(clients)), clients, runtime())
    assert verdict.verdict is Outcome.PASS, verdict.errors
    assert any("identical duplicate" in w for w in verdict.warnings)


def test_level_in_tags_and_verdict_comes_from_the_scan(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    aws.load_scenario({"results": {"scan_level": "LEVEL_1"}})
    ami = make_ami(clients)
    verdict = run_validate(settings(tmp_path, ami, level=2), clients, runtime())
    assert verdict.level == 1
    assert ami_tags(clients, ami)["cis:level"] == "LEVEL_1"
    assert json.loads((tmp_path / "out/verdict.json").read_text())["level"] == "LEVEL_1"


def test_a_revalidation_supersedes_an_older_pass_before_it_scans(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    clients.ec2.create_tags(
        Resources=[ami],
        Tags=[
            {"Key": "cis:verdict", "Value": "PASS"},
            {"Key": "cis:scan-arn", "Value": "arn:aws:inspector2:us-east-1:1:old"},
            {"Key": "cis:validated-at", "Value": "2026-01-01T00:00:00Z"},
        ],
    )
    aws.load_scenario(
        {"faults": [{"operation": "CreateCisScanConfiguration", "error": "AccessDeniedException"}]}
    )
    with pytest.raises(AwsError):
        run_validate(settings(tmp_path, ami), clients, runtime())
    tags = ami_tags(clients, ami)
    assert tags["cis:verdict"] == "PENDING"
    assert "cis:scan-arn" not in tags and "cis:validated-at" not in tags
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["verdict"] == "ERROR"


def test_failing_to_write_the_final_verdict_tags_is_exit_1(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.validate import record

    real = record.tag_image

    def flaky(clients: AwsClients, ami: str, tags: dict[str, str]) -> None:
        if tags.get("cis:verdict") != "PENDING":
            raise AwsError("ec2:CreateTags: UnauthorizedOperation")
        real(clients, ami, tags)

    monkeypatch.setattr(record, "tag_image", flaky)
    ami = make_ami(clients)
    with pytest.raises(AwsError) as err:
        run_validate(settings(tmp_path, ami), clients, runtime())
    assert err.value.exit_code == ExitCode.UNEXPECTED
    assert ami_tags(clients, ami)["cis:verdict"] == "PENDING"
    written = json.loads((tmp_path / "out/verdict.json").read_text())
    assert written["context"]["exit_code"] == 1


def test_out_holds_exactly_one_runs_files(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (out / "evidence").mkdir(parents=True)
    (out / "evidence/results.json").write_text('[{"stale": true}]')
    (out / "evidence/old-report.csv").write_text("stale")
    (out / "junit.xml").write_text("<stale/>")
    run_validate(settings(tmp_path, make_ami(clients)), clients, runtime())
    assert not (out / "evidence/old-report.csv").exists()
    assert "stale" not in (out / "evidence/results.json").read_text()
    assert "stale" not in (out / "junit.xml").read_text()


def test_resuming_a_run_that_never_existed_is_refused(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    with pytest.raises(ConfigError, match="no earlier run has this ID"):
        run_validate(
            settings(tmp_path, ami, run_id="20261127T000000Z-abcdef", resume=True),
            clients,
            runtime(),
        )


@pytest.mark.parametrize("run_id", ["bad id", "x\n", "../../etc", "a" * 65, "-leading-dash"])
def test_run_ids_are_validated(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path, run_id: str
) -> None:
    with pytest.raises(ConfigError, match="run ID"):
        run_validate(settings(tmp_path, make_ami(clients), run_id=run_id), clients, runtime())


def test_resume_never_reuses_a_scan_of_another_level(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    ami = make_ami(clients)
    run_id = "20261127T000000Z-0a0b0c"
    first = run_validate(
        settings(tmp_path / "a", ami, run_id=run_id, level=1, keep=True), clients, runtime()
    )
    assert first.level == 1
    with pytest.raises(ConfigError, match="is a LEVEL_1 scan, not LEVEL_2"):
        run_validate(
            settings(tmp_path / "b", ami, run_id=run_id, level=2, resume=True), clients, runtime()
        )
    other = make_ami(clients, level=1)
    with pytest.raises(ConfigError, match="resume with the same --ami list"):
        run_validate(
            settings(tmp_path / "c", other, run_id=run_id, level=1, resume=True),
            clients,
            runtime(),
        )
    # Resuming at the same level with the same AMI is fine (and cleans up).
    last = run_validate(
        settings(tmp_path / "d", ami, run_id=run_id, level=1, resume=True), clients, runtime()
    )
    assert last.verdict is Outcome.PASS, last.errors


@pytest.mark.parametrize(("report_after_s", "asked"), [(0.0, 1), (20.0, 5)])
def test_the_cis_report_is_asked_for_again_while_it_is_in_progress(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    report_after_s: float,
    asked: int,
) -> None:
    """Inspector makes the report asynchronously: IN_PROGRESS is not a failure (issue 21)."""
    aws.load_scenario({"scan": {"report_after_s": report_after_s}})
    ami = make_ami(clients)
    before = clients.calls.counts.get("inspector2:GetCisScanReport", 0)
    verdict = run_validate(settings(tmp_path, ami), clients, runtime())
    assert verdict.verdict is Outcome.PASS
    assert (tmp_path / "out/evidence/cis-report.csv").is_file()
    assert clients.calls.counts["inspector2:GetCisScanReport"] - before == asked


def test_a_report_still_in_progress_at_the_timeout_is_no_pass(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    aws.load_scenario({"scan": {"report_after_s": 100_000}})
    ami = make_ami(clients)
    verdict = run_validate(replace(settings(tmp_path, ami), scan_timeout_s=60), clients, runtime())
    assert verdict.verdict is Outcome.ERROR
    assert any("CIS report not downloaded" in e and "IN_PROGRESS" in e for e in verdict.errors)
