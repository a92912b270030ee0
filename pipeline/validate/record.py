"""Record: PENDING on every AMI before the scan, then the verdict's reports, its signed evidence
and the AMIs' verdict tags; an aborted run's ERROR verdict; an exit 1 after the verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline import gate, outputs, policy
from pipeline.aws import AwsClients, BotoCoreError, ClientError, aws_error
from pipeline.aws.images import Image, tag_image, untag_image
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ExitCode, PipelineError
from pipeline.evidence import store as evidence_store
from pipeline.runs import git_commit
from pipeline.validate.cleanup import Interrupted, Signalled
from pipeline.validate.preflight import Run
from pipeline.validate.settings import Runtime, ValidateSettings, fresh_run

PENDING_KEYS = ("cis:verdict", "cis:run-id")


def run_context(run: Run, clients: AwsClients) -> dict[str, Any]:
    """verdict.json's context as the run starts; the steps add to it (``amis`` first)."""
    return {
        "run_id": run.run_id,
        "account": run.account,
        "region": clients.region,
        "requested_level": f"LEVEL_{run.settings.level}",  # verdict.json's "level" is the scan's
        "endpoint": clients.endpoint_url,
        "local": run.settings.local,
        "amis": [],
    }


def supersede_verdicts(clients: AwsClients, images: list[Image], run_id: str, rt: Runtime) -> None:
    """Before scanning, replace every AMI's verdict tags by PENDING for this run.

    An aborted, failing or untaggable re-validation can then never leave an older PASS in
    force. Raises AwsError (exit 1) when the tags cannot be written: nothing is scanned then.
    """
    for image in images:
        stale = [k for k in image.tags if k.startswith("cis:") and k not in PENDING_KEYS]
        tag_image(clients, image.id, {"cis:verdict": "PENDING", "cis:run-id": run_id})
        untag_image(clients, image.id, stale)
        rt.echo(f"{image.id}: cis:verdict=PENDING until run {run_id} gives its verdict")


def record_aborted(
    caught: PipelineError | ClientError | BotoCoreError | Signalled,
    context: dict[str, Any],
    run: Run,
    clients: AwsClients,
    rt: Runtime,
) -> PipelineError:
    """Write the ERROR verdict of a run stopped by ``caught``; the error the run raises.

    Nothing is lost: the run's context and the reason go into an ERROR verdict on disk (a
    botocore error that escaped an aws/ function too: wrapped here, not only outside).
    """
    operation = getattr(caught, "operation_name", None)
    where = f"validate: {operation}" if operation else "validate"
    if isinstance(caught, Signalled):
        exc: PipelineError = Interrupted(caught.signum)
    elif isinstance(caught, PipelineError):
        exc = caught
    else:
        exc = aws_error(where, caught)
    failed = gate.evaluate(
        [], {}, rt.now().date(), level=run.settings.level, problems=[f"run aborted: {exc}"]
    )
    context["exit_code"] = int(exc.exit_code)  # verdict.json: the code the process exits with
    outputs.write_reports(_finish(failed, context, clients), run.out)
    _echo_retries(clients, rt)
    return exc


