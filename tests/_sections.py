"""Stored evidence of the node and vulnerability sections, built as SSM and Inspector return it
(``node.header``/``format_line``/``trailer`` for the probe), and ``readiness``: a stand-in for
``pipeline.validate.readiness`` that answers a validate run with those documents, so the
record, verify, regate, promote and nightly tests run every gate on real stored evidence while
the local AWS does not answer the probe and the package scan itself."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline import findings, node, outputs, vulns
from pipeline.policy import ExceptionsPolicy
from pipeline.validate import readiness

LAUNCHED = "2026-01-01T00:00:00+00:00"
SCANNED = "2026-01-01T00:20:00+00:00"
PROBE = "#!/bin/bash\n# stand-in for packer/scripts/node/probe.sh\n"
PROBE_SHA = hashlib.sha256(PROBE.encode()).hexdigest()


@dataclass(frozen=True)
class Cve:
    id: str
    severity: str = "MEDIUM"
    fix: str = "YES"
    package: str = "openssl-libs"


@dataclass
class Knobs:
    """What the stand-in answers: failing node checks and each instance's findings."""

    failing: frozenset[str] = frozenset()
    cves: Sequence[Cve] = (Cve("CVE-2026-1000"),)
    only: int | None = None  # the failing node checks only on this instance (index), else all
    calls: list[str] = field(default_factory=list)


def probe_output(failing: frozenset[str] = frozenset()) -> str:
    cat = node.load_catalogue()
    lines = [node.header(len(cat.checks))]
    for check in cat.checks:
        bad = check.id in failing
        lines.append(node.format_line(check.id, not bad, "broken" if bad else "as EKS needs it"))
    return "\n".join([*lines, node.trailer(len(cat.checks))]) + "\n"


def probe_document(
    instances: Sequence[str], failing: frozenset[str] = frozenset(), only: int | None = None
) -> Any:
    def fails(index: int) -> frozenset[str]:
        return failing if only is None or index == only else frozenset()

    return {
        "probe": {"path": str(node.PROBE_SCRIPT), "sha256": PROBE_SHA},
        "command_id": "cmd-0123456789",
        "invocations": {
            i: {
                "Status": "Success",
                "StatusDetails": "Success",
                "ResponseCode": 0,
                "StandardOutputContent": probe_output(fails(n)),
                "StandardErrorContent": "",
            }
            for n, i in enumerate(instances)
        },
    }


def coverage_document(instances: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "coveredResources": [
                {
                    "resourceId": i,
                    "resourceType": "AWS_EC2_INSTANCE",
                    "scanType": "PACKAGE",
                    "scanStatus": {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"},
                    "lastScannedAt": SCANNED,
                }
                for i in instances
            ]
        }
    ]


def finding(instance: str, cve: Cve) -> dict[str, Any]:
    return {
        "findingArn": f"arn:aws:inspector2:us-east-1:123456789012:finding/{instance}-{cve.id}",
        "type": findings.PACKAGE_VULNERABILITY,
        "status": "ACTIVE",
        "severity": cve.severity,
        "fixAvailable": cve.fix,
        "inspectorScore": 7.5,
        "title": f"{cve.id} - {cve.package}",
        "resources": [{"id": instance, "type": "AWS_EC2_INSTANCE"}],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": cve.id,
            "vulnerablePackages": [
                {
                    "name": cve.package,
                    "version": "3.0.8",
                    "release": "1.amzn2023",
                    "arch": "x86_64",
                    "fixedInVersion": "3.0.9" if cve.fix == "YES" else "NotAvailable",
                }
            ],
        },
    }


def findings_document(instances: Sequence[str], cves: Sequence[Cve]) -> dict[str, Any]:
    return {i: [{"findings": [finding(i, c) for c in cves]}] for i in instances}


def counts_document(instances: Sequence[str], cves: Sequence[Cve]) -> dict[str, Any]:
    severity = {
        s.lower(): sum(c.severity.lower() == s.lower() for c in cves)
        for s in ("CRITICAL", "HIGH", "MEDIUM")
    }
    return {
        i: [
            {
                "responses": [
                    {
                        "ec2InstanceAggregation": {
                            "instanceId": i,
                            "severityCounts": {"all": len(cves), **severity},
                            "networkFindings": 0,
                        }
                    }
                ]
            }
        ]
        for i in instances
    }


def stored(instances: Sequence[str], knobs: Knobs | None = None) -> dict[str, Any]:
    """The five evidence documents validate writes, by file name under ``evidence/``."""
    k = knobs or Knobs()
    return {
        node.EVIDENCE_FILE: probe_document(instances, k.failing, k.only),
        findings.COVERAGE_FILE: coverage_document(instances),
        findings.FINDINGS_FILE: findings_document(instances, k.cves),
        findings.COUNTS_FILE: counts_document(instances, k.cves),
        findings.LAUNCHED_FILE: {i: LAUNCHED for i in instances},
    }


@contextmanager
def readiness_answered(knobs: Knobs | None = None) -> Iterator[Knobs]:
    """``pipeline.validate.readiness`` answered with ``stored`` documents (and the probe script
    read from memory) for the duration: the rest of the validate run is the real one."""
    k = knobs or Knobs()

    def start(
        _clients: Any, _rt: Any, instances: list[str], _run_id: str, _probe: Any
    ) -> readiness.Readiness:
        k.calls.append("start")
        state = readiness.Readiness(list(instances), PROBE_SHA)
        state.coverage = coverage_document(instances)
        return state

    def collect(
        _clients: Any,
        state: readiness.Readiness,
        evidence: Path,
        *,
        policies: Mapping[str, ExceptionsPolicy],
        architectures: Mapping[str, str],
        today: date,
        **_: Any,
    ) -> tuple[node.NodeVerdict, vulns.VulnVerdict]:
        k.calls.append("collect")
        docs = stored(state.instances, k)
        for name, doc in docs.items():
            outputs.write_json(evidence / name, doc)
        return node.evaluate(docs[node.EVIDENCE_FILE], state.instances), vulns.evaluate(
            docs[findings.COVERAGE_FILE],
            docs[findings.FINDINGS_FILE],
            docs[findings.COUNTS_FILE],
            launched=docs[findings.LAUNCHED_FILE],
            policies=policies,
            architectures=architectures,
            today=today,
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(node, "probe_script", lambda root=None: (PROBE, PROBE_SHA))
        patch.setattr(readiness, "start", start)
        patch.setattr(readiness, "tick", lambda *_: None)
        patch.setattr(readiness, "collect", collect)
        yield k
