"""Node readiness and package vulnerabilities, on the same test instances and while the CIS
scan runs: the node probe is sent through SSM Run Command before the scan starts (it takes
seconds; its output is read once the scan's loop ends), and Inspector's package scan of each
instance is awaited in the scan's own polling loop (``scan.wait_scan``). Their evidence goes into
``--out/evidence`` for the node and vulnerability gates (``pipeline.node``, ``pipeline.vulns``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import findings, node, outputs, vulns
from pipeline.aws import AwsClients, packages, runcommand
from pipeline.errors import PipelineError
from pipeline.policy import ExceptionsPolicy
from pipeline.validate.settings import Runtime, ValidateSettings
from pipeline.validate.wait import poll

PROBE_TIMEOUT_S = 300  # the probe reads a few files; SSM kills it after this


@dataclass
class Readiness:
    """What the loop knows so far about the probe and the package scan of each instance."""

    instances: list[str]
    script_sha256: str
    command_id: str | None = None
    send_error: str | None = None
    coverage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def scanned(self) -> int:
        return sum(_scanned(self.coverage, i) for i in self.instances)

    @property
    def done(self) -> bool:
        """Every instance's package scan has ended (how it ended, the gate judges)."""
        return self.scanned == len(self.instances)

    def describe(self) -> str:
        return f"package scan {self.scanned}/{len(self.instances)}"


def _scanned(pages: list[dict[str, Any]], instance: str) -> bool:
    return any(
        item.get("resourceId") == instance
        and item.get("scanType") == "PACKAGE"
        and (item.get("scanStatus") or {}).get("statusCode") == "ACTIVE"
        for page in pages
        for item in page.get("coveredResources") or []
    )


def start(
    clients: AwsClients, rt: Runtime, instances: list[str], run_id: str, probe: tuple[str, str]
) -> Readiness:
    """Send the node probe (``probe``: its script and sha256, as preflight read it) to every
    instance (read-only on the node; no port, no SSH)."""
    script, sha = probe
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
    """One look at the package scan of every instance (one ListCoverage), until it is done."""
    if not state.done:
        state.coverage = packages.coverage(clients, state.instances)


def collect(
    clients: AwsClients,
    state: Readiness,
    evidence: Path,
    *,
    settings: ValidateSettings,
    rt: Runtime,
    launched: dict[str, str],
    policies: dict[str, ExceptionsPolicy],
    architectures: dict[str, str],
    today: date,
) -> tuple[node.NodeVerdict, vulns.VulnVerdict]:
    """Read the probe's output and the findings, write them as evidence, judge both sections.

    ``launched``: when each instance launched (``scan.interference`` read it)."""
    invocations = {i: _invocation(clients, state, i, settings, rt) for i in state.instances}
    probe = {
        "probe": {"path": str(node.PROBE_SCRIPT), "sha256": state.script_sha256},
        "command_id": state.command_id,
        "invocations": invocations,
    }
    outputs.write_json(evidence / node.EVIDENCE_FILE, probe)
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


def _invocation(
    clients: AwsClients, state: Readiness, instance: str, settings: ValidateSettings, rt: Runtime
) -> dict[str, Any]:
    """The probe's invocation on ``instance`` once it has ended (it normally has: it takes
    seconds, the CIS scan minutes); asked again until then, at most ``PROBE_TIMEOUT_S``."""
    if state.command_id is None:
        return {"error": state.send_error or "not sent"}
    command = state.command_id
    answer: dict[str, Any] = poll(
        lambda: runcommand.invocation(clients, command, instance),
        lambda a: a.get("Status") in runcommand.DONE or _refused(a),
        PROBE_TIMEOUT_S,
        lambda a: f"node probe on {instance}: {a.get('Status', 'not listed yet')}",
        settings,
        rt,
    )
    return answer


def _refused(answer: dict[str, Any]) -> bool:
    """An error other than the documented moment before the invocation exists."""
    error = answer.get("error")
    return isinstance(error, str) and "InvocationDoesNotExist" not in error
