"""Exceptions policy validation: shipped policies are valid; each invalid case reports its paths."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline import catalog, policy
from pipeline.errors import ExitCode, PolicyError
from tests._dates import FIRST_EXPIRY

ROOT = Path(__file__).resolve().parents[1]
INVALID = sorted((ROOT / "tests/cases/policy_invalid").glob("*.yaml"))
SEED_AL2 = {
    "1.1.22", "1.6.1.6", "2.1.1.2", "3.2.1", "3.5.3.2.3", "3.5.3.2.4", "3.5.3.3.3",
    "4.2.1.5", "5.3.2", "5.3.4", "6.1.10", "6.1.11", "6.1.12",
}  # fmt: skip
# Not in the seed (its hardening halted the node on a full audit log): the AMI's default does
# not (Packer variable audit_full_action), an approved exception on both platforms.
AUDIT_FULL_AL2 = "4.1.2.3"
# Neither in the seed: SELinux stays permissive as the EKS image ships it (Packer variable
# selinux_mode), an approved Level 2 exception on both platforms (same ID on both).
SELINUX_ENFORCING = "1.6.1.5"


def test_shipped_policies_are_valid_and_one_per_platform() -> None:
    loaded = policy.load_all(policy.discover(ROOT / "policies/exceptions"))
    assert set(loaded) == set(catalog.Platform)
    shipped = {e.check_id for e in loaded[catalog.Platform.AMAZON_LINUX_2].exceptions}
    assert shipped == SEED_AL2 | {AUDIT_FULL_AL2, SELINUX_ENFORCING}


def test_al2023_policy_maps_every_seed_exception_by_the_mapping_file() -> None:
    import json

    mapping = json.loads(
        (ROOT / "pipeline/data/cis/mapping-al2-v2.0.0-to-al2023-v1.0.0.json").read_text()
    )
    mapped = {
        t["id"] for m in mapping["mappings"] if m["al2_id"] in SEED_AL2 for t in m["al2023"] or []
    }
    mapped.add("5.2.2.3")  # AL2 4.1.2.3 in AL2023 v1.0.0 (same title): the audit-full choice
    mapped.add(SELINUX_ENFORCING)  # the selinux_mode choice
    al2023 = policy.load(ROOT / "policies/exceptions/amazon-linux-2023.yaml")
    assert {e.check_id for e in al2023.exceptions} == mapped


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.stem)
def test_invalid_policy_reports_every_expected_path(case: Path) -> None:
    expected = [
        line.split(" :: ", 1)
        for line in case.with_suffix(".errors.txt").read_text().splitlines()
        if line.strip()
    ]
    with pytest.raises(PolicyError) as info:
        policy.load(case)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    got = info.value.lines()
    prefix = f"{case}: "
    assert all(line.startswith(prefix) for line in got), got
    paths = [line[len(prefix) :].split(": ", 1)[0] for line in got]
    assert paths == [p for p, _ in expected], f"GOT {got}"
    for (_, needle), line in zip(expected, got, strict=True):
        assert needle in line, f"WANT {needle!r} in {line!r}"


def test_unreadable_policy_is_an_error_never_no_exceptions(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read exceptions policy"):
        policy.load(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(PolicyError):
        policy.load(tmp_path / "bin.yaml")


def test_two_policies_for_one_platform_are_rejected(tmp_path: Path) -> None:
    src = ROOT / "policies/exceptions/amazon-linux-2.yaml"
    (tmp_path / "a.yaml").write_text(src.read_text())
    (tmp_path / "b.yaml").write_text(src.read_text())
    with pytest.raises(PolicyError, match="already covered by"):
        policy.load_all(policy.discover(tmp_path))


@pytest.mark.parametrize(
    ("today", "expired", "soon"),
    [
        (FIRST_EXPIRY - timedelta(days=31), 0, 0),
        (FIRST_EXPIRY - timedelta(days=30), 0, 15),
        (FIRST_EXPIRY, 0, 15),
        (FIRST_EXPIRY + timedelta(days=1), 15, 0),
    ],
)
def test_expiry_is_inclusive_and_warns_30_days_ahead(today: date, expired: int, soon: int) -> None:
    pol = policy.load(ROOT / "policies/exceptions/amazon-linux-2.yaml")
    errors, warnings = policy.expiry_problems(pol, today)
    assert (len(errors), len(warnings)) == (expired, soon)
