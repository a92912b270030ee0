"""The coverage manifests agree with the catalogues, the scripts and the exceptions policies.

Every automated recommendation is accounted for exactly once; every named function exists and
every function is a catalogue recommendation; the excepted set is exactly the policy's; the
AL2 hardened outcome is the 13 failures of the seed workshop scan. Also the coverage report.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import coverage
from pipeline.catalog import Platform
from pipeline.coverage import CoverageState
from pipeline.errors import ConfigError
from tests.hardening.conftest import (
    REPO,
    catalogue,
    defined_functions,
    function_id,
    section_scripts,
)

PLATFORMS = {"al2023": Platform.AMAZON_LINUX_2023, "al2": Platform.AMAZON_LINUX_2}
POLICIES = {
    "al2023": REPO / "policies/exceptions/amazon-linux-2023.yaml",
    "al2": REPO / "policies/exceptions/amazon-linux-2.yaml",
}
# The FAILED checks of a hardened EKS node in the AWS EKS Security Immersion Day workshop
# (CIS Amazon Linux 2 Benchmark v2.0.0, Level 2 scan): pipeline/data/cis/SOURCES.md.
SEED_FAILURES = [
    "1.1.22", "1.6.1.6", "2.1.1.2", "3.2.1", "3.5.3.2.3", "3.5.3.2.4", "3.5.3.3.3",
    "4.2.1.5", "5.3.2", "5.3.4", "6.1.10", "6.1.11", "6.1.12",
]  # fmt: skip


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys (PyYAML keeps the last one silently)."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicates = {str(k) for k in keys if keys.count(k) > 1}
    if duplicates:
        raise AssertionError(f"duplicate keys {sorted(duplicates)} at line {node.start_mark.line}")
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _raw_manifest(platform: str) -> dict[str, Any]:
    path = REPO / "pipeline/data/coverage" / f"{platform}.yaml"
    data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    assert isinstance(data, dict)
    return data


def _function_bodies(platform: str) -> dict[str, str]:
    bodies: dict[str, str] = {}
    for path in section_scripts(platform):
        for match in re.finditer(
            r"^(cis_[\d_]+)\s*\(\)\s*\{\n(.*?)^\}", path.read_text(), re.M | re.S
        ):
            bodies[match[1]] = match[2]
    return bodies


@pytest.fixture(params=["al2023", "al2"])
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_automated_recommendation_has_exactly_one_entry(platform: str) -> None:
    raw = _raw_manifest(platform)
    cat = catalogue(platform)
    entries = {str(k): v for k, v in raw["recommendations"].items()}
    automated = {rid for rid, rec in cat.items() if rec["assessment"] == "automated"}
    assert set(entries) == automated, {
        "missing": sorted(automated - set(entries)),
        "not automated or unknown": sorted(set(entries) - automated),
    }
    assert raw["platform"] == PLATFORMS[platform].value
    manifest = coverage.load_manifest(PLATFORMS[platform])
    for level in (1, 2):
        assert manifest.gaps(level) == [], f"gaps at level {level}"


def test_named_functions_exist_and_functions_are_recommendations(platform: str) -> None:
    manifest = coverage.load_manifest(PLATFORMS[platform])
    defined = defined_functions(platform)
    assert len(defined) == len(set(defined)), "a function is defined twice"
    cat = catalogue(platform)
    unknown = [name for name in defined if function_id(name) not in cat]
    assert not unknown, f"functions that are no catalogue recommendation: {unknown}"
    for entry in manifest.entries.values():
        if entry.state is CoverageState.REMEDIATED:
            assert entry.function, entry.check_id
        if entry.function:
            assert entry.function in defined, f"{entry.check_id}: {entry.function} is not defined"


def test_states_match_what_the_functions_do(platform: str) -> None:
    """remediated/base functions act; not-applicable and policy-only exceptions just skip."""
    manifest = coverage.load_manifest(PLATFORMS[platform])
    bodies = _function_bodies(platform)
    for check_id, entry in manifest.entries.items():
        body = bodies.get(coverage.function_name(check_id), "")
        acts = "cis_done" in body
        if entry.function:
            assert acts, f"{check_id}: {entry.function} only skips"
        elif entry.state is CoverageState.NOT_APPLICABLE:
            assert not acts and ("not applicable" in body or not body), check_id
        elif entry.state is CoverageState.EXCEPTED:
            assert not acts and ("cis_skip_excepted" in body or not body), check_id


def test_function_levels_and_titles_match_the_catalogue(platform: str) -> None:
    cat = catalogue(platform)
    for name, body in _function_bodies(platform).items():
        match = re.search(r'cis_rec (\d) "((?:[^"\\]|\\.)*)" \|\| return 0', body)
        assert match, f"{name} does not start with cis_rec"
        rec = cat[function_id(name)]
        assert int(match[1]) == rec["level"], name
        assert match[2].replace('\\"', '"') == rec["title"], name


def test_excepted_is_exactly_the_exceptions_policy(platform: str) -> None:
    policy = yaml.safe_load(POLICIES[platform].read_text())
    policy_ids = {str(e["check_id"]) for e in policy["exceptions"]}
    assert policy["benchmark"]["platform"] == PLATFORMS[platform].value
    manifest = coverage.load_manifest(PLATFORMS[platform])
    excepted = {rid for rid, e in manifest.entries.items() if e.state is CoverageState.EXCEPTED}
    assert excepted == policy_ids


# The one deliberate deviation the workshop's hardening did not make: auditd does not halt the
# node when the audit log is full (Packer variable audit_full_action, default suspend).
AUDIT_FULL = {"al2023": "5.2.2.3", "al2": "4.1.2.3"}


def test_al2_hardened_outcome_is_the_13_seed_failures_plus_audit_full() -> None:
    manifest = coverage.load_manifest(Platform.AMAZON_LINUX_2)
    assert manifest.expected_failures(2) == sorted(
        [*SEED_FAILURES, AUDIT_FULL["al2"], "1.6.1.5"],  # + SELinux permissive (selinux_mode)
        key=lambda i: [int(p) for p in i.split(".")],
    )
    counts = manifest.counts(2)
    assert counts[CoverageState.GAP] == 0
    assert counts[CoverageState.EXCEPTED] == 15


@pytest.mark.parametrize("platform", ["al2023", "al2"])
def test_audit_full_default_is_a_level_2_exception(platform: str) -> None:
    check_id = AUDIT_FULL[platform]
    rec = catalogue(platform)[check_id]
    assert rec["title"] == "Ensure system is disabled when audit logs are full"
    assert rec["level"] == 2
    manifest = coverage.load_manifest(PLATFORMS[platform])
    assert check_id in manifest.expected_failures(2)
    assert check_id not in manifest.expected_failures(1)
    policy = yaml.safe_load(POLICIES[platform].read_text())
    (entry,) = [e for e in policy["exceptions"] if str(e["check_id"]) == check_id]
    assert entry["levels"] == ["LEVEL_2"]
    assert entry["category"] == "operational-impact"
    assert entry["approved_by"] == "platform-security"
    assert isinstance(entry["expires"], date)  # approved for a limited time


def test_level_1_failures_are_the_level_1_exceptions() -> None:
    manifest = coverage.load_manifest(Platform.AMAZON_LINUX_2023)
    assert "3.4.2.7" not in manifest.expected_failures(1)  # a level 2 recommendation
    assert "3.4.2.7" in manifest.expected_failures(2)


# --- The coverage report ---------------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2])
def test_report_counts_add_up(platform: str, level: int) -> None:
    report = coverage.coverage_report(platform, level)
    assert sum(report["counts"].values()) == report["automated"]
    assert report["counts"]["gap"] == 0 and report["gaps"] == []
    assert len(report["excepted"]) == report["counts"]["excepted"]
    assert len(report["not_applicable"]) == report["counts"]["not_applicable"]
    assert json.loads(coverage.render_coverage_json(report)) == report
    text = coverage.render_coverage_text(report)
    assert f"Level {level}" in text and "No gaps" in text
    for check in report["excepted"]:
        assert f"{check['id']:<10} {check['title']}" in text


def test_report_lists_gaps_with_titles() -> None:
    raw = _raw_manifest("al2023")
    del raw["recommendations"]["1.1.9"]
    manifest = coverage.parse_manifest(raw, source="test")
    report = coverage.coverage_report("al2023", 1, manifest)
    assert report["counts"]["gap"] == 1
    assert report["gaps"] == [
        {"id": "1.1.9", "title": "Ensure usb-storage is disabled", "level": 1, "reason": None}
    ]
    text = coverage.render_coverage_text(report)
    assert "Gaps:\n  1.1.9      Ensure usb-storage is disabled (L1)" in text
    assert "No gaps" not in text


@pytest.mark.parametrize(("platform_arg", "level"), [("al2023", 3), ("rhel9", 1)])
def test_report_rejects_bad_input(platform_arg: str, level: int) -> None:
    with pytest.raises(ConfigError):
        coverage.coverage_report(platform_arg, level)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"state": "remediated", "function": "cis_1_1_1_2"}, "is not 'cis_1_1_1_1'"),
        ({"state": "base"}, "say why"),
        ({"state": "remediated"}, "names its function"),
    ],
)
def test_parse_rejects_inconsistent_entries(body: dict[str, str], problem: str) -> None:
    raw = {"platform": "AMAZON_LINUX_2023", "benchmark_version": "1.0.0",
           "recommendations": {"1.1.1.1": body}}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        coverage.parse_manifest(raw, source="test")
    assert any(problem in line for line in err.value.lines())


def test_manifest_files_are_the_shipped_package_data() -> None:
    for platform in PLATFORMS:
        path = Path(coverage.__file__).parent / coverage.manifest_path(PLATFORMS[platform])
        assert path.is_file()
