"""``invoke catalogue.refresh``: the diff as data, and refreshes from real local-AWS scans."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline import catalog, catalog_refresh
from pipeline.aws import AwsClients, inspector, make_clients
from pipeline.catalog import Platform, Recommendation
from pipeline.errors import ConfigError, ExitCode, PolicyError, ScanError
from pipeline.localaws import LocalAws
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests.validate.conftest import FakeTime, make_ami, settings

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests/cases/catalogue_refresh").glob("*.json"))
TODAY = date(2026, 11, 27)
AL2023 = "amazon_linux_2023-v1.0.0.json"


def _aggregations(case: dict[str, Any]) -> list[inspector.CheckAggregation]:
    platform = case.get("platform", "AMAZON_LINUX_2023")
    return [
        inspector.CheckAggregation(
            check_id=row["checkId"],
            title=row["title"],
            level=row["level"],
            platform=row.get("platform", platform),
            passed=1,
            failed=0,
            skipped=0,
        )
        for row in case["scan"]
    ]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_diff_cases(path: Path) -> None:
    case = json.loads(path.read_text())
    shipped = [Recommendation(r["id"], r["title"], r["level"], True) for r in case["shipped"]]
    platform = Platform(case.get("platform", "AMAZON_LINUX_2023"))
    checks = catalog_refresh.scanned_checks(_aggregations(case), platform, "scan")
    result = catalog_refresh.diff(shipped, checks, case["level"])
    got = {
        "added": [c.id for c in result.added],
        "removed": [r.id for r in result.removed],
        "retitled": [r.id for r, _ in result.retitled],
        "relevelled": [r.id for r, _ in result.relevelled],
    }
    assert got == case["expect"], f"GOT {json.dumps(got)}\nWANT {json.dumps(case['expect'])}"
    assert result.empty == (not any(case["expect"].values()))
    lines = catalog_refresh.render_diff(result, "CIS X v1", "arn:scan")
    for kind, ids in case["expect"].items():
        for check_id in ids:
            assert any(line.startswith(kind) and check_id in line for line in lines), lines


def _agg(check_id: str, title: str = "A title", level: str | None = "LEVEL_1") -> Any:
    return inspector.CheckAggregation(check_id, title, level, "AMAZON_LINUX_2023", 0, 0, 1)


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([_agg("not-a-number")], "'not-a-number' is not a CIS recommendation number"),
        ([_agg("1.1", level="LEVEL_3")], "level 'LEVEL_3'"),
        ([_agg("1.1", level=None)], "level None"),
        ([_agg("1.1", title="")], "title ''"),
        ([_agg("1.1"), _agg("1.1", title="Other")], "reported twice"),
        ([_agg("1.1"), _agg("1.1", level="LEVEL_2")], "reported twice"),
    ],
)
def test_unusable_checks_are_an_untrusted_scan(rows: list[Any], fragment: str) -> None:
    with pytest.raises(ScanError) as err:
        catalog_refresh.scanned_checks(rows, Platform.AMAZON_LINUX_2023, "arn:scan")
    assert err.value.exit_code == ExitCode.UNTRUSTED_SCAN
    assert fragment in str(err.value)


def test_identical_twins_merge_and_suffixes_give_the_assessment() -> None:
    rows = [_agg("1.2", "Ensure x (Manual)"), _agg("1.2", "Ensure x"), _agg("1.10"), _agg("1.9")]
    checks = catalog_refresh.scanned_checks(rows, Platform.AMAZON_LINUX_2023, "scan")
    assert [c.id for c in checks] == ["1.2", "1.9", "1.10"]  # benchmark order
    assert checks[0].title == "Ensure x" and checks[0].assessment == "manual"


def test_refreshed_document_keeps_sources_and_known_assessments() -> None:
    shipped = {
        "benchmark": "CIS B",
        "version": "1.0.0",
        "platform": "AMAZON_LINUX_2023",
        "sources": [{"repo": "a/b", "used_for": "IDs"}],
        "recommendations": [
            {"id": "1.1", "title": "Ensure a", "level": 1, "assessment": "manual"},
            {"id": "1.2", "title": "Ensure b", "level": 1, "assessment": "automated"},
            {"id": "1.3", "title": "Gone", "level": 1, "assessment": "automated"},
        ],
    }
    rows = [
        _agg("1.1", "ensure A (Automated)"),  # same title as shipped (normalised): kept
        _agg("1.2", "Ensure b, renamed", "LEVEL_2"),
        _agg("1.4", "Ensure new manual (Manual)"),
        _agg("1.5", "Ensure new, no suffix"),
    ]
    checks = catalog_refresh.scanned_checks(rows, Platform.AMAZON_LINUX_2023, "scan")
    doc = catalog_refresh.refreshed_document(shipped, checks, "arn:scan/1", TODAY)
    assert doc["recommendations"] == [
        {"id": "1.1", "title": "Ensure a", "level": 1, "assessment": "manual"},
        {"id": "1.2", "title": "Ensure b, renamed", "level": 2, "assessment": "automated"},
        {"id": "1.4", "title": "Ensure new manual", "level": 1, "assessment": "manual"},
        {"id": "1.5", "title": "Ensure new, no suffix", "level": 1, "assessment": "automated"},
    ]
    assert doc["sources"][0] == {"repo": "a/b", "used_for": "IDs"}
    assert doc["sources"][1]["inspector_scan"] == "arn:scan/1"
    assert doc["sources"][1]["date"] == "2026-11-27"
    again = catalog_refresh.refreshed_document(doc, checks, "arn:scan/1", TODAY)
    assert again == doc  # a refresh from the same scan replaces its own source entry


# --- on the local AWS: a real scan, read through ListCisScanResultsAggregatedByChecks ---------


def _scan(aws: LocalAws, tmp_path: Path, scenario: dict[str, Any] | None = None) -> str:
    """Validate a hardened AL2023 AMI on the local AWS; return the scan's ARN."""
    if scenario:
        aws.load_scenario(scenario)
    clients = make_clients()
    ami = make_ami(clients, "al2023", "x86_64")
    fake = FakeTime(aws)
    rt = Runtime(now=shifted_now, echo=lambda _: None, sleep=fake.sleep, clock=fake.clock)
    verdict = run_validate(settings(tmp_path / "run", ami), clients, rt)
    return str(verdict.context["scan_arn"])


