"""Node readiness and package vulnerabilities, on the same test instances and in the same
polling loop as the CIS scan: the node probe runs through SSM Run Command while Inspector scans,
and Inspector's package scan of each instance is awaited beside it. Their evidence goes into
``--out/evidence`` for the node and vulnerability gates (``pipeline.node``, ``pipeline.vulns``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import findings, node, outputs, vulns
from pipeline.aws import AwsClients, ec2, packages, runcommand
from pipeline.errors import PipelineError
from pipeline.policy import ExceptionsPolicy
from pipeline.validate.settings import Runtime

PROBE_TIMEOUT_S = 300  # the probe reads a few files; SSM kills it after this


@dataclass
class Readiness:
    """What the loop knows so far about the probe and the package scan of each instance."""

    instances: list[str]
    script_sha256: str
    command_id: str | None = None
    send_error: str | None = None
    statuses: dict[str, str] = field(default_factory=dict)
    coverage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def probe_done(self) -> bool:
        return self.command_id is None or all(
            self.statuses.get(i) in runcommand.DONE for i in self.instances
        )

    @property
    def scanned(self) -> int:
        return sum(_scanned(self.coverage, i) for i in self.instances)

    @property
    def done(self) -> bool:
        return self.probe_done and self.scanned == len(self.instances)

    def describe(self) -> str:
        finished = sum(self.statuses.get(i) in runcommand.DONE for i in self.instances)
        probe = "not sent" if self.command_id is None else f"{finished}/{len(self.instances)} done"
        return f"node probe {probe}, package scan {self.scanned}/{len(self.instances)}"


def _scanned(pages: list[dict[str, Any]], instance: str) -> bool:
    return any(
        item.get("resourceId") == instance
        and item.get("scanType") == "PACKAGE"
        and (item.get("scanStatus") or {}).get("statusCode") == "ACTIVE"
        for page in pages
        for item in page.get("coveredResources") or []
    )


def start(clients: AwsClients, rt: Runtime, instances: list[str], run_id: str) -> Readiness:
    """Send the node probe to every instance (read-only on the node; no port, no SSH)."""
    script, sha = node.probe_script()
    state = Readiness(list(instances), sha)
    try:
        state.command_id = runcommand.send_script(
            clients, instances, script, PROBE_TIMEOUT_S, f"cis-validate {run_id} node probe"
        )
        rt.echo(f"sent the node probe to {len(instances)} instance(s): {state.command_id}")
    except PipelineError as exc:  # no probe: the node section is ERROR, the rest goes on
        state.send_error = str(exc)
        rt.echo(f"the node probe could not be sent: {exc}")
    return state


def tick(clients: AwsClients, state: Readiness) -> None:
    """One poll: the probe's statuses and the package coverage, each until it is done."""
    if not state.probe_done and state.command_id is not None:
        state.statuses = runcommand.statuses(clients, state.command_id)
    if state.scanned < len(state.instances):
        state.coverage = packages.coverage(clients, state.instances)


def collect(
    clients: AwsClients,
    state: Readiness,
    run_id: str,
    evidence: Path,
    *,
    policies: dict[str, ExceptionsPolicy],
    architectures: dict[str, str],
    today: date,
) -> tuple[node.NodeVerdict, vulns.VulnVerdict]:
    """Read the probe's output and the findings, write them as evidence, judge both sections."""
    invocations: dict[str, Any] = {}
    for instance in state.instances:
        if state.command_id is None:
            invocations[instance] = {"error": state.send_error or "not sent"}
        else:
            invocations[instance] = runcommand.invocation(clients, state.command_id, instance)
    probe = {
        "probe": {"path": str(node.PROBE_SCRIPT), "sha256": state.script_sha256},
        "command_id": state.command_id,
        "invocations": invocations,
    }
    outputs.write_json(evidence / node.EVIDENCE_FILE, probe)
    launched = {
        i.id: i.launched.isoformat() for i in ec2.run_instances(clients, run_id) if i.launched
    }
    found = {i: packages.findings(clients, i) for i in state.instances}
    counted = {i: packages.counts(clients, i) for i in state.instances}
    outputs.write_json(evidence / findings.COVERAGE_FILE, state.coverage)
    outputs.write_json(evidence / findings.FINDINGS_FILE, found)
    outputs.write_json(evidence / findings.COUNTS_FILE, counted)
    outputs.write_json(evidence / findings.LAUNCHED_FILE, launched)
    node_verdict = node.evaluate(probe, state.instances)
    vuln_verdict = vulns.evaluate(
        state.coverage,
        found,
        counted,
        launched=launched,
        policies=policies,
        architectures=architectures,
        today=today,
    )
    return node_verdict, vuln_verdict
