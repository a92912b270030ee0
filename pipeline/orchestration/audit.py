"""``invoke audit``: re-validate the image each release channel serves now, so a scheduled
workflow learns before anyone deploys it that an image no longer passes (a vulnerability
published since it was promoted, a CIS check Inspector now fails, a node check).

Reads the channels as ``invoke channels`` does (the SSM parameters under the prefix, in the home
region: a regional copy is the same snapshots), validates every image they serve in one
``validate`` run (as the nightly re-validates an unchanged image: new test instances, one scan,
the three gates, a new signed record and verdict tags), and reports each channel's image with
its CIS, node and vulnerability verdicts. Exit 0 when every one passes, 3 when any no longer
passes, 4 when any could not be validated (ERROR over FAIL). It never revokes or changes a
channel: that stays a human decision (``invoke revoke``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pipeline import channels, drift, github
from pipeline.aws import AwsClients, boundary
from pipeline.aws import release as aws
from pipeline.errors import ConfigError, ExitCode, PipelineError, PolicyError, one_line
from pipeline.evidence import verdicts
from pipeline.gate import Verdict
from pipeline.node import NodeVerdict
from pipeline.outcome import Outcome, worst
from pipeline.validate import Runtime, ValidateSettings, run_validate
from pipeline.vulns import VulnVerdict, blocking_line

MAX_REASONS = 5  # per channel image: the first blocking lines; verdict.json has them all


@dataclass(frozen=True, slots=True)
class Audited:
    """A channel's image and what re-validating it gave (None: not validated, a dry run)."""

    entry: channels.Published
    verdict: str | None
    sections: dict[str, str] = field(default_factory=dict)  # section → PASS/FAIL/ERROR
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "channel": e.channel,
            "platform": e.platform,
            "arch": e.arch,
            "kubernetes_version": e.k8s_version,
            "parameter": e.parameter,
            "image": e.image,
            "verdict": self.verdict,
            "sections": self.sections,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Audit:
    region: str
    dry_run: bool
    images: tuple[Audited, ...]
    run_id: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        if self.dry_run or not self.images:
            return ExitCode.OK
        return worst(Outcome(a.verdict or "ERROR") for a in self.images).exit_code

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "exit_code": int(self.exit_code),
            "channels": [a.as_dict() for a in self.images],
        }


def channel_images(
    release: channels.ReleaseSettings, clients: AwsClients, channel: str | None = None
) -> list[channels.Published]:
    """Every channel parameter under the prefix in the clients' region (``--channel``: one),
    sorted by channel, platform, architecture and version. Calls ssm:GetParametersByPath."""
    if channel is not None:
        release.channel(channel)
    found = aws.parameters_under(clients, release.parameter_prefix)
    return channels.published(found, release.parameter_prefix, channel)


def run_audit(
    release: channels.ReleaseSettings,
    validate: ValidateSettings,
    clients: AwsClients,
    rt: Runtime,
    *,
    channel: str | None = None,
    dry_run: bool = False,
) -> Audit:
    """Re-validate every channel's image (``validate``: the settings ``invoke validate`` uses;
    the AMIs are filled in here). Raises ConfigError/PolicyError (exit 2) for bad input; any
    other failure of the run makes its images ERROR (could not be validated)."""
    with boundary("audit"):
        entries = channel_images(release, clients, channel)
        if dry_run or not entries:
            for e in entries:
                rt.echo(f"would re-validate {e.image} ({e.channel} {_what(e)}, {e.parameter})")
            if not entries:
                rt.echo(
                    f"no channel parameters under {release.parameter_prefix} in {clients.region}"
                )
            return Audit(clients.region, dry_run, tuple(Audited(e, None) for e in entries))
        images = list(dict.fromkeys(e.image for e in entries))
        missing = {i for i in images if _absent(clients, i)}
    wanted = tuple(i for i in images if i not in missing)
    verdict: Verdict | None = None
    failure: str | None = None
    if wanted:
        rt.echo(f"re-validating {len(wanted)} channel image(s): {', '.join(wanted)}")
        try:
            verdict = run_validate(replace(validate, amis=wanted, run_id=None), clients, rt)
        except (ConfigError, PolicyError):
            raise
        except PipelineError as exc:  # the run wrote its ERROR verdict; nothing was proven
            failure = f"could not be validated: {one_line(str(exc), 300)}"
    judged = []
    for e in entries:
        if e.image in missing:
            why = f"{e.image} does not exist (any more) in {clients.region}: could not be validated"
            judged.append(Audited(e, Outcome.ERROR.value, {}, (why,)))
        elif verdict is None:
            judged.append(Audited(e, Outcome.ERROR.value, {}, (failure or "not validated",)))
        else:
            judged.append(_judged(e, verdict))
    run_id = verdict.context.get("run_id") if verdict is not None else None
    return Audit(clients.region, False, tuple(judged), str(run_id) if run_id else None)


