"""``invoke validate``: tagged test instances, one Inspector CIS scan, the gate, and cleanup.

One run = one or more AMIs, one scan configuration, one run ID on everything it creates.
Cleanup runs on every path (normal end, error, SIGINT, SIGTERM) unless ``keep`` is set.
Every trust problem becomes an ERROR verdict with reports written, never a pass.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline import gate, heartbeat, outputs, policy, results, support
from pipeline.aws import (
    AwsClients,
    BotoCoreError,
    ClientError,
    aws_error,
    boundary,
    ec2,
    iam,
    inspector,
    is_aws_endpoint,
    ssm,
)
from pipeline.aws.account import caller_account
from pipeline.aws.images import Image, describe_image, tag_image, untag_image
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError, ExitCode, PipelineError, ScanError
from pipeline.evidence import store as evidence_store
from pipeline.packer import check_level
from pipeline.polling import BACKOFF, SCAN_WAIT, SSM_WAIT, Schedule, poll_until
from pipeline.runs import check_run_id, git_commit, new_run_id
from pipeline.settings import as_count, as_level, as_seconds, evidence_settings, pick, writable_dir
from pipeline.setup import MANAGED_PROFILE, SetupSettings, run_setup
from pipeline.tags import HEARTBEAT_TAG, MANAGED_TAG, MANAGED_VALUE

PIPELINE_NAME = "eks-cis-ami-pipeline"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
DEFAULT_INSTANCE_TYPES = {"x86_64": "m6i.large", "arm64": "m7g.large"}


@dataclass(frozen=True)
class ValidateSettings:
    amis: tuple[str, ...]
    level: int = 2
    out_dir: Path = Path("out")
    policy_dir: Path = Path("policies/exceptions")
    run_id: str | None = None  # None: a new ID; else this run's ID (build's, in the chain)
    resume: bool = False  # ``--run-id``: continue an earlier run that must exist
    instance_profile: str | None = None
    subnet_id: str | None = None
    security_group_id: str | None = None  # default: a per-run group with no ingress
    enable_inspector: bool = False
    keep: bool = False
    public_ip: bool = False
    local: bool = False  # the endpoint is the project's local AWS: reports and tags say so
    instance_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INSTANCE_TYPES))
    ssm_timeout_s: float = 900
    scan_timeout_s: float = 2700
    enable_timeout_s: float = 300
    poll_max_s: float = 30
    ttl_minutes: int = 120
    evidence_bucket: str | None = None  # default: the bucket ``invoke setup`` creates
    signing_key: str | None = None  # KMS alias/ID/ARN; default: the alias setup creates
    # Poll SSM and the scan on real AWS's schedules (SSM_WAIT, SCAN_WAIT); None: on real AWS
    # only (the local AWS's scans take seconds unless a scenario scripts real latencies).
    real_aws_polling: bool | None = None
    # The caller made ``run_id`` just now (as the chain does): no earlier validate used it.
    run_id_is_new: bool = False


@dataclass(frozen=True)
class Runtime:
    """The outside world, injectable: time, sleeping and output."""

    echo: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


class Interrupted(PipelineError):
    """SIGTERM/SIGINT arrived; everything created was cleaned up. Exit 130 (SIGINT) or 143."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; cleaned up")
        self.exit_code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


