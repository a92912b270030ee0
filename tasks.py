"""Invoke tasks: the CLI release engineers and CI use. Thin: parse flags, call ``pipeline``.

Exit codes (the contract, mapped in one place, ``_exit_codes``): 0 pass; 1 unexpected error;
2 invalid input or configuration (Invoke's own parse errors too); 3 gate blocked or refused;
4 no trustworthy scan result; 130 SIGINT; 143 SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from invoke import Collection, Config, Context, Exit, ParseError, Program, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from pipeline.errors import ExitCode, PipelineError, Terminated, one_line  # noqa: E402


def _parse_errors_exit_2(step: Any) -> Any:
    """Invoke exits 1 on its own parse errors (unknown task or flag, missing value); the
    contract says 2. This file is imported before task arguments are parsed, so wrap the two
    parsing steps that raise ParseError and turn it into one ``error:`` line and exit 2."""
    if getattr(step, "_exit_2", False):  # imported twice (tests): wrap once
        return step

    def wrapper(self: Program) -> None:
        try:
            step(self)
            _refuse_nul(self)
        except ParseError as err:
            raise Exit(
                f"error: {one_line(str(err), 500)}", code=int(ExitCode.INVALID_INPUT)
            ) from None

    wrapper._exit_2 = True  # type: ignore[attr-defined]
    return wrapper


def _refuse_nul(program: Program) -> None:
    """A NUL byte can be no path, name or number (the OS refuses it in paths): a ParseError
    naming the flag, before any task runs, instead of a ValueError traceback deep inside."""
    contexts = [*(getattr(program, "core", None) or []), *(getattr(program, "tasks", None) or [])]
    for context in contexts:
        for arg in context.args.values():
            values = arg.value if isinstance(arg.value, list) else [arg.value]
            if any(isinstance(v, str) and "\x00" in v for v in values):
                flag = ("-" if len(arg.name) == 1 else "--") + arg.name.replace("_", "-")
                raise ParseError(f"{flag}: contains a NUL byte")


def _config_errors_exit_2(step: Any) -> Any:
    """Invoke merges the runtime config file (``-f``), ``INVOKE_*`` variables and the user's
    config into invoke.yaml's values in ``update_config``; a value of the wrong type there (a
    string where invoke.yaml has a mapping, ``INVOKE_PIPELINE_LEVEL=abc``), unreadable YAML or
    an unknown file type raised a traceback. Exit 2 with one ``error:`` line instead."""
    if getattr(step, "_exit_2", False):
        return step

    def wrapper(self: Any) -> None:
        from invoke import util
        from invoke.exceptions import UncastableEnvVar, UnknownFileType

        yaml_error: type[Exception] = util.yaml.YAMLError
        errors = (UncastableEnvVar, UnknownFileType, yaml_error)  # AmbiguousMerge: a ValueError
        try:
            step(self)
        except (*errors, UnicodeDecodeError, ValueError, OSError) as err:
            text = one_line(f"invoke configuration (-f, INVOKE_* variables): {err}", 500)
            raise Exit(f"error: {text}", code=int(ExitCode.INVALID_INPUT)) from None

    wrapper._exit_2 = True  # type: ignore[attr-defined]
    return wrapper


Program.update_config = _config_errors_exit_2(Program.update_config)  # type: ignore[method-assign]
Config.load_shell_env = _config_errors_exit_2(Config.load_shell_env)  # type: ignore[method-assign]
Program.parse_tasks = _parse_errors_exit_2(Program.parse_tasks)  # type: ignore[method-assign]
Program.parse_cleanup = _parse_errors_exit_2(Program.parse_cleanup)  # type: ignore[method-assign]


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C (every ``finally`` and cleanup runs), then exits 143."""
    raise Terminated


def _echo(line: str) -> None:
    print(line, flush=True)