def _absent(clients: AwsClients, image: str) -> bool:
    try:
        channels.check_ami(image, "channel parameter value")
    except ConfigError:
        return True
    return aws.owned_image(clients, image) is None


def _what(e: channels.Published) -> str:
    return f"{e.platform}/{e.arch}/{e.k8s_version}"


def _judged(entry: channels.Published, verdict: Verdict) -> Audited:
    amis = verdict.context.get("amis", [])
    target = next(
        (
            str(a.get("instance"))
            for a in (amis if isinstance(amis, list) else [])
            if isinstance(a, dict) and a.get("ami") == entry.image
        ),
        None,
    )
    if target is None:
        why = "; ".join(verdict.errors[:2]) or "no test instance of it was judged"
        return Audited(entry, Outcome.ERROR.value, {}, (f"could not be validated: {why}",))
    stated = verdicts.for_target(verdict, target, "")
    shown = {name: str(stated[name]["verdict"]) for name in verdicts.ALL}
    outcome = verdicts.combined(stated)
    reasons: list[str] = []
    if outcome != Outcome.PASS.value:
        reasons = _reasons(verdict, target)
    return Audited(entry, outcome, shown, tuple(reasons[:MAX_REASONS]))


def _reasons(verdict: Verdict, target: str) -> list[str]:
    """The blocking lines of ``target``: CIS checks, node checks, vulnerabilities, errors."""
    out = [
        f"CIS {f.result.check_id}: {one_line(f.message, 120)}"
        for f in verdict.failed_unexcepted
        if f.result.target == target
    ]
    out += _node_reasons(verdict.node, target)
    out += _vuln_reasons(verdict.vulnerabilities, target)
    out += [f"error: {one_line(e, 200)}" for e in verdict.errors]
    return out or ["a section was not judged (see verdict.json)"]


def _node_reasons(node: NodeVerdict | None, target: str) -> list[str]:
    if node is None:
        return ["node readiness was not judged"]
    out = [
        f"node {r.check_id}: {one_line(r.observed, 120)}" for r in node.failed if r.target == target
    ]
    return out + [f"node: {one_line(e, 200)}" for e in node.errors]


def _vuln_reasons(found: VulnVerdict | None, target: str) -> list[str]:
    if found is None:
        return ["vulnerabilities were not judged"]
    out = [blocking_line(j) for j in found.blocking if j.finding.target == target]
    return out + [f"vulnerabilities: {one_line(e, 200)}" for e in found.errors]


def audit_lines(audit: Audit) -> list[str]:
    """The text report: one line per channel image, its blocking lines under it."""
    if not audit.images:
        return [f"no channel parameters found in {audit.region}"]
    lines = []
    for a in audit.images:
        e = a.entry
        head = f"{audit.region}  {e.channel:<10} {_what(e)}  {e.image}"
        if a.verdict is None:
            lines.append(f"{head}  would re-validate")
            continue
        parts = ", ".join(f"{verdicts.LABEL[n]} {a.sections[n]}" for n in a.sections)
        lines.append(f"{head}  {a.verdict}" + (f" ({parts})" if parts else ""))
        lines += [f"    {r}" for r in a.reasons]
    failing = [a for a in audit.images if a.verdict not in (None, Outcome.PASS.value)]
    if failing:
        lines.append(
            f"{len(failing)} channel image(s) no longer pass or could not be validated: nothing "
            "was revoked; decide with `invoke revoke --ami <id> --reason ...`"
        )
    return lines


def write_summary(audit: Audit) -> None:
    """Under GitHub Actions, the report as the job's step summary (inert Markdown)."""
    if github.active():
        lines = [
            "### Channel audit",
            "",
            *(f"- {drift.inert(line.strip())}" for line in audit_lines(audit)),
        ]
        github.append_step_summary("\n".join(lines) + "\n")
