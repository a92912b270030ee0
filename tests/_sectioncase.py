"""Build a three-section verdict from a compact case: complete CIS results judged by the shipped
AL2023 policy, the node probe's stored evidence (``evidence/node-probe.json``) and Inspector's
package-scan pages (coverage, findings, finding counts), each judged by its own gate and then
combined, as ``invoke validate`` does. A section whose spec is null is not judged."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline import gate, node, policy, results, sections, vulnpolicy, vulns
from pipeline.vulnpolicy import SEVERITIES
from tests._complete import complete_rows, page

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "policies/exceptions/amazon-linux-2023.yaml"
LAUNCHED = "2026-12-01T10:00:00+00:00"
SCANNED = "2026-12-01T10:20:00+00:00"
ACCOUNT = "123456789012"


def probe_output(spec: dict[str, Any]) -> str:
    """What the probe prints: every catalogue check PASS unless named in ``fail`` (id → what
    was seen) or ``missing``; ``raw`` lines (as printed, unsanitised) replace the generated ones."""
    if "raw" in spec:
        return "\n".join(spec["raw"]) + "\n"
    cat = node.load_catalogue()
    fail, missing = spec.get("fail", {}), set(spec.get("missing", ()))
    lines = [
        node.format_line(c.id, c.id not in fail, fail.get(c.id, "as expected"))
        for c in cat.checks
        if c.id not in missing
    ]
    return "\n".join([node.header(len(cat.checks)), *lines, node.trailer(len(lines))]) + "\n"


def node_document(targets: dict[str, Any]) -> dict[str, Any]:
    """``evidence/node-probe.json`` as ``validate`` stores it."""
    invocations: dict[str, Any] = {}
    for target, spec in targets.items():
        if "error" in spec:
            invocations[target] = {"error": spec["error"]}
            continue
        status = spec.get("status", "Success")
        invocations[target] = {
            "InstanceId": target,
            "Status": status,
            "StatusDetails": status,
            "ResponseCode": spec.get("response_code", 0 if status == "Success" else -1),
            "StandardOutputContent": probe_output(spec) if status == "Success" else "",
            "StandardErrorContent": "",
        }
    return {
        "probe": {"path": str(node.PROBE_SCRIPT), "sha256": "0" * 64},
        "command_id": "11111111-2222-3333-4444-555555555555",
        "invocations": invocations,
    }


def _finding(target: str, spec: dict[str, Any]) -> dict[str, Any]:
    vid = spec["id"]
    package = {
        "name": spec.get("package", "openssl-libs"),
        "version": spec.get("version", "3.0.8"),
        "release": spec.get("release", "1.amzn2023.0.12"),
        "arch": spec.get("arch", "x86_64"),
        "epoch": 1,
        "packageManager": "OS",
    }
    if spec.get("fixed") is not None or "fixed" not in spec:
        package["fixedInVersion"] = spec.get("fixed", "1:3.0.8-1.amzn2023.0.14")
    return {
        "awsAccountId": ACCOUNT,
        "findingArn": spec.get(
            "arn", f"arn:aws:inspector2:us-east-1:{ACCOUNT}:finding/{target}-{vid}"
        ),
        "type": "PACKAGE_VULNERABILITY",
        "status": spec.get("status", "ACTIVE"),
        "severity": spec["severity"],
        "fixAvailable": spec.get("fix", "YES"),
        "inspectorScore": spec.get("score"),
        "title": spec.get("title", f"{vid} - {package['name']}"),
        "resources": [{"id": target, "type": "AWS_EC2_INSTANCE"}],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": vid,
            "source": "ALAS",
            "vulnerablePackages": [package],
        },
    }


def vuln_documents(targets: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, str]]:
    """(coverage pages, findings pages per instance, finding-counts pages per instance, launched)
    as ``validate`` stores them."""
    covered = []
    found: dict[str, Any] = {}
    counted: dict[str, Any] = {}
    for target, spec in targets.items():
        status = spec.get("coverage", {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"})
        covered.append(
            {
                "resourceId": target,
                "resourceType": "AWS_EC2_INSTANCE",
                "scanType": "PACKAGE",
                "accountId": ACCOUNT,
                "scanStatus": status,
                "lastScannedAt": SCANNED,
            }
        )
        listed = [_finding(target, f) for f in spec.get("findings", [])]
        found[target] = [{"findings": listed}]
        active = [f for f in listed if f["status"] == "ACTIVE"]
        by_severity = {s.lower(): sum(f["severity"] == s for f in active) for s in SEVERITIES[:3]}
        counted[target] = [
            {
                "aggregationType": "AWS_EC2_INSTANCE",
                "responses": [
                    {
                        "ec2InstanceAggregation": {
                            "instanceId": target,
                            "networkFindings": 0,
                            "severityCounts": {"all": len(active), **by_severity},
                        }
                    }
                ]
                if active
                else [],
            }
        ]
    return [{"coveredResources": covered}], found, counted, {t: LAUNCHED for t in targets}


def vuln_policy(section: dict[str, Any] | None, today: date) -> policy.ExceptionsPolicy:
    """The shipped policy with this ``vulnerabilities:`` section (``expires_in_days`` of each
    exception: relative to ``today``, so no case depends on the calendar)."""
    shipped = policy.load(SHIPPED)
    if section is None:
        return shipped
    raw = dict(section)
    raw["exceptions"] = [
        {k: v for k, v in e.items() if k != "expires_in_days"}
        | {"expires": str(today + timedelta(days=e.get("expires_in_days", 200)))}
        for e in section.get("exceptions", [])
    ]
    parsed, problems = vulnpolicy.parse(raw, shipped.source)
    assert problems == [], problems
    return dataclasses.replace(shipped, vulnerabilities=parsed)


def build(case: dict[str, Any], today: date) -> gate.Verdict:
    """The combined verdict of ``case`` (keys ``cis``, ``node``, ``vulnerabilities``)."""
    spec = case.get("cis", {})
    pol = vuln_policy((case.get("vulnerabilities") or {}).get("policy"), today)
    targets = spec.get("targets", ["i-1"])
    failed = [e.check_id for e in pol.exceptions] + spec.get("failed", [])
    pages = [page(complete_rows(target=t, failed=failed)) for t in targets]
    parsed = results.parse_document(pages, "results.json")
    chosen = {t: pol for t in targets}
    archs = {t: "x86_64" for t in targets}
    cis = gate.evaluate(
        parsed.rows, chosen, today, level=2, expected_targets=targets, architectures=archs
    )
    judged_node = None
    if case.get("node") is not None:
        judged_node = node.evaluate(node_document(case["node"]["targets"]), targets)
    judged_vulns = None
    if case.get("vulnerabilities") is not None:
        coverage, found, counted, launched = vuln_documents(case["vulnerabilities"]["targets"])
        judged_vulns = vulns.evaluate(
            coverage,
            found,
            counted,
            launched=launched,
            policies=chosen,
            architectures=archs,
            today=today,
        )
    return sections.combine(cis, judged_node, judged_vulns)


def hostile(verdict: gate.Verdict, texts: list[str], today: date) -> gate.Verdict:
    """``verdict`` with its node and vulnerability sections, each judged by its gate on stored
    evidence whose every untrusted text is hostile (the probe's output, Inspector's finding),
    then with every untrusted field replaced by hostile text in full (a renderer must not
    rely on the parsers' cuts): what the probe saw, check titles, vulnerability IDs, severities,
    package names and versions, finding titles, exception reasons and approvers."""
    text = itertools.cycle(texts)
    target = verdict.targets[0].target
    check = node.load_catalogue().checks[0].id
    lines = probe_output({}).splitlines()  # the probe, its first check hostile
    raw = f"NODE|{check}|FAIL|{texts[0]}"
    lines[1] = raw if len(raw.splitlines()) == 1 else node.format_line(check, False, texts[0])
    probe = {"raw": lines}
    judged_node = node.evaluate(node_document({target: probe}), [target])
    judged_node = dataclasses.replace(
        judged_node,
        failed=tuple(
            dataclasses.replace(r, observed=next(text), title=next(text))
            for r in judged_node.failed
        ),
        errors=tuple(texts),
    )
    findings = [
        {"id": "CVE-2026-0001", "severity": "CRITICAL", "score": 9.8, "title": next(text)},
        {"id": "CVE-2026-0002", "severity": "HIGH", "package": next(text), "title": next(text)},
    ]
    section = {
        "exceptions": [
            {
                "vulnerability_id": "CVE-2026-0001",
                "reason": "r",
                "approved_by": "a",
                "expires_in_days": 10,
            }
        ]
    }
    pol = vuln_policy(section, today)
    coverage, found, counted, launched = vuln_documents({target: {"findings": findings}})
    judged_vulns = vulns.evaluate(
        coverage,
        found,
        counted,
        launched=launched,
        policies={target: pol},
        architectures={target: "x86_64"},
        today=today,
    )

    def spoilt(j: vulns.Judged) -> vulns.Judged:
        packages = tuple(
            dataclasses.replace(p, name=next(text), version=next(text), fixed_in=next(text))
            for p in j.finding.packages
        )
        finding = dataclasses.replace(
            j.finding,
            vulnerability_id=next(text),
            severity=next(text),
            title=next(text),
            arn=next(text),
            packages=packages,
        )
        exc = j.exception
        if exc is not None:
            exc = dataclasses.replace(
                exc, vulnerability_id=next(text), reason=next(text), approved_by=next(text)
            )
        return dataclasses.replace(j, finding=finding, message=next(text), exception=exc)

    judged_vulns = dataclasses.replace(
        judged_vulns,
        blocking=tuple(spoilt(j) for j in judged_vulns.blocking),
        excepted=tuple(spoilt(j) for j in judged_vulns.excepted),
        expiring_soon=tuple(
            vulns.VulnNote(spoilt(j).exception or n.exception, n.source)
            for j, n in zip(judged_vulns.excepted, judged_vulns.expiring_soon, strict=True)
        ),
        errors=tuple(texts),
        warnings=tuple(texts),
    )
    assert judged_node.failed and judged_vulns.blocking and judged_vulns.expiring_soon
    return sections.combine(verdict, judged_node, judged_vulns)


def section_annotations(verdict: gate.Verdict) -> int:
    """How many annotations the node and vulnerability sections issue (at most 50 a kind)."""
    n, v = verdict.node, verdict.vulnerabilities
    count = len(n.errors[:50]) + len(n.failed[:50]) if n else 0
    if v:
        count += len(v.errors[:50]) + len(v.blocking[:50]) + len(v.expiring_soon)
    return count