@contextmanager
def _exit_codes() -> Iterator[None]:
    """The single place where pipeline errors become exit codes (no tracebacks for users)."""
    from pipeline import github

    github.start_untrusted_output(_echo)  # under Actions: no command from untrusted text
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except PipelineError as err:
        for line in err.lines():
            print(f"error: {line}", file=sys.stderr, flush=True)
        raise Exit(code=int(err.exit_code)) from None
    except KeyboardInterrupt as exc:  # SIGINT 130, SIGTERM 143 (documented in the README)
        term = isinstance(exc, Terminated)
        code = ExitCode.TERMINATED if term else ExitCode.INTERRUPTED
        raise Exit(f"error: interrupted by {'SIGTERM' if term else 'SIGINT'}", code=code) from None
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Exit(code=int(ExitCode.UNEXPECTED)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _today() -> datetime:
    return datetime.now(UTC)


def _cfg(c: Context, name: str, given: object = None) -> object:
    """Flag, else ``invoke.yaml`` (``pipeline.<name>``), else None."""
    from pipeline.settings import pick

    return pick(given, c.config.get("pipeline", {}), name)


@task(
    help={
        "policy": "Policy file to validate (repeatable; default: all under policies/exceptions/).",
        "today": "Judge expiry as of this date, YYYY-MM-DD (default: today, UTC).",
    },
    iterable=["policy"],
)
def policy_validate(c: Context, policy: list[str], today: str | None = None) -> None:
    """Validate exceptions policies: YAML, schema, CIS catalogue, expiry. Exit 0 or 2."""
    from pipeline import commands

    with _exit_codes():
        paths = commands.policy_paths(policy, ROOT / str(_cfg(c, "policy_dir")))
        day = commands.parse_today(today, _today().date())
        commands.validate_policies(paths, day, _echo)


@task(
    help={
        "results": "GetCisScanResultDetails output: one response, a list of pages or of items.",
        "policy": "Exceptions policy to judge with (default: by the results' platform).",
        "today": "Judge expiry as of this date, YYYY-MM-DD (default: today, UTC).",
        "out": "Folder for verdict.json, junit.xml and summary.md (default: ./out).",
        "level": "The level the scan ran at, 1 or 2 (default: scan.json beside the results).",
    },
    iterable=["policy"],
)
def gate(
    c: Context,
    results: str,
    policy: list[str],
    today: str | None = None,
    out: str | None = None,
    level: str | None = None,
) -> None:
    """Gate Inspector CIS results on the exceptions policy. Exit 0 pass, 2, 3 blocked, 4."""
    from pipeline import commands, settings

    with _exit_codes():
        verdict = commands.run_gate(
            results,
            policy,
            commands.parse_today(today, _today().date()),
            str(settings.writable_dir(str(_cfg(c, "out", out)))),
            ROOT / str(_cfg(c, "policy_dir")),
            _echo,
            level=settings.as_level(level) if level is not None else None,
        )
    if verdict.exit_code != ExitCode.OK:
        raise Exit(code=int(verdict.exit_code))


@task(
    help={
        "ami": "AMI ID(s) to validate, comma-separated; all are scanned in one scan.",
        "level": "CIS level to scan: 1 or 2 (default from invoke.yaml: 2).",
        "out": "Folder for reports and evidence (default: ./out).",
        "run_id": "Resume this run: reuse its instances and scan configuration.",
        "instance_profile": "Instance profile with the SSM core and Inspector CIS policies.",
        "subnet_id": "Subnet for the test instances (default: the default VPC).",
        "enable_inspector": "Enable Inspector EC2 scanning if it is not enabled.",
        "keep": "Keep the test instances after the scan (debugging).",
        "ssm_timeout": "Seconds to wait for SSM to see the instances Online (900).",
        "scan_timeout": "Seconds to wait for the scan to finish (2700).",
        "evidence_bucket": "S3 evidence bucket (default: invoke.yaml, $CIS_EVIDENCE_BUCKET).",
    }
)
def validate(
    c: Context,
    ami: str,
    level: str | None = None,
    out: str | None = None,
    run_id: str | None = None,
    instance_profile: str | None = None,
    subnet_id: str | None = None,
    enable_inspector: bool = False,
    keep: bool = False,
    ssm_timeout: str | None = None,
    scan_timeout: str | None = None,
    evidence_bucket: str | None = None,
) -> None:
    """Launch test instances from AMIs, run one Inspector CIS scan, gate. Exit 0/1/2/3/4."""
    from pipeline.aws import make_clients
    from pipeline.validate import Runtime, run_validate, validate_settings

    with _exit_codes():
        cfg = validate_settings(
            c.config.get("pipeline", {}),
            ROOT,
            ami=ami,
            level=level,
            out=out,
            run_id=run_id,
            instance_profile=instance_profile,
            subnet_id=subnet_id,
            enable_inspector=enable_inspector,
            keep=keep,
            ssm_timeout=ssm_timeout,
            scan_timeout=scan_timeout,
            evidence_bucket=evidence_bucket,
        )
        verdict = run_validate(cfg, make_clients(), Runtime(echo=_echo))
    if verdict.exit_code != ExitCode.OK:
        raise Exit(code=int(verdict.exit_code))


@task(
    help={
        "ami": "The AMI to promote (its signed validation record must verify).",
        "channel": "Release channel from invoke.yaml pipeline.channels (default stable).",
        "regions": "Comma-separated target regions (default: invoke.yaml, else this region).",
        "accounts": "Comma-separated 12-digit account IDs to share the AMI and snapshots with.",
        "dry_run": "Print the plan; change nothing.",
        "public_key": "PEM public key to verify the record offline instead of kms:Verify.",
    }
)
def promote(
    c: Context,
    ami: str,
    channel: str | None = None,
    regions: str | None = None,
    accounts: str | None = None,
    dry_run: bool = False,
    public_key: str | None = None,
) -> None:
    """Verify, copy, share and publish an AMI to a release channel. Exit 0/1/2/3."""
    from pipeline import channels, settings
    from pipeline.aws import make_clients
    from pipeline.aws.release import known_regions
    from pipeline.release import promote as release

    with _exit_codes():
        evidence = settings.evidence_settings(c.config.get("pipeline", {}), os.environ)
        request = release.PromoteRequest(
            ami=ami,
            channel=channel,
            regions=channels.split_regions(regions, known_regions()),
            accounts=channels.split_accounts(accounts),
            dry_run=dry_run,
            evidence_bucket=evidence.bucket,
            public_key_pem=release.read_public_key(public_key),
            signing_key=evidence.signing_key,
            pinned_key=c.config.get("pipeline", {}).get("signing_key_sha256"),
        )
        config = release.release_config(c.config.get("pipeline", {}))
        policies = ROOT / str(_cfg(c, "policy_dir"))
        release.run_promote(request, config, make_clients(), _today(), _echo, policy_dir=policies)


@task(
    help={
        "dry_run": "Print the plan; change nothing.",
        "evidence_bucket": "S3 evidence bucket (default: invoke.yaml, CIS_EVIDENCE_BUCKET, or "
        "eks-cis-ami-pipeline-evidence-<account>-<region>).",
        "manage_instance_profile": "Also create the test-instance role and instance profile.",
        "object_lock": "Create the bucket with S3 Object Lock enabled (only at creation).",
        "public_key_out": "Write the signing key's PEM public key here (for offline verify).",
    }
)
def setup(
    c: Context,
    dry_run: bool = False,
    evidence_bucket: str | None = None,
    manage_instance_profile: bool = False,
    object_lock: bool = False,
    public_key_out: str | None = None,
) -> None:
    """Create the evidence bucket, signing key (and role) once per account/region. Exit 0/1/2."""
    from pipeline.aws import is_aws_endpoint, make_clients
    from pipeline.setup import run_setup, setup_settings

    with _exit_codes():
        clients = make_clients()
        request = setup_settings(
            c.config.get("pipeline", {}),
            os.environ,
            local=not is_aws_endpoint(clients.endpoint_url),
            evidence_bucket=evidence_bucket,
            manage_instance_profile=manage_instance_profile or None,  # None: config, local
            object_lock=object_lock,
            dry_run=dry_run,
            public_key_out=public_key_out,
        )
        run_setup(request, clients, _echo)


@task(
    help={
        "ami": "The AMI whose signed validation record to verify.",
        "public_key": "PEM public key: verify the signature offline (no kms:Verify).",
        "json": "Print the decoded statement and every check as JSON.",
        "regate": "Re-run the gate on the stored evidence and policy as of the record's date.",
        "level": "The CIS level the record must attest (default from invoke.yaml: 2).",
        "evidence_bucket": "S3 evidence bucket (default: invoke.yaml, $CIS_EVIDENCE_BUCKET).",
        "export_public_key": "Write the signing key's PEM public key to this file and stop.",
    }
)
def verify(
    c: Context,
    ami: str | None = None,
    public_key: str | None = None,
    json: bool = False,
    regate: bool = False,
    level: str | None = None,
    evidence_bucket: str | None = None,
    export_public_key: str | None = None,
) -> None:
    """Verify an AMI's signed validation record. Exit 0 verified+PASSED, 2, 3 not verified."""
    from pipeline import settings
    from pipeline.aws import make_clients
    from pipeline.errors import ConfigError
    from pipeline.evidence import verify as record
    from pipeline.release.promote import release_config

    with _exit_codes():
        config = c.config.get("pipeline", {})
        ev = settings.evidence_settings(config, os.environ, evidence_bucket=evidence_bucket)
        if export_public_key:
            record.export_public_key_file(make_clients(), export_public_key, ev.signing_key, _echo)
            return
        if not ami:
            raise ConfigError("--ami: give the AMI ID to verify")
        record.run_verify(
            make_clients(),
            ami,
            public_key=public_key,
            as_json=json,
            rerun_gate=regate,
            evidence_bucket=ev.bucket,
            signing_key=ev.signing_key,
            expected_level=settings.as_level(_cfg(c, "level", level) or 2),
            policy_dir=ROOT / str(_cfg(c, "policy_dir")),
            echo=_echo,
            parameter_prefix=release_config(config).parameter_prefix,
            pinned_key=config.get("signing_key_sha256"),
        )


@task(
    help={
        "ami": "The AMI to revoke (its regional copies are found from its tags).",
        "reason": "Why (recorded in tags and the channel history).",
        "channel": "Only roll back this channel (default: every configured channel).",
        "dry_run": "Print what would change; change nothing.",
        "allow_stale_rollback": "Roll back to an image whose verified record is older than "
        "max_age_days or under another exceptions policy (printed as a WARNING).",
    }
)
def revoke(
    c: Context,
    ami: str,
    reason: str,
    channel: str | None = None,
    dry_run: bool = False,
    allow_stale_rollback: bool = False,
) -> None:
    """Revoke an AMI and its copies; roll channels back to a verified earlier image. Exit 0/1/2."""
    from pipeline import settings
    from pipeline.aws import make_clients
    from pipeline.release.promote import release_config
    from pipeline.release.revoke import RevokeRequest, run_revoke

    with _exit_codes():
        config = release_config(c.config.get("pipeline", {}))
        evidence = settings.evidence_settings(c.config.get("pipeline", {}), os.environ)
        request = RevokeRequest(
            ami=ami,
            reason=reason,
            channel=channel,
            dry_run=dry_run,
            allow_stale_rollback=allow_stale_rollback,
            evidence_bucket=evidence.bucket,
            signing_key=evidence.signing_key,
        )
        policies = ROOT / str(_cfg(c, "policy_dir"))
        run_revoke(request, config, make_clients(), _today(), _echo, policy_dir=policies)


@task(
    help={
        "stale_minutes": "Reap a run once its newest heartbeat is this old (default 10).",
        "dry_run": "Only list what would be deleted.",
        "images": "Also deregister old unpromoted pipeline AMIs (pipeline.reap.retention).",
    }
)
def reap(c: Context, stale_minutes: str = "10", dry_run: bool = False, images: bool = True) -> None:
    """Delete what killed runs leaked: only resources tagged as ours, of runs with no heartbeat."""
    from datetime import timedelta

    from pipeline import settings
    from pipeline.aws import make_clients
    from pipeline.reap import run_reap
    from pipeline.release.promote import release_config

    with _exit_codes():
        minutes = settings.as_number(stale_minutes, "--stale-minutes", maximum=7 * 24 * 60)
        report = run_reap(
            make_clients(),
            _today(),
            _echo,
            stale_after=timedelta(minutes=minutes),
            dry_run=dry_run,
            retention=release_config(c.config.get("pipeline", {})) if images else None,
        )
    if report.failures:
        raise Exit(code=int(ExitCode.UNEXPECTED))


_BUILD_HELP = {
    "platform": "al2023 and/or al2, comma-separated (default from invoke.yaml: al2023).",
    "arch": "x86_64 and/or arm64, comma-separated (default: x86_64).",
    "k8s_version": "Kubernetes version of the EKS base AMI (default: 1.33 AL2023, 1.32 AL2).",
    "level": "CIS level to harden (and scan): 1 or 2.",
    "local": "Run against the local AWS with Debian's packer (no AWS account needed).",
}


@task(help={**_BUILD_HELP, "out": "Folder for the Packer manifests (default: ./out/build)."})
def build(
    c: Context,
    platform: str | None = None,
    arch: str | None = None,
    k8s_version: str | None = None,
    level: str | None = None,
    local: bool = False,
    out: str | None = None,
) -> None:
    """Build CIS-hardened EKS node AMIs with Packer; print the AMI IDs. Exit 0/1/2."""
    from pipeline import settings
    from pipeline.build import run_build
    from pipeline.orchestration.chain import local_endpoint, split

    with _exit_codes(), local_endpoint(local, None, _echo):
        run_build(
            split(platform, [str(_cfg(c, "platform"))]),
            split(arch, [str(_cfg(c, "arch"))]),
            k8s_version,
            settings.as_level(_cfg(c, "level", level)),
            local,
            settings.writable_dir(out or f"{_cfg(c, 'out')}/build"),
            _echo,
        )


@task(
    help={
        **_BUILD_HELP,
        "out": "Folder for reports, evidence and manifests (default: ./out).",
        "scenario": "With --local: a failure scenario for the local AWS (YAML/JSON).",
        "enable_inspector": "Enable Inspector EC2 scanning if needed (implied by --local).",
        "skip_unchanged": "Unchanged inputs: re-validate the newest AMI instead of building.",
    }
)
def build_and_validate(
    c: Context,
    platform: str | None = None,
    arch: str | None = None,
    k8s_version: str | None = None,
    level: str | None = None,
    out: str | None = None,
    local: bool = False,
    scenario: str | None = None,
    enable_inspector: bool = False,
    skip_unchanged: bool = False,
) -> None:
    """Build the images, validate them all in one Inspector CIS scan, gate. Exit 0/1/2/3/4."""
    from pipeline import settings
    from pipeline.orchestration.chain import ChainSettings, run_chain, split
    from pipeline.release.promote import release_config
    from pipeline.validate import Runtime

    with _exit_codes():
        cfg = ChainSettings(
            platforms=split(platform, [str(_cfg(c, "platform"))]),
            archs=split(arch, [str(_cfg(c, "arch"))]),
            k8s_version=k8s_version,
            level=settings.as_level(_cfg(c, "level", level)),
            out_dir=settings.writable_dir(str(_cfg(c, "out", out))),
            policy_dir=ROOT / str(_cfg(c, "policy_dir")),
            local=local,
            scenario=Path(scenario) if scenario else None,
            enable_inspector=enable_inspector,
            instance_types=dict(_cfg(c, "validate") or {}).get("instance_types"),
            skip_unchanged=skip_unchanged,
            release=release_config(c.config.get("pipeline", {})),
            evidence=settings.evidence_settings(c.config.get("pipeline", {}), os.environ),
        )
        verdict = run_chain(cfg, Runtime(echo=_echo))
    if verdict.exit_code != ExitCode.OK:
        raise Exit(code=int(verdict.exit_code))


@task(
    help={
        "port": "Port on 127.0.0.1 (default: a free one).",
        "scenario": "A failure scenario to rehearse (YAML/JSON; see pipeline/localaws/README.md).",
    }
)
def local_aws(c: Context, port: str = "0", scenario: str | None = None) -> None:
    """Serve the local AWS (moto + Inspector CIS/SSM emulation) until interrupted."""
    from pipeline import settings, support

    with _exit_codes():
        support.require_local_extra()
        with support.needs_local_extra():
            from pipeline.localaws.serve import serve

            serve(settings.as_port(port), scenario, _echo)


@task(
    help={
        "platform": "al2023 or al2 (default from invoke.yaml: al2023).",
        "level": "CIS level: 1 or 2 (default 2).",
        "json": "Print JSON instead of text.",
    }
)
def hardening_coverage(
    c: Context, platform: str | None = None, level: str | None = None, json: bool = False
) -> None:
    """Where each automated CIS recommendation stands in the hardening; list the gaps."""
    from pipeline import coverage, settings

    with _exit_codes():
        report = coverage.coverage_report(
            settings.as_platform(_cfg(c, "platform", platform)),
            settings.as_level(_cfg(c, "level", level)),
        )
        render = coverage.render_coverage_json if json else coverage.render_coverage_text
        _echo(render(report))


@task(help={"job": "build, validate, promote, reap or setup (default: all, keyed by job)."})
def iam_policy(c: Context, job: str | None = None) -> None:
    """Print the least-privilege IAM policy of a job's role (policies/iam/<job>.json)."""
    from pipeline.iam_policy import render

    with _exit_codes():
        _echo(render(job, ROOT / "policies/iam"))


@task(
    help={
        "json": "Print the numbers as JSON (docs/benchmarks.md records them).",
        "gate_targets": "Targets of the gate benchmark (x ~243 rows each; default 1000).",
    }
)
def bench(c: Context, json: bool = False, gate_targets: str = "1000") -> None:
    """Benchmarks: pipeline overhead and AWS calls on the local AWS, gate throughput, start-up."""
    import json as json_

    from pipeline import settings
    from pipeline.orchestration.bench import render_text, run_bench

    with _exit_codes():
        targets = settings.as_count(gate_targets, "--gate-targets", maximum=100_000)
        report = run_bench(
            lambda line: print(line, file=sys.stderr, flush=True), gate_targets=targets
        )
        _echo(json_.dumps(report, indent=2) if json else render_text(report))


def _run_all(c: Context, commands: list[str]) -> None:
    """Run every command, then fail if any failed (so one run shows every problem)."""
    failed = []
    for command in commands:
        print(f"$ {command}", flush=True)
        if not c.run(command, warn=True, pty=False).ok:
            failed.append(command)
    if failed:
        raise Exit("failed: " + "; ".join(failed), code=1)


def _shell_scripts() -> list[str]:
    scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "packer").rglob("*.sh"))
    return scripts + ["scripts/bootstrap", ".ci/run"]