class _Signalled(BaseException):
    """Raised by the signal handler. A BaseException, so no ``except Exception`` on the way
    (botocore retries any Exception a send raises) can swallow it; ``_run`` turns it into
    Interrupted once the cleanup has run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def run_validate(settings: ValidateSettings, clients: AwsClients, rt: Runtime) -> gate.Verdict:
    """Validate AMIs (see ``_run``); botocore errors become one-line pipeline errors."""
    with boundary("validate"):
        return _run(settings, clients, rt)


def _run(settings: ValidateSettings, clients: AwsClients, rt: Runtime) -> gate.Verdict:
    """Validate every AMI in one scan; write reports into ``settings.out_dir``; return the verdict.

    Raises ConfigError (exit 2) for bad input found in preflight, ScanError (exit 4) when
    Inspector is not enabled, Interrupted on a signal. Trust problems after launch come back as
    an ERROR verdict (exit 4) with the reports written.
    """
    check_level(settings.level)
    if not settings.amis:
        raise ConfigError("--ami: give at least one AMI ID")
    out = outputs.ensure_dir(settings.out_dir)
    if settings.resume and not settings.run_id:
        raise ConfigError("--run-id: give the ID of the run to resume")
    run_id = check_run_id(settings.run_id) if settings.run_id else new_run_id(rt.now())
    # Reports and tags say when the endpoint is not AWS's own (the project's local AWS).
    local = settings.local or not is_aws_endpoint(clients.endpoint_url)
    settings = replace(settings, local=local)
    account = caller_account(clients)
    rt.echo(f"run {run_id}: account {account}, region {clients.region}")
    images = [_preflight_image(clients, ami) for ami in dict.fromkeys(settings.amis)]
    for image in images:  # Inspector's CIS scanning dropped AL2: refuse before creating anything
        if image.platform is not None:
            support.check_real_aws([image.platform], real_aws=not local, what=f"--ami {image.id}")
    policies = policy.load_all(policy.discover(settings.policy_dir))
    for image in images:
        if image.platform not in policies:
            raise ConfigError(f"{image.id}: no exceptions policy for {image.platform}")
    bucket, key_id, described = _evidence_store(clients, settings, account, rt)
    _ensure_inspector(clients, account, settings, rt)
    profile = _instance_profile(clients, settings, described)
    if settings.resume:
        _check_resumable(clients, settings, run_id, images, rt)
    _clear_previous_run(out, rt)

    context: dict[str, Any] = {
        "run_id": run_id,
        "account": account,
        "region": clients.region,
        "requested_level": f"LEVEL_{settings.level}",  # verdict.json's "level" is the scan's
        "endpoint": clients.endpoint_url,
        "local": local,
        "amis": [],
    }
    try:
        # The heartbeat stops first (innermost), then cleanup deletes what it kept alive.
        beat = heartbeat.Heartbeat(partial(ec2.write_tags, clients), now=rt.now, echo=rt.echo)
        with ExitStack() as cleanup, _signals_raise(), _beating(beat):
            _supersede_verdicts(clients, images, run_id, rt)
            verdict = _scan_and_gate(
                clients,
                settings,
                rt,
                run_id,
                account,
                images,
                policies,
                profile,
                context,
                cleanup,
                beat,
            )
            if settings.keep:
                rt.echo("--keep: leaving the instances, security group and scan configuration")
                cleanup.pop_all()
    except (PipelineError, ClientError, BotoCoreError, _Signalled) as caught:
        # Nothing is lost: the run's context and the reason go into an ERROR verdict on disk
        # (a botocore error that escaped an aws/ function too: wrapped here, not only outside).
        operation = getattr(caught, "operation_name", None)
        where = f"validate: {operation}" if operation else "validate"
        if isinstance(caught, _Signalled):
            exc: PipelineError = Interrupted(caught.signum)
        elif isinstance(caught, PipelineError):
            exc = caught
        else:
            exc = aws_error(where, caught)
        failed = gate.evaluate(
            [], {}, rt.now().date(), level=settings.level, problems=[f"run aborted: {exc}"]
        )
        context["exit_code"] = int(exc.exit_code)  # verdict.json: the code the process exits with
        outputs.write_reports(_finish(failed, context, clients), out)
        _echo_retries(clients, rt)
        if exc is caught:
            raise
        raise exc from caught
    verdict = _finish(verdict, context, clients)
    arm = [i.id for i in images if i.architecture == "arm64"]
    if arm:
        # https://docs.aws.amazon.com/inspector/latest/user/scanning-cis.html
        note = (
            f"{', '.join(arm)}: arm64. Inspector's CIS checks are written for x86_64; on ARM some "
            "may not be evaluated, so this scan is weaker evidence than an x86_64 one"
        )
        verdict = replace(verdict, warnings=(*verdict.warnings, note))
    paths = outputs.write_reports(verdict, out)
    try:
        pointers = evidence_store.publish(
            clients,
            bucket=bucket,
            key_id=key_id,
            account=account,
            run_id=run_id,
            level=verdict.level or settings.level,  # the scan's securityLevel, never the flag
            local=local,
            now=rt.now(),
            out_dir=out,
            images=images,
            verdict=verdict,
            policies=policies,
            commit=git_commit(),
            echo=rt.echo,
            fresh_run=_fresh_run(settings),  # a new run ID: no earlier upload to step past
        )
        _tag_amis(clients, images, verdict, settings, run_id, policies, rt, pointers)
    except PipelineError as exc:
        # The AMIs keep PENDING (never an older PASS); the reports say what happened.
        note = f"the final verdict tags could not be written: {exc}"
        _record_exit_1(verdict, note, out)
        raise AwsError(f"{note} (the AMIs stay cis:verdict=PENDING)") from exc
    _echo_retries(clients, rt)
    outputs.publish(verdict, paths, rt.echo)
    leaked = [] if settings.keep else _leftovers(clients, run_id)
    if leaked:  # the verdict stands, but the run did not end cleanly: exit 1, and say so
        note = f"cleanup left {', '.join(leaked)}: `invoke reap` removes them"
        _record_exit_1(verdict, note, out)
        raise AwsError(note)
    return verdict


def _record_exit_1(verdict: gate.Verdict, note: str, out: Path) -> None:
    """Rewrite the reports for a run that ends with exit 1 after its verdict: the verdict
    stands, ``verdict.json`` says why the process exits 1 (``exit_code`` and a warning)."""
    ended = replace(
        verdict,
        context={**verdict.context, "exit_code": int(ExitCode.UNEXPECTED)},
        warnings=(*verdict.warnings, note),
    )
    outputs.write_reports(ended, out)


def _fresh_run(settings: ValidateSettings) -> bool:
    """Whether no earlier validate can have used this run's ID (made by this run, or new from the
    caller; never with --run-id): then nothing of the run is looked up before it is created."""
    return not settings.resume and (settings.run_id is None or settings.run_id_is_new)


def _check_resumable(
    clients: AwsClients, settings: ValidateSettings, run_id: str, images: list[Image], rt: Runtime
) -> None:
    """``--run-id``: the earlier run must exist, and its scan must be of this level and targets.

    Raises ConfigError (exit 2) naming what differs; a resumed run never reuses a scan
    configuration of another level or of other targets.
    """
    configs = inspector.describe_configurations(clients, f"cis-validate-{run_id}")
    live = ec2.run_instances(clients, run_id)
    if not configs and not live:
        raise ConfigError(
            f"--run-id {run_id}: no earlier run has this ID (no live test instance or scan "
            "configuration carries it; a finished run cleans up after itself); leave out "
            "--run-id to start a fresh run"
        )
    want = f"LEVEL_{settings.level}"
    for config in configs:
        if config.level != want:
            raise ConfigError(
                f"--run-id {run_id}: its scan configuration {config.arn} is a {config.level} "
                f"scan, not {want}; a resumed run never reuses a scan of another level: leave "
                "out --run-id to start a fresh run"
            )
        if config.target_tags != {ec2.RUN_TAG: [run_id]}:
            raise ConfigError(
                f"--run-id {run_id}: its scan configuration {config.arn} targets "
                f"{config.target_tags}, not this run's instances: leave out --run-id"
            )
    others = sorted({i.ami_id for i in live} - {image.id for image in images})
    if others:
        raise ConfigError(
            f"--run-id {run_id}: the earlier run also has test instances of {', '.join(others)}; "
            "resume with the same --ami list, or leave out --run-id"
        )
    rt.echo(
        f"resuming run {run_id}: {len(live)} live test instance(s), "
        f"{len(configs)} scan configuration(s)"
    )


# What one run writes into --out; removed at the start of the next, so that --out never mixes
# an earlier run's evidence with a later run's verdict.
RUN_FILES = ("verdict.json", "junit.xml", "summary.md")
RUN_DIRS = ("evidence",)


def _clear_previous_run(out: Path, rt: Runtime) -> None:
    """Remove the previous run's reports and evidence from ``out`` (links are unlinked, never
    followed)."""
    removed = []
    for name in RUN_FILES + RUN_DIRS:
        path = out / name
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
            else:
                continue
        except OSError as exc:
            raise ConfigError(
                f"--out {out}: cannot remove the previous run's {name}: {exc}"
            ) from exc
        removed.append(name)
    if removed:
        rt.echo(f"{out}: removed the previous run's {', '.join(removed)}")


def _supersede_verdicts(clients: AwsClients, images: list[Image], run_id: str, rt: Runtime) -> None:
    """Before scanning, replace every AMI's verdict tags by PENDING for this run.

    An aborted, failing or untaggable re-validation can then never leave an older PASS in
    force. Raises AwsError (exit 1) when the tags cannot be written: nothing is scanned then.
    """
    for image in images:
        stale = [k for k in image.tags if k.startswith("cis:") and k not in PENDING_KEYS]
        tag_image(clients, image.id, {"cis:verdict": "PENDING", "cis:run-id": run_id})
        untag_image(clients, image.id, stale)
        rt.echo(f"{image.id}: cis:verdict=PENDING until run {run_id} gives its verdict")


PENDING_KEYS = ("cis:verdict", "cis:run-id")


def _preflight_image(clients: AwsClients, ami_id: str) -> Image:
    try:
        image = describe_image(clients, ami_id)
    except AwsError as exc:
        raise ConfigError(f"--ami {ami_id}: {exc}") from exc
    if image.state != "available":
        raise ConfigError(f"--ami {ami_id}: image is {image.state}, not available")
    if image.platform is None:
        raise ConfigError(
            f"--ami {ami_id}: platform unknown (tag cis-ami:platform or an EKS AL2/AL2023 name)"
        )
    if image.architecture not in ("x86_64", "arm64"):
        raise ConfigError(f"--ami {ami_id}: architecture {image.architecture} is not supported")
    return image


def _ensure_inspector(
    clients: AwsClients, account: str, settings: ValidateSettings, rt: Runtime
) -> None:
    status = inspector.ec2_scanning_status(clients, account)
    if status == "ENABLED":
        return
    if not settings.enable_inspector and status != "ENABLING":
        raise ScanError(
            f"Amazon Inspector EC2 scanning is {status} in {account}/{clients.region}: run "
            f"`aws inspector2 enable --resource-types EC2 --region {clients.region}` or pass "
            "--enable-inspector"
        )
    if status != "ENABLING":
        rt.echo("enabling Amazon Inspector EC2 scanning")
        inspector.enable_ec2_scanning(clients, account)
    final = _poll(
        lambda: inspector.ec2_scanning_status(clients, account),
        lambda s: s == "ENABLED",
        settings.enable_timeout_s,
        lambda s: f"Inspector EC2 scanning {s}",
        settings,
        rt,
    )
    if final != "ENABLED":
        raise ScanError(f"Amazon Inspector EC2 scanning still {final} after waiting")


def _evidence_store(
    clients: AwsClients, settings: ValidateSettings, account: str, rt: Runtime
) -> tuple[str, str, iam.InstanceProfile | None]:
    """The evidence bucket, the signing key ARN and, when setup read it, the test-instance
    profile; on the local AWS ``invoke setup`` runs first.

    A run checks what it relies on (the bucket exists and is the account's, it is versioned, the
    key can sign); the other protections are ``invoke setup``'s (``--dry-run`` audits them).
    Raises ConfigError (exit 2) when the bucket or key is missing, before anything is created.
    """
    if settings.local:
        done = run_setup(
            SetupSettings(
                evidence_bucket=settings.evidence_bucket,
                signing_key=settings.signing_key,
                manage_instance_profile=settings.instance_profile is None,
                account=account,
                run_checks_only=True,
            ),
            clients,
            rt.echo,
        )
        assert done.key_arn is not None  # not a dry run
        return done.bucket, done.key_arn, done.scan_profile
    bucket = settings.evidence_bucket or evidence_store.default_bucket(account, clients.region)
    key = settings.signing_key or evidence_store.DEFAULT_KEY_ALIAS
    check = SetupSettings(
        evidence_bucket=bucket, signing_key=key, dry_run=True, account=account, run_checks_only=True
    )
    planned = run_setup(check, clients, lambda _: None)
    absent = [c for c in planned.changes if c.startswith("create ")]
    if absent or planned.key_arn is None:
        raise ConfigError(
            f"evidence store not ready ({'; '.join(absent)}): run `invoke setup` "
            "(or set pipeline.evidence_bucket / pipeline.signing_key)"
        )
    for change in planned.changes:  # protections missing: worth fixing, not worth a refusal
        rt.echo(f"WARNING  evidence store: `invoke setup` would fix: {change}")
    return bucket, planned.key_arn, None


def _instance_profile(
    clients: AwsClients, settings: ValidateSettings, described: iam.InstanceProfile | None = None
) -> iam.InstanceProfile:
    """The test instances' profile, judged by what its role's policy documents grant.

    ``described``: what setup read of the project-managed profile moments ago (every policy
    document, as ``iam.describe_profile`` reads them); it is used instead of reading it again.
    """
    name = settings.instance_profile or MANAGED_PROFILE
    try:
        if described is not None and described.name == name and described.by_documents:
            profile = described
        else:
            profile = iam.describe_profile(clients, name)
    except ConfigError:
        if settings.instance_profile:
            raise
        raise ConfigError(
            f"--instance-profile: none given and the project-managed {MANAGED_PROFILE} does not "
            "exist: run `invoke setup --manage-instance-profile` or pass --instance-profile"
        ) from None
    if profile.missing:
        holder = f"role {profile.role}" if profile.role else "it has no role, so it"
        raise ConfigError(
            f"--instance-profile {profile.name}: {holder} does not grant "
            f"{', '.join(profile.missing)} (by any managed or inline policy); without the SSM "
            "core actions the instance never registers and without the inspector2 CIS session "
            "actions Inspector reports zero checks in silence (AWS grants both in "
            f"{iam.SSM_CORE} and {iam.CIS_POLICY}), so the pipeline refuses to scan with it"
        )
    return profile


def _scan_and_gate(
    clients: AwsClients,
    settings: ValidateSettings,
    rt: Runtime,
    run_id: str,
    account: str,
    images: list[Image],
    policies: Mapping[Platform, policy.ExceptionsPolicy],
    profile: iam.InstanceProfile,
    context: dict[str, Any],
    cleanup: ExitStack,
    beat: heartbeat.Heartbeat,
) -> gate.Verdict:
    today = rt.now().date()
    instances = _launch_all(clients, settings, rt, run_id, images, profile, context, cleanup, beat)
    chosen = {i: policies[img.platform] for i, img in instances.items() if img.platform}
    context["target_labels"] = {
        i: f"{img.id} {img.platform.short if img.platform else '?'}/{img.architecture}"
        for i, img in instances.items()
    }
    architectures = {i: str(img.architecture) for i, img in instances.items()}
    problems = _wait_ssm(clients, settings, rt, list(instances))
    if problems:
        return gate.evaluate([], chosen, today, level=settings.level, problems=problems)

    config_arn = _scan_configuration(clients, settings, rt, run_id, cleanup)
    context["scan_configuration_arn"] = config_arn
    scan = _poll(
        lambda: inspector.find_scan(clients, config_arn),
        lambda s: s is not None and s.status in TERMINAL,
        settings.scan_timeout_s,
        lambda s: f"scan {s.status}" if s else "scan not listed yet",
        settings,
        rt,
        _schedule(settings, SCAN_WAIT),
    )
    if scan is None:
        return gate.evaluate(
            [], chosen, today, level=settings.level, problems=[f"no scan appeared for {config_arn}"]
        )
    context["scan_arn"] = scan.scan_arn
    evidence = Path(settings.out_dir) / "evidence"
    outputs.ensure_dir(evidence)
    outputs.write_json(evidence / "scan.json", scan.raw)
    outputs.write_json(
        evidence / "run.json",
        {
            "run_id": run_id,
            "requested_level": f"LEVEL_{settings.level}",
            "local": settings.local,
            "architectures": architectures,
            "target_labels": context["target_labels"],
        },
    )
    problems = _scan_problems(scan, settings)
    problems += _interference(clients, run_id, list(instances), config_arn)
    targets = inspector.scan_targets(clients, scan.scan_arn) if scan.status in TERMINAL else []
    outputs.write_json(evidence / "targets.json", [t.raw for t in targets])
    problems += _target_problems(targets, list(instances))
    pages = [
        page
        for instance in instances
        for page in inspector.result_pages(clients, scan.scan_arn, account, instance)
    ]
    outputs.write_json(evidence / "results.json", pages)
    rt.echo(f"collected {sum(len(p.get('scanResultDetails', [])) for p in pages)} results")
    try:
        inspector.download_report(clients, scan.scan_arn, evidence / "cis-report.csv")
    except PipelineError as exc:  # the report is part of the evidence: without it, no PASS
        problems.append(f"CIS report not downloaded: {exc} (results are in evidence/)")
    parsed = results.parse_document(pages, str(evidence / "results.json"))
    facts, fact_problems = _scan_facts(scan, targets)
    return gate.evaluate(
        parsed.rows,
        chosen,
        today,
        level=settings.level,
        facts=facts,
        expected_targets=list(instances),
        problems=problems + fact_problems + list(parsed.problems),
        architectures=architectures,
    )


def _scan_facts(
    scan: inspector.CisScan, targets: list[inspector.ScanTarget]
) -> tuple[results.ScanFacts | None, list[str]]:
    """Inspector's own account of the scan (level, per-target counts, totals) for the gate."""
    try:
        level = results.level_number(scan.raw.get("securityLevel"), f"scan {scan.scan_arn}")
    except ConfigError as exc:
        return None, [f"{exc}: the scan's level cannot be established"]
    counts = {
        t.target: results.StatusCounts(passed=t.passed, failed=t.failed, skipped=t.skipped)
        for t in targets
    }
    facts = results.ScanFacts(level, counts, scan.total_checks, scan.failed_checks, scan.scan_arn)
    return facts, []


