"""Invoke tasks: the CLI release engineers and CI use. Thin: parse flags, call ``pipeline``.

Exit codes (the contract, mapped in one place, ``_exit_codes``): 0 pass; 1 unexpected error;
2 invalid input or configuration; 3 gate blocked; 4 no trustworthy scan result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from invoke import Collection, Context, Exit, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from pipeline.errors import ExitCode, PipelineError  # noqa: E402


def _echo(line: str) -> None:
    print(line, flush=True)


@contextmanager
def _exit_codes() -> Iterator[None]:
    """The single place where pipeline errors become exit codes (no tracebacks for users)."""
    try:
        yield
    except PipelineError as err:
        for line in err.lines():
            print(f"error: {line}", file=sys.stderr, flush=True)
        raise Exit(code=int(err.exit_code)) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", code=130) from None
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Exit(code=int(ExitCode.UNEXPECTED)) from None


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
    },
    iterable=["policy"],
)
def gate(
    c: Context, results: str, policy: list[str], today: str | None = None, out: str | None = None
) -> None:
    """Gate Inspector CIS results on the exceptions policy. Exit 0 pass, 2, 3 blocked, 4."""
    from pipeline import commands

    with _exit_codes():
        verdict = commands.run_gate(
            results,
            policy,
            commands.parse_today(today, _today().date()),
            str(_cfg(c, "out", out)),
            ROOT / str(_cfg(c, "policy_dir")),
            _echo,
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
) -> None:
    """Launch test instances from AMIs, run one Inspector CIS scan, gate. Exit 0/1/2/3/4."""
    from pipeline import settings
    from pipeline.aws import make_clients
    from pipeline.validate import Runtime, run_validate

    with _exit_codes():
        cfg = settings.validate_settings(
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
        )
        verdict = run_validate(cfg, make_clients(), Runtime(echo=_echo))
    if verdict.exit_code != ExitCode.OK:
        raise Exit(code=int(verdict.exit_code))


@task(
    help={
        "ami": "The validated AMI to promote.",
        "share_with": "Comma-separated AWS account IDs to share the AMI with.",
        "parameter_prefix": "SSM parameter prefix (default /eks-cis-ami).",
        "max_age_days": "Refuse validations older than this many days (default 30).",
    }
)
def promote(
    c: Context,
    ami: str,
    share_with: str | None = None,
    parameter_prefix: str | None = None,
    max_age_days: int = 30,
) -> None:
    """Publish a validated AMI (SSM parameter, sharing, tags); refuse anything else. Exit 0/2/3."""
    from pipeline import promote as promotion
    from pipeline.aws import make_clients

    with _exit_codes():
        cfg = promotion.PromoteSettings(
            ami=ami,
            policy_dir=ROOT / str(_cfg(c, "policy_dir")),
            parameter_prefix=str(_cfg(c, "parameter_prefix", parameter_prefix) or "/eks-cis-ami"),
            share_with=tuple(promotion.split_accounts(share_with)),
            max_age_days=max_age_days,
        )
        promotion.run_promote(cfg, make_clients(), _today(), _echo)


@task(
    help={
        "max_age_hours": "Also reap tagged instances older than this (default 3).",
        "dry_run": "Only list what would be deleted.",
    }
)
def reap(c: Context, max_age_hours: float = 3.0, dry_run: bool = False) -> None:
    """Delete leaked test/build instances, scan configurations and security groups."""
    from datetime import timedelta

    from pipeline.aws import make_clients
    from pipeline.reap import run_reap

    with _exit_codes():
        report = run_reap(
            make_clients(), _today(), _echo, max_age=timedelta(hours=max_age_hours), dry_run=dry_run
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
    from pipeline.chain import local_endpoint, split

    with _exit_codes(), local_endpoint(local, None, _echo):
        run_build(
            split(platform, [str(_cfg(c, "platform"))]),
            split(arch, [str(_cfg(c, "arch"))]),
            k8s_version,
            settings.as_level(_cfg(c, "level", level)),
            local,
            Path(out or f"{_cfg(c, 'out')}/build"),
            _echo,
        )


@task(
    help={
        **_BUILD_HELP,
        "out": "Folder for reports, evidence and manifests (default: ./out).",
        "scenario": "With --local: a failure scenario for the local AWS (YAML/JSON).",
        "enable_inspector": "Enable Inspector EC2 scanning if needed (implied by --local).",
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
) -> None:
    """Build the images, validate them all in one Inspector CIS scan, gate. Exit 0/1/2/3/4."""
    from pipeline import settings
    from pipeline.chain import ChainSettings, run_chain, split
    from pipeline.validate import Runtime

    with _exit_codes():
        cfg = ChainSettings(
            platforms=split(platform, [str(_cfg(c, "platform"))]),
            archs=split(arch, [str(_cfg(c, "arch"))]),
            k8s_version=k8s_version,
            level=settings.as_level(_cfg(c, "level", level)),
            out_dir=Path(str(_cfg(c, "out", out))),
            policy_dir=ROOT / str(_cfg(c, "policy_dir")),
            local=local,
            scenario=Path(scenario) if scenario else None,
            enable_inspector=enable_inspector,
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
def local_aws(c: Context, port: int = 0, scenario: str | None = None) -> None:
    """Serve the local AWS (moto + Inspector CIS/SSM emulation) until interrupted."""
    from pipeline.localaws.serve import serve

    with _exit_codes():
        serve(port, scenario, _echo)


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


@task(help={"no_packer": "Leave out what Packer needs (a validate-only role)."})
def iam_policy(c: Context, no_packer: bool = False) -> None:
    """Print the least-privilege IAM policy the pipeline's role needs (JSON)."""
    import json

    from pipeline.iam_policy import policy_document

    with _exit_codes():
        _echo(json.dumps(policy_document(include_packer=not no_packer), indent=2))


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


policy_ns = Collection("policy")
policy_ns.add_task(policy_validate, name="validate")

ns = Collection(
    build,
    validate,
    gate,
    build_and_validate,
    promote,
    reap,
    local_aws,
    hardening_coverage,
    iam_policy,
    lint,
    test,
    ci,
)
ns.add_collection(policy_ns)