@task
def lint(c: Context) -> None:
    """Static checks: ruff, mypy --strict, shellcheck, actionlint, zizmor, packer fmt, policies."""
    bin_ = Path(sys.executable).parent
    workflows = sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml"))
    packer_dirs = sorted({str(p.parent) for p in (ROOT / "packer").rglob("*.pkr.hcl")})
    commands = [
        f"{bin_}/ruff check .",
        f"{bin_}/ruff format --check .",
        f"{bin_}/mypy",
        "shellcheck -x " + " ".join(_shell_scripts()),
        f"{bin_}/invoke policy.validate",
    ]
    if workflows:
        commands.append(f"{bin_}/actionlint " + " ".join(workflows))
        commands.append(f"{bin_}/zizmor --offline --no-progress .github/workflows")
    commands += [f"packer fmt -check {d}" for d in packer_dirs]
    with c.cd(str(ROOT)):
        _run_all(c, commands)


@task(help={"k": "Only tests matching this pytest -k expression.", "args": "Extra pytest args."})
def test(c: Context, k: str | None = None, args: str = "") -> None:
    """Run the test suite (pytest; never reaches real AWS)."""
    select = f" -k '{k}'" if k else ""
    with c.cd(str(ROOT)):
        c.run(f"{Path(sys.executable).parent}/pytest{select} {args}", pty=False)