def _launch_all(
    clients: AwsClients,
    settings: ValidateSettings,
    rt: Runtime,
    run_id: str,
    images: list[Image],
    profile: iam.InstanceProfile,
    context: dict[str, Any],
    cleanup: ExitStack,
    beat: heartbeat.Heartbeat,
) -> dict[str, Image]:
    if settings.subnet_id:
        vpc_id, subnet_id = ec2.subnet_vpc(clients, settings.subnet_id), settings.subnet_id
    else:
        vpc_id, subnet_id = ec2.default_subnet(clients)
    tags = {
        ec2.RUN_TAG: run_id,
        "cis-validate:pipeline": PIPELINE_NAME,
        MANAGED_TAG: MANAGED_VALUE,
        HEARTBEAT_TAG: heartbeat.stamp(rt.now()),
    }
    sg_id = settings.security_group_id or _run_security_group(
        clients, rt, vpc_id, run_id, tags, cleanup, fresh=_fresh_run(settings)
    )
    if not settings.security_group_id:
        beat.add([sg_id])
    # A run ID made by this run names nothing yet: look for an earlier run's instances only
    # when the ID came from outside (--run-id, the chain's build).
    fresh = _fresh_run(settings)
    existing = {} if fresh else {i.ami_id: i.id for i in ec2.run_instances(clients, run_id)}
    expires = (rt.now() + timedelta(minutes=settings.ttl_minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    launched: dict[str, Image] = {}
    for image in images:
        instance_id = existing.get(image.id)
        if instance_id:
            rt.echo(f"{image.id}: reusing test instance {instance_id} of run {run_id}")
        else:
            spec = ec2.LaunchSpec(
                ami_id=image.id,
                instance_type=settings.instance_types[str(image.architecture)],
                instance_profile=profile.name,
                subnet_id=subnet_id,
                security_group_id=sg_id,
                tags={
                    **tags,
                    "cis-validate:ami-id": image.id,
                    "cis-validate:expires-at": expires,
                    "Name": f"cis-validate {image.id}",
                },
                ttl_minutes=settings.ttl_minutes,
                public_ip=settings.public_ip,
                root_device=(image.root_device_name, image.root_volume_size),
            )
            instance_id = ec2.launch(clients, spec)
            rt.echo(f"{image.id}: launched test instance {instance_id}")
        launched[instance_id] = image
        context["amis"].append(
            {
                "ami": image.id,
                "instance": instance_id,
                "platform": image.platform.value if image.platform else None,
                "architecture": image.architecture,
            }
        )
    ids = list(launched)
    cleanup.callback(_terminate, clients, rt, ids)
    beat.add(ids)
    beat.start()
    ec2.wait_running(clients, ids)
    return launched


def _run_security_group(
    clients: AwsClients,
    rt: Runtime,
    vpc_id: str,
    run_id: str,
    tags: dict[str, str],
    cleanup: ExitStack,
    *,
    fresh: bool = False,
) -> str:
    """The run's own security group (no ingress), found or created, deleted at cleanup.

    ``fresh``: the run ID is this run's own, so no group can carry its name yet.
    """
    name = f"cis-validate-{run_id}"
    sg_id = None if fresh else ec2.find_security_group(clients, vpc_id, name)
    if sg_id is None:
        sg_id = ec2.create_security_group(clients, vpc_id, name, tags)
    cleanup.callback(
        _quietly, rt, f"delete security group {sg_id}", ec2.delete_security_group, clients, sg_id
    )
    return sg_id


def _wait_ssm(
    clients: AwsClients, settings: ValidateSettings, rt: Runtime, ids: list[str]
) -> list[str]:
    rt.echo(f"waiting for SSM to see {len(ids)} instance(s) Online")
    status = _poll(
        lambda: ssm.ping_status(clients, ids),
        lambda s: all(s.get(i) == "Online" for i in ids),
        settings.ssm_timeout_s,
        lambda s: f"{sum(v == 'Online' for v in s.values())}/{len(ids)} Online",
        settings,
        rt,
        _schedule(settings, SSM_WAIT),
    )
    missing = [i for i in ids if status.get(i) != "Online"]
    return [
        f"{i}: not Online in SSM after {settings.ssm_timeout_s:.0f}s (status "
        f"{status.get(i, 'unregistered')}); likely causes: the instance profile lacks "
        f"{iam.SSM_CORE}, no route to the SSM endpoints (VPC endpoints or NAT), or the SSM agent "
        "is not running"
        for i in missing
    ]


def _scan_configuration(
    clients: AwsClients, settings: ValidateSettings, rt: Runtime, run_id: str, cleanup: ExitStack
) -> str:
    name = f"cis-validate-{run_id}"
    # Reuse (never duplicate) an earlier run's configuration; a run ID made by this run has none.
    found = [] if _fresh_run(settings) else inspector.find_configurations(clients, name)
    if found:
        arn = found[0]
        rt.echo(f"reusing scan configuration {arn}")
    else:
        arn = inspector.create_one_time_scan(
            clients,
            scan_name=name,
            level=settings.level,
            target_tags={ec2.RUN_TAG: [run_id]},
            tags={
                ec2.RUN_TAG: run_id,
                "cis-validate:pipeline": PIPELINE_NAME,
                MANAGED_TAG: MANAGED_VALUE,
                HEARTBEAT_TAG: heartbeat.stamp(rt.now()),
            },
        )
        rt.echo(f"created one-time LEVEL_{settings.level} CIS scan configuration {arn}")
    cleanup.callback(
        _quietly,
        rt,
        f"delete scan configuration {arn}",
        inspector.delete_configuration,
        clients,
        arn,
    )
    return arn


def _interference(
    clients: AwsClients, run_id: str, instances: list[str], config_arn: str
) -> list[str]:
    """What was changed from outside while the scan ran (fail closed: exit 4). A test instance
    that stopped or went away, or a deleted scan configuration, leaves results nobody can
    vouch for (ec2:DescribeInstances, inspector2:ListCisScanConfigurations)."""
    running = {i.id for i in ec2.run_instances(clients, run_id) if i.state == "running"}
    problems = [
        f"{i}: no longer running after the scan (terminated or stopped from outside?): its "
        "results cannot be trusted"
        for i in instances
        if i not in running
    ]
    if config_arn not in inspector.find_configurations(clients, f"cis-validate-{run_id}"):
        problems.append(f"scan configuration {config_arn} was deleted from outside during the scan")
    return problems


def _leftovers(clients: AwsClients, run_id: str) -> list[str]:
    """What the run created that its cleanup could not delete (ec2:DescribeInstances,
    ec2:DescribeSecurityGroups, inspector2:ListCisScanConfigurations)."""
    left = [i.id for i in ec2.run_instances(clients, run_id) if i.state in ("pending", "running")]
    groups = ec2.tagged_security_groups(clients, ec2.RUN_TAG)
    left += [group for group, tags in groups.items() if tags.get(ec2.RUN_TAG) == run_id]
    return left + inspector.find_configurations(clients, f"cis-validate-{run_id}")


def _scan_problems(scan: inspector.CisScan, settings: ValidateSettings) -> list[str]:
    if scan.status not in TERMINAL:
        return [f"scan {scan.scan_arn} still {scan.status} after {settings.scan_timeout_s:.0f}s"]
    if scan.status != "COMPLETED":
        return [f"scan {scan.scan_arn} ended {scan.status}"]
    if not scan.total_checks:
        return [
            f"scan {scan.scan_arn} COMPLETED with zero checks: the instance role probably lacks "
            f"{iam.CIS_POLICY}, or another scan configuration targets the same instances"
        ]
    return []


_REASON_HINT = {
    "SSM_UNMANAGED": ": Inspector could not reach it through SSM (agent, profile, endpoints)",
    "UNSUPPORTED_OS": ": Inspector has no CIS benchmark for this operating system",
    "SCAN_IN_PROGRESS": ": the instance never reported back (role without the CIS policy?)",
}


def _target_problems(targets: list[inspector.ScanTarget], instances: list[str]) -> list[str]:
    seen: dict[str, inspector.ScanTarget] = {}
    problems = []
    for item in targets:  # which of two different answers is Inspector's? Neither, then.
        if item.target in seen and seen[item.target] != item:
            problems.append(
                f"{item.target}: Inspector lists this target more than once, with different "
                "status or counts"
            )
        seen.setdefault(item.target, item)
    for instance in instances:
        target = seen.get(instance)
        if target is None:
            problems.append(f"{instance}: not a target of the scan (tags not matched?)")
        elif target.status != "COMPLETED" or target.reason:
            # The service reports e.g. COMPLETED + SSM_UNMANAGED: a reason means "not scanned".
            hint = _REASON_HINT.get(target.reason or "", "")
            problems.append(
                f"{instance}: scan target {target.status} ({target.reason or 'no reason given'})"
                f"{hint}"
            )
    return problems


def _schedule(settings: ValidateSettings, real_aws: Schedule) -> Schedule:
    """``real_aws`` (its intervals capped by ``poll_max_s``) unless polling the local AWS, whose
    scans take seconds: there 2 s doubling up to ``poll_max_s``."""
    cap = settings.poll_max_s
    paced = settings.real_aws_polling
    if paced is None:
        paced = not settings.local
    if not paced:
        return replace(BACKOFF, interval_s=min(BACKOFF.interval_s, cap), max_interval_s=cap)
    interval = min(real_aws.interval_s, cap)
    return replace(real_aws, interval_s=interval, max_interval_s=min(real_aws.max_interval_s, cap))


def _poll(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout_s: float,
    describe: Callable[[Any], str],
    settings: ValidateSettings,
    rt: Runtime,
    schedule: Schedule | None = None,
) -> Any:
    return poll_until(
        fetch,
        done,
        timeout_s=timeout_s,
        describe=describe,
        sleep=rt.sleep,
        clock=rt.clock,
        echo=rt.echo,
        schedule=schedule or _schedule(settings, BACKOFF),
    )


def _terminate(clients: AwsClients, rt: Runtime, ids: list[str]) -> None:
    _quietly(rt, f"terminate {', '.join(ids)}", ec2.terminate, clients, ids)
    _quietly(rt, "wait for termination", ec2.wait_terminated, clients, ids)


def _quietly(rt: Runtime, what: str, fn: Callable[..., object], *args: object) -> None:
    """Cleanup step: a failure is reported, never raised (it must not hide the verdict)."""
    try:
        fn(*args)
        rt.echo(f"cleanup: {what}")
    except Exception as exc:  # noqa: BLE001 - cleanup must go on; the failure is reported
        rt.echo(f"WARNING  cleanup failed: {what}: {exc}")


@contextmanager
def _beating(beat: heartbeat.Heartbeat) -> Iterator[None]:
    """Stop the run's heartbeat on every way out (it starts once the instances exist)."""
    try:
        yield
    finally:
        beat.stop()


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into Interrupted so ``finally``/ExitStack cleanup runs; further
    signals are ignored until cleanup is done (a second Ctrl-C must not leak the instances)."""
    signals = (signal.SIGINT, signal.SIGTERM)

    def handler(signum: int, _: FrameType | None) -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
        raise _Signalled(signum)

    try:
        previous = {sig: signal.signal(sig, handler) for sig in signals}
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _finish(verdict: gate.Verdict, context: dict[str, Any], clients: AwsClients) -> gate.Verdict:
    """The verdict with the run's context, its AWS call and retry counts (in verdict.json)."""
    calls = {
        "aws_calls": clients.calls.as_dict(),
        "aws_calls_total": clients.calls.total,
        "aws_retries": clients.calls.retries_as_dict(),
        "aws_retries_total": clients.calls.retries_total,
    }
    return replace(verdict, context={**verdict.context, **context, **calls})


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
    by_ami: dict[str, str] = {}
    amis = verdict.context.get("amis", [])
    outcome = {t.target: t.verdict.value for t in verdict.targets}
    for entry in amis if isinstance(amis, list) else []:
        by_ami[entry["ami"]] = outcome.get(entry["instance"], gate.Outcome.ERROR.value)
    for image in images:
        result = by_ami.get(image.id, gate.Outcome.ERROR.value)
        if verdict.verdict is gate.Outcome.ERROR and result == gate.Outcome.PASS.value:
            result = gate.Outcome.ERROR.value  # an untrusted scan proves nothing for any AMI
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


def validate_settings(
    config: Mapping[str, Any], root: Path, *, ami: str, **flags: Any
) -> ValidateSettings:
    """Build ValidateSettings from flags and the ``pipeline`` section of ``invoke.yaml``."""
    amis = tuple(a.strip() for a in (ami or "").split(",") if a.strip())
    if not amis:
        raise ConfigError("--ami: give one or more AMI IDs, comma-separated")
    bad = [a for a in amis if not a.startswith("ami-")]
    if bad:
        raise ConfigError(f"--ami {bad[0]}: not an AMI ID (ami-...)")
    section: Mapping[str, Any] = config.get("validate", {}) or {}
    types = {**DEFAULT_INSTANCE_TYPES, **(section.get("instance_types", {}) or {})}
    out_dir = Path(str(pick(flags.get("out"), config, "out", "out")))
    evidence = evidence_settings(config, os.environ, evidence_bucket=flags.get("evidence_bucket"))
    return ValidateSettings(
        amis=amis,
        level=as_level(pick(flags.get("level"), config, "level", 2)),
        out_dir=writable_dir(out_dir),
        policy_dir=root / str(config.get("policy_dir", "policies/exceptions")),
        run_id=flags.get("run_id") or None,
        resume=bool(flags.get("run_id")),
        instance_profile=pick(flags.get("instance_profile"), section, "instance_profile"),
        subnet_id=pick(flags.get("subnet_id"), section, "subnet_id"),
        security_group_id=pick(None, section, "security_group_id"),
        public_ip=bool(pick(None, section, "public_ip", False)),
        enable_inspector=bool(flags.get("enable_inspector")),
        keep=bool(flags.get("keep")),
        instance_types=types,
        ssm_timeout_s=as_seconds(
            pick(flags.get("ssm_timeout"), section, "ssm_timeout_s", 900), "--ssm-timeout"
        ),
        scan_timeout_s=as_seconds(
            pick(flags.get("scan_timeout"), section, "scan_timeout_s", 2700), "--scan-timeout"
        ),
        ttl_minutes=as_count(pick(None, section, "ttl_minutes", 120), "validate.ttl_minutes"),
        evidence_bucket=evidence.bucket,
        signing_key=evidence.signing_key,
    )