@dataclass
class Catalogues:
    """A copy of the shipped catalogues; ``install()`` makes ``catalog.load`` read it."""

    dir: Path
    install: Callable[[], None]


@pytest.fixture
def cats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalogues]:
    """--write goes to a copy, never the working tree. Install it only after the scan ran: the
    local AWS in this process reads the catalogue too."""
    root = tmp_path / "pkg"
    shutil.copytree(ROOT / "pipeline/data/cis", root / "data/cis")

    def install() -> None:
        monkeypatch.setattr(catalog, "resources", SimpleNamespace(files=lambda _: root))
        catalog.load.cache_clear()

    yield Catalogues(root / "data/cis", install)
    catalog.load.cache_clear()


def _refresh(
    clients: AwsClients, arn: str, data: Path, lines: list[str], *, write: bool, **kw: Any
) -> catalog_refresh.CatalogueDiff:
    return catalog_refresh.run_refresh(
        clients,
        arn,
        platform=kw.get("platform"),
        write=write,
        policy_dir=kw.get("policy_dir", ROOT / "policies/exceptions"),
        today=TODAY,
        echo=lines.append,
        data_dir=data,
    )


def test_a_scan_of_the_hardened_image_matches_the_shipped_catalogue(
    aws: LocalAws, tmp_path: Path, cats: Catalogues
) -> None:
    arn = _scan(aws, tmp_path)
    cats.install()
    before = (cats.dir / AL2023).read_bytes()
    lines: list[str] = []
    clients = make_clients()
    result = _refresh(clients, arn, cats.dir, lines, write=True)
    assert result.empty, lines
    assert any("no difference" in line for line in lines)
    assert any("already matches; not rewritten" in line for line in lines)
    assert (cats.dir / AL2023).read_bytes() == before
    assert clients.calls.counts["inspector2:ListCisScanResultsAggregatedByChecks"] >= 1


def test_a_retitled_check_is_shown_and_written_with_the_scan_as_source(
    aws: LocalAws, tmp_path: Path, cats: Catalogues
) -> None:
    new_title = "Ensure mounting of squashfs file systems is disabled and blocked"
    arn = _scan(aws, tmp_path, {"results": {"title_overrides": {"1.1.1.1": new_title}}})
    cats.install()
    lines: list[str] = []
    result = _refresh(make_clients(), arn, cats.dir, lines, write=False)
    assert [r.id for r, _ in result.retitled] == ["1.1.1.1"]
    assert not (result.added or result.removed or result.relevelled)
    assert any(line.startswith("retitled   1.1.1.1") and new_title in line for line in lines)
    assert "--write" in lines[-1]

    lines.clear()
    _refresh(make_clients(), arn, cats.dir, lines, write=True)
    written = json.loads((cats.dir / AL2023).read_text())
    rec = next(r for r in written["recommendations"] if r["id"] == "1.1.1.1")
    assert rec == {"id": "1.1.1.1", "title": new_title, "level": 2, "assessment": "automated"}
    assert written["sources"][-1]["inspector_scan"] == arn
    shipped = json.loads((ROOT / "pipeline/data/cis" / AL2023).read_text())
    assert written["sources"][:-1] == shipped["sources"]  # the shipped sources are kept
    assert catalog.load(Platform.AMAZON_LINUX_2023).recommendations["1.1.1.1"].title == new_title
    assert any(line.startswith("OK") for line in lines), lines
    again: list[str] = []
    assert _refresh(make_clients(), arn, cats.dir, again, write=True).empty  # idempotent


