"""``invoke validate`` against a local AWS whose results API lies in several ways at once, each
lie covering for another (counts lowered to match dropped rows, and so on): never a PASS."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import AwsClients
from pipeline.errors import ExitCode
from pipeline.gate import Outcome
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests.validate.conftest import ROOT, make_ami, settings

# Each: the scenario's `results:` section, and a fragment of the error that must be reported.
COMBINED: list[tuple[str, dict[str, Any], str]] = [
    (
        "failed rows dropped, every count lowered to match (only completeness catches it)",
        {
            "drop_status": ["FAILED"],
            "status_counts_delta": {"failed": -1000},
            "scan_counts_delta": {"failed_checks": -1000, "total_checks": -10},
        },
        "have no result",
    ),
    (
        "manual rows dropped, counts lowered to match",
        {
            "drop_status": ["SKIPPED"],
            "status_counts_delta": {"skipped": -1000},
            "scan_counts_delta": {"total_checks": -21},
        },
        "have no result",
    ),
    (
        "first page only, counts lowered to nothing",
        {"max_pages": 1, "page_size": 50, "status_counts_delta": {"passed": -1000}},
        "have no result",
    ),
    (
        "a duplicate and a conflicting duplicate of one check",
        {"duplicate": ["3.2.1"], "conflicting_duplicate": {"3.2.1": "PASSED"}},
        "more than once",
    ),
    (
        "a homoglyph title (Cyrillic a)",
        {
            "title_overrides": {
                "1.1.1.1": "Ensure mounting of squ\u0430shfs filesystems is disabled"
            }
        },
        "title is not",
    ),
    (
        "another benchmark at another level",
        {"benchmark": "AMAZON_LINUX_2", "scan_level": "LEVEL_1"},
        "ran at LEVEL_1 but LEVEL_2",
    ),
]


@pytest.mark.parametrize(("lie", "needle"), [c[1:] for c in COMBINED], ids=[c[0] for c in COMBINED])
def test_lies_that_cover_for_each_other_are_never_a_pass(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    lie: dict[str, Any],
    needle: str,
) -> None:
    aws.load_scenario({"results": lie})
    verdict = run_validate(settings(tmp_path, make_ami(clients)), clients, runtime())
    assert verdict.verdict is Outcome.ERROR, verdict.errors
    assert verdict.exit_code == ExitCode.UNTRUSTED_SCAN
    assert any(needle in e for e in verdict.errors), verdict.errors
    assert json.loads((tmp_path / "out/verdict.json").read_text())["verdict"] == "ERROR"


SKIP = """
skips:
  - check_id: 1.1.1.1
    title: Ensure mounting of squashfs filesystems is disabled
    reason: Inspector does not evaluate this check on arm64 instances.
    approved_by: platform-security
    expires: 2099-01-31
    architectures: [arm64]
"""


def test_a_skip_approved_for_arm64_does_not_cover_an_x86_64_image(
    aws: LocalAws, clients: AwsClients, runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """The architecture comes from DescribeImages, not from anything the results say."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies/exceptions", policies)
    al2023 = policies / "amazon-linux-2023.yaml"
    al2023.write_text(al2023.read_text() + SKIP)
    aws.load_scenario({"results": {"skip_automated": ["1.1.1.1"]}})
    ami = make_ami(clients, arch="x86_64")
    verdict = run_validate(settings(tmp_path, ami, policy_dir=policies), clients, runtime())
    assert verdict.verdict is Outcome.ERROR, verdict.errors
    assert any("covers only arm64, this target is x86_64" in e for e in verdict.errors)
    # run.json says the same architecture, so `invoke gate` on this evidence agrees
    run = json.loads((tmp_path / "out/evidence/run.json").read_text())
    assert set(run["architectures"].values()) == {"x86_64"}
