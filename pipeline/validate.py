"""``invoke validate``: tagged test instances, one Inspector CIS scan, the gate, and cleanup.

One run = one or more AMIs, one scan configuration, one run ID on everything it creates.
Cleanup runs on every path (normal end, error, SIGINT, SIGTERM) unless ``keep`` is set.
Every trust problem becomes an ERROR verdict with reports written, never a pass.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline import gate, outputs, policy, results
from pipeline.aws import AwsClients, boundary, ec2, iam, inspector, is_aws_endpoint, ssm
from pipeline.aws.account import caller_account
from pipeline.aws.images import Image, describe_image, tag_image
from pipeline.build import new_run_id
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError, PipelineError, ScanError
from pipeline.packer import check_level
from pipeline.polling import poll_until

PIPELINE_NAME = "eks-cis-ami-pipeline"
MANAGED_PROFILE = "eks-cis-ami-pipeline-scan"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
DEFAULT_INSTANCE_TYPES = {"x86_64": "m6i.large", "arm64": "m7g.large"}


@dataclass(frozen=True)
class ValidateSettings:
    amis: tuple[str, ...]
    level: int = 2
    out_dir: Path = Path("out")
    policy_dir: Path = Path("policies/exceptions")
    run_id: str | None = None
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


@dataclass(frozen=True)
class Runtime:
    """The outside world, injectable: time, sleeping and output."""

    echo: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


class Interrupted(PipelineError):
    """SIGTERM/SIGINT arrived; everything created was cleaned up."""


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
    run_id = settings.run_id or new_run_id(rt.now())
    # Reports and tags say when the endpoint is not AWS's own (the project's local AWS).
    local = settings.local or not is_aws_endpoint(clients.endpoint_url)
    settings = replace(settings, local=local)
    account = caller_account(clients)
    rt.echo(f"run {run_id}: account {account}, region {clients.region}")
    images = [_preflight_image(clients, ami) for ami in dict.fromkeys(settings.amis)]
    policies = policy.load_all(policy.discover(settings.policy_dir))
    for image in images:
        if image.platform not in policies:
            raise ConfigError(f"{image.id}: no exceptions policy for {image.platform}")
    _ensure_inspector(clients, account, settings, rt)
    profile = _instance_profile(clients, settings)

    context: dict[str, Any] = {
        "run_id": run_id,
        "account": account,
        "region": clients.region,
        "level": f"LEVEL_{settings.level}",
        "endpoint": clients.endpoint_url,
        "local": local,
        "amis": [],
    }
    try:
        with ExitStack() as cleanup, _signals_raise():
            verdict = _scan_and_gate(
                clients, settings, rt, run_id, account, images, policies, profile, context, cleanup
            )
            if settings.keep:
                rt.echo("--keep: leaving the instances, security group and scan configuration")
                cleanup.pop_all()
    except PipelineError as exc:
        # Nothing is lost: the run's context and the reason go into an ERROR verdict on disk.
        failed = gate.evaluate([], {}, rt.now().date(), problems=[f"run aborted: {exc}"])
        outputs.write_reports(_finish(failed, context, clients), out)
        raise
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
    _tag_amis(clients, images, verdict, settings, run_id, policies, rt)
    outputs.publish(verdict, paths, rt.echo)
    return verdict


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


def _instance_profile(clients: AwsClients, settings: ValidateSettings) -> iam.InstanceProfile:
    if settings.instance_profile:
        profile = iam.describe_profile(clients, settings.instance_profile)
    else:
        profile = iam.ensure_scan_profile(
            clients, MANAGED_PROFILE, {"cis-validate:pipeline": PIPELINE_NAME}
        )
    if profile.missing:
        raise ConfigError(
            f"--instance-profile {profile.name}: role {profile.role} lacks "
            f"{', '.join(profile.missing)}; without {iam.CIS_POLICY} Inspector reports zero "
            "checks in silence, so the pipeline refuses to scan with it"
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
) -> gate.Verdict:
    today = rt.now().date()
    instances = _launch_all(clients, settings, rt, run_id, images, profile, context, cleanup)
    chosen = {i: policies[img.platform] for i, img in instances.items() if img.platform}
    context["target_labels"] = {
        i: f"{img.id} {img.platform.short if img.platform else '?'}/{img.architecture}"
        for i, img in instances.items()
    }
    problems = _wait_ssm(clients, settings, rt, list(instances))
    if problems:
        return gate.evaluate([], chosen, today, problems=problems)

    config_arn = _scan_configuration(clients, settings, rt, run_id, cleanup)
    context["scan_configuration_arn"] = config_arn
    scan = _poll(
        lambda: inspector.find_scan(clients, config_arn),
        lambda s: s is not None and s.status in TERMINAL,
        settings.scan_timeout_s,
        lambda s: f"scan {s.status}" if s else "scan not listed yet",
        settings,
        rt,
    )
    if scan is None:
        return gate.evaluate([], chosen, today, problems=[f"no scan appeared for {config_arn}"])
    context["scan_arn"] = scan.scan_arn
    evidence = Path(settings.out_dir) / "evidence"
    evidence.mkdir(parents=True, exist_ok=True)
    outputs.write_json(evidence / "scan.json", scan.raw)
    problems = _scan_problems(scan, settings)
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
    except PipelineError as exc:
        rt.echo(f"WARNING  CIS report not downloaded: {exc} (results are in evidence/)")
    parsed = results.parse_items(results.iter_items(pages, str(evidence / "results.json")))
    return gate.evaluate(
        parsed.rows,
        chosen,
        today,
        expected_targets=list(instances),
        problems=problems + list(parsed.problems),
    )


def _launch_all(
    clients: AwsClients,
    settings: ValidateSettings,
    rt: Runtime,
    run_id: str,
    images: list[Image],
    profile: iam.InstanceProfile,
    context: dict[str, Any],
    cleanup: ExitStack,
) -> dict[str, Image]:
    if settings.subnet_id:
        vpc_id, subnet_id = ec2.subnet_vpc(clients, settings.subnet_id), settings.subnet_id
    else:
        vpc_id, subnet_id = ec2.default_subnet(clients)
    tags = {ec2.RUN_TAG: run_id, "cis-validate:pipeline": PIPELINE_NAME}
    sg_id = settings.security_group_id or _run_security_group(
        clients, rt, vpc_id, run_id, tags, cleanup
    )
    existing = {i.ami_id: i.id for i in ec2.run_instances(clients, run_id)}
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
    ec2.wait_running(clients, ids)
    return launched


def _run_security_group(
    clients: AwsClients,
    rt: Runtime,
    vpc_id: str,
    run_id: str,
    tags: dict[str, str],
    cleanup: ExitStack,
) -> str:
    """The run's own security group (no ingress), found or created, deleted at cleanup."""
    name = f"cis-validate-{run_id}"
    sg_id = ec2.find_security_group(clients, vpc_id, name)
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
    found = inspector.find_configurations(clients, name)
    if found:
        arn = found[0]
        rt.echo(f"reusing scan configuration {arn}")
    else:
        arn = inspector.create_one_time_scan(
            clients,
            scan_name=name,
            level=settings.level,
            target_tags={ec2.RUN_TAG: [run_id]},
            tags={ec2.RUN_TAG: run_id, "cis-validate:pipeline": PIPELINE_NAME},
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
    seen = {t.target: t for t in targets}
    problems = []
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


def _poll(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout_s: float,
    describe: Callable[[Any], str],
    settings: ValidateSettings,
    rt: Runtime,
) -> Any:
    return poll_until(
        fetch,
        done,
        timeout_s=timeout_s,
        describe=describe,
        sleep=rt.sleep,
        clock=rt.clock,
        echo=rt.echo,
        max_interval_s=settings.poll_max_s,
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
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM into an exception so ``finally``/ExitStack cleanup runs."""

    def handler(signum: int, _: FrameType | None) -> None:
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}; cleaned up")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _finish(verdict: gate.Verdict, context: dict[str, Any], clients: AwsClients) -> gate.Verdict:
    """The verdict with the run's context and its AWS call counts (recorded in verdict.json)."""
    calls = {"aws_calls": clients.calls.as_dict(), "aws_calls_total": clients.calls.total}
    return replace(verdict, context={**verdict.context, **context, **calls})


def _tag_amis(
    clients: AwsClients,
    images: list[Image],
    verdict: gate.Verdict,
    settings: ValidateSettings,
    run_id: str,
    policies: Mapping[Platform, policy.ExceptionsPolicy],
    rt: Runtime,
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
            "cis:level": f"LEVEL_{settings.level}",
            "cis:policy-sha256": policies[image.platform].sha256 if image.platform else "none",
            "cis:validated-at": rt.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cis:run-id": run_id,
        }
        if settings.local:
            tags["cis:local"] = "true"
        try:
            tag_image(clients, image.id, tags)
            rt.echo(f"{image.id}: tagged cis:verdict={result}")
        except PipelineError as exc:
            rt.echo(f"WARNING  could not tag {image.id}: {exc}")