def test_a_retitled_excepted_check_fails_the_policies_with_exit_2(
    aws: LocalAws, tmp_path: Path, cats: Catalogues
) -> None:
    arn = _scan(aws, tmp_path, {"results": {"title_overrides": {"3.2.1": "Ensure routing is off"}}})
    cats.install()
    with pytest.raises(PolicyError) as err:
        _refresh(make_clients(), arn, cats.dir, [], write=True)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    lines = err.value.lines()
    assert "was written" in lines[0]
    assert any("amazon-linux-2023.yaml" in line and "3.2.1" in line for line in lines), lines


def test_a_level_1_scan_cannot_rewrite_the_catalogue(
    aws: LocalAws, tmp_path: Path, cats: Catalogues
) -> None:
    arn = _scan(aws, tmp_path, {"results": {"scan_level": "LEVEL_1"}})
    cats.install()
    before = (cats.dir / AL2023).read_bytes()
    with pytest.raises(ConfigError, match="LEVEL_1 scan"):
        _refresh(make_clients(), arn, cats.dir, [], write=True)
    assert (cats.dir / AL2023).read_bytes() == before


@pytest.mark.parametrize(
    ("arn", "fragment"),
    [
        ("not-an-arn", "not an Inspector CIS scan ARN"),
        (
            "arn:aws:inspector2:eu-west-1:123456789012:owner/123456789012/cis-scan/abc",
            "the scan is in eu-west-1",
        ),
        (
            "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/cis-scan/nope",
            "no such CIS scan",
        ),
    ],
)
def test_bad_scan_arns_are_exit_2(aws: LocalAws, arn: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as err:
        _refresh(make_clients(), arn, catalog_refresh.DATA_DIR, [], write=True)
    assert err.value.exit_code == ExitCode.INVALID_INPUT


def test_the_cli_reads_a_scan_and_reports_no_difference(aws: LocalAws, tmp_path: Path) -> None:
    arn = _scan(aws, tmp_path)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "catalogue.refresh", "--scan-arn", arn],
        cwd=ROOT,
        env={**os.environ, "AWS_ENDPOINT_URL": aws.endpoint},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no difference" in proc.stdout


_ARN = "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/cis-scan/abc"


@pytest.mark.parametrize(
    ("status", "target", "write", "error", "warning"),
    [
        ("IN_PROGRESS", ("COMPLETED", None), False, "refresh only from a COMPLETED scan", None),
        ("FAILED", ("COMPLETED", None), False, "refresh only from a COMPLETED scan", None),
        ("COMPLETED", ("TIMED_OUT", None), True, "targets that were not scanned", None),
        ("COMPLETED", ("COMPLETED", "SSM_UNMANAGED"), True, "i-1 COMPLETED/SSM_UNMANAGED", None),
        ("COMPLETED", ("TIMED_OUT", None), False, None, "may only be unreported"),
        ("COMPLETED", ("COMPLETED", None), True, None, None),
    ],
)
def test_only_a_completed_scan_of_every_target_can_define_the_catalogue(
    status: str,
    target: tuple[str, str | None],
    write: bool,
    error: str | None,
    warning: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scan = inspector.CisScan(_ARN, "cfg", status, 1, 0, {"securityLevel": "LEVEL_2"})
    row = inspector.ScanTarget("i-1", target[0], target[1], "AMAZON_LINUX_2023", 1, 0, 0, {})
    monkeypatch.setattr(inspector, "scan_by_arn", lambda *_: scan)
    monkeypatch.setattr(inspector, "scan_targets", lambda *_: [row])
    clients: Any = SimpleNamespace(region="us-east-1")
    lines: list[str] = []
    if error:
        with pytest.raises(ScanError, match=re.escape(error)):
            catalog_refresh._check_scan(clients, _ARN, write, lines.append)
        return
    assert catalog_refresh._check_scan(clients, _ARN, write, lines.append) == (scan, 2)
    warned = [line for line in lines if line.startswith("WARNING")]
    assert len(warned) == (1 if warning else 0), lines
    assert not warning or warning in warned[0]
