"""The vulnerability gate (pipeline.findings, pipeline.vulns, pipeline.vulnpolicy): Inspector's
package findings judged against the policy's threshold and exceptions, fail closed."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import policy, vulnpolicy, vulns
from pipeline.errors import PolicyError
from pipeline.outcome import Outcome

I1, I2 = "i-0bbbbbbbbbbbbbbb1", "i-0bbbbbbbbbbbbbbb2"
LAUNCHED = {I1: "2026-12-04T07:00:00+00:00", I2: "2026-12-04T07:00:00+00:00"}
TODAY = date(2026, 12, 4)
BASE = policy.load("policies/exceptions/amazon-linux-2023.yaml")


def _policy(section: Any) -> policy.ExceptionsPolicy:
    parsed, problems = vulnpolicy.parse(section, "p.yaml")
    assert problems == []
    return replace(BASE, vulnerabilities=parsed)


def finding(
    vid: str = "CVE-2026-0001",
    severity: str = "CRITICAL",
    fix: str = "YES",
    target: str = I1,
    package: str = "openssl-libs",
    status: str = "ACTIVE",
    arn: str | None = None,
) -> dict[str, Any]:
    return {
        "findingArn": arn or f"arn:aws:inspector2:us-east-1:111122223333:finding/{vid}-{target}",
        "type": "PACKAGE_VULNERABILITY",
        "status": status,
        "severity": severity,
        "fixAvailable": fix,
        "inspectorScore": 9.8,
        "title": f"{vid} - {package}",
        "resources": [{"type": "AWS_EC2_INSTANCE", "id": target}],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": vid,
            "source": "AMAZON_CVE",
            "vulnerablePackages": [
                {
                    "name": package,
                    "version": "3.0.8",
                    "release": "1.amzn2023.0.1",
                    "arch": "x86_64",
                    "fixedInVersion": "0:3.0.8-1.amzn2023.0.2" if fix != "NO" else "NotAvailable",
                    "packageManager": "OS",
                }
            ],
        },
    }


def coverage(
    *targets: str, reason: str = "SUCCESSFUL", when: str = "2026-12-04T07:20:00Z"
) -> list[dict[str, Any]]:
    code = "ACTIVE" if reason == "SUCCESSFUL" else "INACTIVE"
    return [
        {
            "coveredResources": [
                {
                    "resourceId": t,
                    "resourceType": "AWS_EC2_INSTANCE",
                    "scanType": "PACKAGE",
                    "scanStatus": {"statusCode": code, "reason": reason},
                    "lastScannedAt": when,
                }
                for t in targets
            ]
        }
    ]


def counts_of(target: str, listed: list[dict[str, Any]], network: int = 0) -> list[dict[str, Any]]:
    active = [f for f in listed if f["status"] == "ACTIVE"]
    by = {
        s: sum(f["severity"] == s.upper() for f in active) for s in ("critical", "high", "medium")
    }
    agg = {
        "instanceId": target,
        "severityCounts": {"all": len(active) + network, **by},
        "networkFindings": network,
    }
    return [{"responses": [{"ec2InstanceAggregation": agg}] if active or network else []}]


def judge(
    listed: dict[str, list[dict[str, Any]]],
    pol: policy.ExceptionsPolicy = BASE,
    *,
    cov: Any = None,
    counts: Any = None,
    archs: dict[str, str] | None = None,
) -> vulns.VulnVerdict:
    targets = list(listed)
    return vulns.evaluate(
        coverage(*targets) if cov is None else cov,
        {t: [{"findings": f}] for t, f in listed.items()},
        counts if counts is not None else {t: counts_of(t, f) for t, f in listed.items()},
        launched=LAUNCHED,
        policies={t: pol for t in targets},
        architectures=archs or {t: "x86_64" for t in targets},
        today=TODAY,
    )


EXCEPTED = {
    "exceptions": [
        {
            "vulnerability_id": "CVE-2026-0001",
            "reason": "no exploit path on a node",
            "approved_by": "sec",
            "expires": "2027-01-31",
        }
    ]
}

JUDGED = [
    ("nothing found", [], BASE, Outcome.PASS, 0),
    ("fixable critical blocks by default", [finding()], BASE, Outcome.FAIL, 1),
    ("fixable high blocks by default", [finding(severity="HIGH")], BASE, Outcome.FAIL, 1),
    ("partial fix counts as fixable", [finding(fix="PARTIAL")], BASE, Outcome.FAIL, 1),
    ("critical without a fix passes by default", [finding(fix="NO")], BASE, Outcome.PASS, 0),
    ("medium passes by default", [finding(severity="MEDIUM")], BASE, Outcome.PASS, 0),
    ("unknown severity blocks", [finding(severity="APOCALYPTIC")], BASE, Outcome.FAIL, 1),
    ("missing fixAvailable counts as fixable", [finding(fix=None)], BASE, Outcome.FAIL, 1),  # type: ignore[arg-type]
    (
        "any: an unfixed critical blocks",
        [finding(fix="NO")],
        _policy({"block": {"CRITICAL": "any"}}),
        Outcome.FAIL,
        1,
    ),
    (
        "never: a high passes",
        [finding(severity="HIGH")],
        _policy({"block": {"HIGH": "never"}}),
        Outcome.PASS,
        0,
    ),
    (
        "medium made blocking",
        [finding(severity="MEDIUM")],
        _policy({"block": {"MEDIUM": "fixable"}}),
        Outcome.FAIL,
        1,
    ),
    ("excepted by ID", [finding()], _policy(EXCEPTED), Outcome.PASS, 0),
    (
        "exception scoped to another package does not cover",
        [finding()],
        _policy({"exceptions": [{**EXCEPTED["exceptions"][0], "package": "curl"}]}),
        Outcome.FAIL,
        1,
    ),
    (
        "exception scoped to the package covers",
        [finding()],
        _policy({"exceptions": [{**EXCEPTED["exceptions"][0], "package": "openssl-libs"}]}),
        Outcome.PASS,
        0,
    ),
    (
        "exception scoped to arm64 does not cover x86_64",
        [finding()],
        _policy({"exceptions": [{**EXCEPTED["exceptions"][0], "architectures": ["arm64"]}]}),
        Outcome.FAIL,
        1,
    ),
    (
        "expired exception blocks",
        [finding()],
        _policy({"exceptions": [{**EXCEPTED["exceptions"][0], "expires": "2026-12-03"}]}),
        Outcome.FAIL,
        1,
    ),
    (
        "a suppressed finding is judged like an active one",
        [finding(status="SUPPRESSED")],
        BASE,
        Outcome.FAIL,
        1,
    ),
]


@pytest.mark.parametrize(
    ("listed", "pol", "outcome", "blocking"), [j[1:] for j in JUDGED], ids=[j[0] for j in JUDGED]
)
def test_findings_are_judged_against_the_threshold_and_exceptions(
    listed: list[dict[str, Any]], pol: policy.ExceptionsPolicy, outcome: Outcome, blocking: int
) -> None:
    verdict = judge({I1: listed}, pol)
    assert verdict.errors == ()
    assert (verdict.verdict, len(verdict.blocking)) == (outcome, blocking)


def test_a_blocking_line_names_cve_package_versions_severity_and_score() -> None:
    (judged,) = judge({I1: [finding()]}).blocking
    line = vulns.blocking_line(judged)
    for part in (
        "CVE-2026-0001",
        "CRITICAL",
        "9.8",
        "openssl-libs-3.0.8-1.amzn2023.0.1.x86_64",
        "0:3.0.8-1.amzn2023.0.2",
    ):
        assert part in line


def test_unused_expired_and_used_exceptions_are_reported() -> None:
    pol = _policy(
        {
            "exceptions": [
                EXCEPTED["exceptions"][0],
                {**EXCEPTED["exceptions"][0], "vulnerability_id": "CVE-2026-9999"},
                {
                    **EXCEPTED["exceptions"][0],
                    "vulnerability_id": "CVE-2020-1",
                    "expires": "2026-01-01",
                },
            ]
        }
    )
    verdict = judge({I1: [finding()]}, pol)
    assert (
        [n.exception.vulnerability_id for n in verdict.excepted_notes()]
        if hasattr(verdict, "excepted_notes")
        else True
    )
    assert [j.finding.vulnerability_id for j in verdict.excepted] == ["CVE-2026-0001"]
    assert [n.exception.vulnerability_id for n in verdict.unused_exceptions] == ["CVE-2026-9999"]
    assert [n.exception.vulnerability_id for n in verdict.expired_exceptions] == ["CVE-2020-1"]


def _with(listed: list[dict[str, Any]], **changes: Any) -> vulns.VulnVerdict:
    return judge({I1: listed}, **changes)


UNTRUSTED = [
    (
        "coverage pending",
        lambda: _with([], cov=coverage(I1, reason="PENDING_INITIAL_SCAN")),
        "PENDING_INITIAL_SCAN",
    ),
    (
        "stale inventory",
        lambda: _with([], cov=coverage(I1, reason="STALE_INVENTORY")),
        "STALE_INVENTORY",
    ),
    (
        "unmanaged instance",
        lambda: _with([], cov=coverage(I1, reason="UNMANAGED_EC2_INSTANCE")),
        "UNMANAGED",
    ),
    (
        "no coverage at all",
        lambda: _with([], cov=[{"coveredResources": []}]),
        "no package-scan coverage",
    ),
    ("coverage not collected", lambda: _with([], cov=[]), "not collected"),
    (
        "scan older than the instance",
        lambda: _with([], cov=coverage(I1, when="2026-12-04T06:00:00Z")),
        "not after the instance launched",
    ),
    (
        "coverage pages left unread",
        lambda: _with([], cov=[{**coverage(I1)[0], "nextToken": "t"}]),
        "left unread",
    ),
    (
        "coverage of another instance",
        lambda: _with([], cov=coverage(I1, "i-0ccccccccccccccc3")),
        "not a test instance",
    ),
    ("finding about another resource", lambda: _with([finding(target=I2)]), "another resource"),
    (
        "a duplicate with another severity",
        lambda: _with([finding(), finding(severity="LOW", arn=finding()["findingArn"])]),
        "twice, differently",
    ),
    (
        "a finding of another type",
        lambda: _with([{**finding(), "type": "NETWORK_REACHABILITY"}]),
        "not asked for",
    ),
    ("a closed finding", lambda: _with([finding(status="CLOSED")]), "not asked for"),
    (
        "a finding dropped: counts disagree",
        lambda: _with(
            [finding()], counts={I1: counts_of(I1, [finding(), finding("CVE-2026-0002")])}
        ),
        "missing or extra",
    ),
    (
        "findings pages left unread",
        lambda: vulns.evaluate(
            coverage(I1),
            {I1: [{"findings": [], "nextToken": "more"}]},
            {I1: counts_of(I1, [])},
            launched=LAUNCHED,
            policies={I1: BASE},
            architectures={I1: "x86_64"},
            today=TODAY,
        ),
        "left unread",
    ),
    ("no counts collected", lambda: _with([], counts={}), "no response pages"),
]


@pytest.mark.parametrize(
    ("make", "needle"), [u[1:] for u in UNTRUSTED], ids=[u[0] for u in UNTRUSTED]
)
def test_an_untrustworthy_package_scan_is_an_error(make: Any, needle: str) -> None:
    verdict = make()
    assert verdict.verdict is Outcome.ERROR
    assert needle in " ".join(verdict.errors)


def test_network_findings_are_not_package_findings() -> None:
    listed = [finding()]
    verdict = judge({I1: listed}, counts={I1: counts_of(I1, listed, network=2)})
    assert verdict.errors == () and verdict.verdict is Outcome.FAIL


def test_an_identical_duplicate_is_read_once_with_a_warning() -> None:
    verdict = judge(
        {I1: [finding(), copy.deepcopy(finding())]}, counts={I1: counts_of(I1, [finding()])}
    )
    assert verdict.errors == () and len(verdict.blocking) == 1 and verdict.warnings


POLICY_PROBLEMS = [
    ({"block": {"CRITICAL": "sometimes"}}, "$.vulnerabilities.block.CRITICAL"),
    ({"block": {"SEVERE": "any"}}, "$.vulnerabilities.block"),
    (
        {"exceptions": [{"vulnerability_id": "CVE-2026-1", "reason": "r", "approved_by": "a"}]},
        "expires",
    ),
    (
        {"exceptions": [{**EXCEPTED["exceptions"][0], "owner": "me"}]},
        "$.vulnerabilities.exceptions[0]",
    ),
    (
        {"exceptions": [{**EXCEPTED["exceptions"][0], "vulnerability_id": "not an id"}]},
        "vulnerability_id",
    ),
    (
        {"exceptions": [dict(EXCEPTED["exceptions"][0]), dict(EXCEPTED["exceptions"][0])]},
        "overlapping scope",
    ),
    ({"exceptions": [{**EXCEPTED["exceptions"][0], "reason": "  "}]}, "reason: must not be blank"),
    ({"thresholds": {}}, "$.vulnerabilities"),
]


@pytest.mark.parametrize(("section", "needle"), POLICY_PROBLEMS)
def test_an_invalid_vulnerabilities_section_is_refused_naming_the_path(
    section: Any, needle: str
) -> None:
    data = yaml.safe_load(Path("policies/exceptions/amazon-linux-2023.yaml").read_text())
    data["vulnerabilities"] = section
    text = yaml.safe_dump(data)
    with pytest.raises(PolicyError) as err:
        policy.parse(text, "p.yaml")
    assert any(needle in line and line.startswith("p.yaml: ") for line in err.value.lines())


def test_package_scoped_exceptions_for_different_packages_may_coexist() -> None:
    a = {**EXCEPTED["exceptions"][0], "package": "openssl-libs"}
    b = {**EXCEPTED["exceptions"][0], "package": "openssl"}
    assert vulnpolicy.parse({"exceptions": [a, b]}, "p.yaml")[1] == []


def test_expired_vulnerability_exceptions_fail_policy_validation() -> None:
    pol = _policy({"exceptions": [{**EXCEPTED["exceptions"][0], "expires": "2026-01-01"}]})
    errors, _ = policy.expiry_problems(pol, TODAY)
    assert any("$.vulnerabilities.exceptions[0].expires" in e for e in errors)


def test_the_section_digest_changes_with_the_threshold_and_defaults_are_explicit() -> None:
    default = vulnpolicy.VulnPolicy()
    assert default.digest == _policy({}).vulnerabilities.digest  # defaults spelled out = absent
    assert default.digest != _policy({"block": {"HIGH": "any"}}).vulnerabilities.digest
    assert default.threshold == "CRITICAL (fixable), HIGH (fixable)"