def record_verdict(
    verdict: gate.Verdict, context: dict[str, Any], run: Run, clients: AwsClients, rt: Runtime
) -> gate.Verdict:
    """Write the reports, publish the signed evidence, tag the AMIs; the verdict as written.

    Raises AwsError (exit 1) when the evidence or the tags cannot be written: the AMIs keep
    PENDING (never an older PASS) and the reports say what happened.
    """
    verdict = _finish(verdict, context, clients)
    arm = [i.id for i in run.images if i.architecture == "arm64"]
    if arm:
        # https://docs.aws.amazon.com/inspector/latest/user/scanning-cis.html
        note = (
            f"{', '.join(arm)}: arm64. Inspector's CIS checks are written for x86_64; on ARM some "
            "may not be evaluated, so this scan is weaker evidence than an x86_64 one"
        )
        verdict = replace(verdict, warnings=(*verdict.warnings, note))
    paths = outputs.write_reports(verdict, run.out)
    settings = run.settings
    try:
        pointers = evidence_store.publish(
            clients,
            bucket=run.bucket,
            key_id=run.key_id,
            account=run.account,
            run_id=run.run_id,
            level=verdict.level or settings.level,  # the scan's securityLevel, never the flag
            local=settings.local,
            now=_judged_at(context) or rt.now(),  # the instant the verdict was made
            out_dir=run.out,
            images=run.images,
            verdict=verdict,
            policies=run.policies,
            commit=git_commit(),
            echo=rt.echo,
            fresh_run=fresh_run(settings),  # a new run ID: no earlier upload to step past
        )
        _tag_amis(clients, run.images, verdict, settings, run.run_id, run.policies, rt, pointers)
    except PipelineError as exc:
        # The AMIs keep PENDING (never an older PASS); the reports say what happened.
        note = f"the final verdict tags could not be written: {exc}"
        record_exit_1(verdict, note, run.out)
        raise AwsError(f"{note} (the AMIs stay cis:verdict=PENDING)") from exc
    _echo_retries(clients, rt)
    outputs.publish(verdict, paths, rt.echo)
    return verdict


def record_exit_1(verdict: gate.Verdict, note: str, out: Path) -> None:
    """Rewrite the reports for a run that ends with exit 1 after its verdict: the verdict
    stands, ``verdict.json`` says why the process exits 1 (``exit_code`` and a warning)."""
    ended = replace(
        verdict,
        context={**verdict.context, "exit_code": int(ExitCode.UNEXPECTED)},
        warnings=(*verdict.warnings, note),
    )
    outputs.write_reports(ended, out)


def retry_line(retries: Mapping[str, int]) -> str | None:
    """``AWS throttling: 6 retries (ListCisScans 2, ...)``, most retried first; None for none."""
    total = sum(retries.values())
    if not total:
        return None
    ranked = sorted(retries.items(), key=lambda kv: (-kv[1], kv[0]))
    detail = ", ".join(f"{op.split(':', 1)[-1]} {n}" for op, n in ranked)
    return f"AWS throttling: {total} {'retry' if total == 1 else 'retries'} ({detail})"


def _echo_retries(clients: AwsClients, rt: Runtime) -> None:
    line = retry_line(clients.calls.retries_as_dict())
    if line:
        rt.echo(line)


def _finish(verdict: gate.Verdict, context: dict[str, Any], clients: AwsClients) -> gate.Verdict:
    """The verdict with the run's context, its AWS call and retry counts (in verdict.json)."""
    calls = {
        "aws_calls": clients.calls.as_dict(),
        "aws_calls_total": clients.calls.total,
        "aws_retries": clients.calls.retries_as_dict(),
        "aws_retries_total": clients.calls.retries_total,
    }
    return replace(verdict, context={**verdict.context, **context, **calls})


def _tag_amis(
    clients: AwsClients,
    images: list[Image],
    verdict: gate.Verdict,
    settings: ValidateSettings,
    run_id: str,
    policies: Mapping[Platform, policy.ExceptionsPolicy],
    rt: Runtime,
    pointers: Mapping[str, Mapping[str, str]],
) -> None:
    by_ami = evidence_store.ami_outcomes(verdict)  # what the signed record says: all sections
    for image in images:
        result = by_ami.get(image.id, gate.Outcome.ERROR.value)
        tags = {
            "cis:verdict": result,
            "cis:scan-arn": str(verdict.context.get("scan_arn", "none")),
            "cis:level": f"LEVEL_{verdict.level}" if verdict.level else "unknown",
            "cis:policy-sha256": policies[image.platform].sha256 if image.platform else "none",
            "cis:validated-at": rt.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cis:run-id": run_id,
        }
        if settings.local:
            tags["cis:local"] = "true"
        tags.update(pointers.get(image.id, {}))  # where the signed record is
        tag_image(clients, image.id, tags)
        rt.echo(f"{image.id}: tagged cis:verdict={result}")


def _judged_at(context: dict[str, Any]) -> datetime | None:
    """When the gate judged (``run._judged``): the record's verification time."""
    value = context.get("judged_at")
    return datetime.fromisoformat(value) if isinstance(value, str) else None