@task(pre=[lint, test])
def ci(c: Context) -> None:
    """Everything CI runs: lint, then the tests."""


@task(
    help={
        "scan_arn": "A COMPLETED Inspector CIS scan (LEVEL_2 for --write) of a hardened image.",
        "platform": "al2023 or al2 (default: the only platform the scan has checks for).",
        "write": "Rewrite the shipped catalogue from the scan, then re-check the policies.",
    }
)
def catalogue_refresh(
    c: Context, scan_arn: str, platform: str | None = None, write: bool = False
) -> None:
    """Compare the shipped CIS catalogue with a real scan's checks; --write updates it."""
    from pipeline.aws import make_clients
    from pipeline.catalog_refresh import run_refresh

    with _exit_codes():
        run_refresh(
            make_clients(),
            scan_arn,
            platform=platform,
            write=write,
            policy_dir=ROOT / str(_cfg(c, "policy_dir")),
            today=_today().date(),
            echo=_echo,
        )


policy_ns = Collection("policy")
policy_ns.add_task(policy_validate, name="validate")
catalogue_ns = Collection("catalogue")
catalogue_ns.add_task(catalogue_refresh, name="refresh")

ns = Collection(
    build,
    validate,
    gate,
    build_and_validate,
    promote,
    revoke,
    reap,
    setup,
    verify,
    local_aws,
    hardening_coverage,
    iam_policy,
    bench,
    lint,
    test,
    ci,
)
ns.add_collection(policy_ns)
ns.add_collection(catalogue_ns)
