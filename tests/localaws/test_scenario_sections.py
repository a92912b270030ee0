"""The scenario's ``node:`` and ``vulnerabilities:`` sections, the vulnerability table and the
shipped rehearsals of issue 17 (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import node
from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.localaws import node_probe, scenario, vulntable
from pipeline.localaws.profiles import HostProfile
from pipeline.localaws.scenario_sections import NodeKnobs

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "examples/scenarios"
STOCK = HostProfile(Platform.AMAZON_LINUX_2023)
HARDENED = HostProfile(Platform.AMAZON_LINUX_2023, 2)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"node": {"fail": {"node.kubelet.running": "x"}}}, r"\$\.node\.fail: 'node\.kubelet"),
        ({"node": {"drop_lines": ["node.nope"]}}, r"\$\.node\.drop_lines: 'node\.nope' is not"),
        ({"node": {"fail": {"1.1.1.1": "x"}}}, r"\$\.node\.fail"),
        ({"node": {"command": {"outcome": "Lost"}}}, r"\$\.node\.command\.outcome"),
        ({"node": {"speed": 1}}, r"\$\.node: Additional properties"),
        ({"vulnerabilities": {"publish": ["CVE-2025-90101"]}}, r"not an unpublished entry"),
        ({"vulnerabilities": {"drop": ["CVE-1999-0001"]}}, r"\$\.vulnerabilities\.drop: 'CVE"),
        ({"vulnerabilities": {"coverage": {"reason": "SUCCESSFUL"}}}, r"coverage\.reason"),
        ({"vulnerabilities": {"coverage": {"scan_after_s": "soon"}}}, r"scan_after_s"),
        ({"vulnerabilities": {"conflicting_duplicate": {"CVE-2025-90101": "BAD"}}}, r"BAD"),
    ],
)
def test_invalid_sections_are_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=r"s\.yaml: .*" + problem):
        scenario.parse(raw, source="s.yaml")


def test_the_defaults_tell_the_truth() -> None:
    loaded = scenario.parse({}, source="s.yaml")
    assert loaded.node == NodeKnobs()
    assert loaded.vulnerabilities.scan_after_s == 3.0
    assert loaded.vulnerabilities.publish == frozenset()
    never = scenario.parse({"vulnerabilities": {"coverage": {"scan_after_s": "never"}}}, source="s")
    assert never.vulnerabilities.scan_after_s is None


@pytest.mark.parametrize(
    ("left", "right", "order"),
    [
        ("1:3.2.2-1.amzn2023.0.2", "1:3.2.2-1.amzn2023.0.10", -1),
        ("1:1.0.2k-24.amzn2.0.14", "1:1.0.2k-24.amzn2.0.14", 0),
        ("2:9.1-1", "9.2-1", 1),  # epoch first
        ("6.1.158-180.294.amzn2023", "6.1.156-177.286.amzn2023", 1),
        ("1.9.15-1.p5.amzn2023.0.2", "1.9.15-1.p5.amzn2023.0.3", -1),
        ("2.10a-1", "2.10-1", 1),  # more segments: newer
        ("1.0a-1", "1.0.1-1", -1),  # a number sorts after letters
    ],
)
def test_rpm_version_order(left: str, right: str, order: int) -> None:
    assert vulntable.rpm_compare(left, right) == order
    assert vulntable.rpm_compare(right, left) == -order


def _fixable_high(profile: HostProfile, published: tuple[str, ...] = ()) -> set[str]:
    found = set()
    for vuln, hits in vulntable.load().affecting(profile, published):
        if vuln.severity in ("CRITICAL", "HIGH") and any(h.fixed_in for h in hits):
            found.add(vuln.id)
    return found


def test_the_table_gives_stock_images_fixable_findings_and_hardened_none() -> None:
    table = vulntable.load()
    severities = {v.severity for v in table.vulnerabilities}
    assert severities >= {"CRITICAL", "HIGH", "MEDIUM", "LOW"}
    assert any(
        all(f is None for f in v.fixes.get("AMAZON_LINUX_2023", {}).values())
        for v in table.vulnerabilities
    )
    for platform in (Platform.AMAZON_LINUX_2023, Platform.AMAZON_LINUX_2):
        assert _fixable_high(HostProfile(platform)), platform
        assert _fixable_high(HostProfile(platform, 1)) == set(), platform
    assert _fixable_high(HARDENED, ("CVE-2026-0001",)) == {"CVE-2026-0001"}
    assert table.packages(HARDENED)["openssl-libs"].evr == "1:3.2.2-1.amzn2023.0.4"
    assert table.packages(STOCK)["openssl-libs"].evr == "1:3.2.2-1.amzn2023.0.2"


def test_the_probe_answer_follows_the_knobs() -> None:
    checks = node.load_catalogue().checks
    healthy = node_probe.output(HARDENED, NodeKnobs()).splitlines()
    assert healthy[0] == node.header(len(checks)) and healthy[-1] == node.trailer(len(checks))
    assert all(line.split("|")[2] == "PASS" for line in healthy[1:-1])
    assert node_probe.output(STOCK, NodeKnobs()) == "\n".join(healthy) + "\n"


def test_the_shipped_probe_is_recognised_as_the_probe() -> None:
    """The emulation answers a script as the probe when it holds ``NODE-PROBE|1|``."""
    probe = ROOT / node.PROBE_SCRIPT
    if not probe.is_file():
        pytest.skip(f"{node.PROBE_SCRIPT} is not in this tree yet")
    assert node_probe.is_probe(probe.read_text(encoding="utf-8"))
    assert not node_probe.is_probe("uname -r")


def test_the_shipped_rehearsals_set_the_documented_knobs() -> None:
    kubelet = scenario.load(SCENARIOS / "broken-kubelet.yaml").node
    assert set(kubelet.fail) == {"node.kubelet.installed"}
    for name in ("critical-cve.yaml", "critical-cve-excepted.yaml"):
        cve = scenario.load(SCENARIOS / name).vulnerabilities
        assert cve.publish == {"CVE-2026-0001"}
    table = vulntable.load().get("CVE-2026-0001")
    assert table is not None and table.severity == "CRITICAL" and not table.published
    never = scenario.load(SCENARIOS / "coverage-never.yaml")
    assert never.vulnerabilities.scan_after_s is None
    assert never.scan_timeout_s == 15  # the rehearsal ends in seconds, not 2,700 s
