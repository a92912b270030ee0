"""Invoke tasks: the CLI release engineers and CI use. Thin: declare each task (name, flags,
help) and call its command in ``pipeline/cli/``, which computes everything else.

Exit codes (the contract, mapped in one place, ``pipeline.cli.exits.exit_codes``): 0 pass;
1 unexpected error; 2 invalid input or configuration (Invoke's own parse errors too, see
``pipeline.cli.invoke_exit``); 3 gate blocked or refused; 4 no trustworthy scan result;
130 SIGINT; 143 SIGTERM.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from invoke import Collection, Context
from invoke import task as invoke_task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # this checkout's pipeline/, even if another copy is installed

from pipeline.cli import account, invoke_exit, stages, tools  # noqa: E402
from pipeline.cli import audit as audit_command  # noqa: E402
from pipeline.cli.exits import exit_codes, finish  # noqa: E402
from pipeline.cli.help import of  # noqa: E402
from pipeline.cli.invocation import Invocation  # noqa: E402
from pipeline.errors import ExitCode  # noqa: E402

invoke_exit.install()  # Invoke's parse and config errors exit 2 (parsing follows this import)

# Long flags only: Invoke's automatic one-letter flags depend on each task's other flags (-l was
# --level in one task and --local in another), so none is given; `invoke test -k` is its name.
task = partial(invoke_task, auto_shortflags=False)


def _run(command: Callable[..., ExitCode], c: Context, *flags: Any) -> None:
    """Run ``command`` with this invocation's settings and the task's flags, in order; its
    errors and its outcome become the exit code."""
    with exit_codes():
        code = command(Invocation.of(c.config, ROOT), *flags)
    finish(code)


@task(help=of("policy.validate"), iterable=["policy"])
def policy_validate(
    c: Context, policy: list[str], today: str | None = None, json: bool = False
) -> None:
    """Validate exceptions policies: YAML, schema, CIS catalogue, expiry. Exit 0 or 2."""
    _run(stages.policy_validate, c, policy, today, json)


@task(help=of("gate"), iterable=["policy"])
def gate(
    c: Context,
    results: str,
    policy: list[str],
    today: str | None = None,
    out: str | None = None,
    level: str | None = None,
    json: bool = False,
) -> None:
    """Gate Inspector CIS results on the exceptions policy. Exit 0 pass, 2, 3 blocked, 4."""
    _run(stages.gate, c, results, policy, today, out, level, json)


@task(help=of("validate"))
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
    security_group_id: str | None = None,
    public_ip: str | None = None,
    json: bool = False,
) -> None:
    """Launch test instances from AMIs, run one Inspector CIS scan, gate. Exit 0/1/2/3/4."""
    flags = (ami, level, out, run_id, instance_profile, subnet_id, enable_inspector, keep)
    network = (security_group_id, public_ip)
    _run(stages.validate, c, *flags, ssm_timeout, scan_timeout, evidence_bucket, *network, json)


@task(help=of("promote"))
def promote(
    c: Context,
    ami: str,
    channel: str | None = None,
    regions: str | None = None,
    accounts: str | None = None,
    dry_run: bool = False,
    public_key: str | None = None,
    json: bool = False,
) -> None:
    """Verify, copy, share and publish an AMI to a release channel. Exit 0/1/2/3."""
    _run(account.promote, c, ami, channel, regions, accounts, dry_run, public_key, json)


@task(help=of("setup"))
def setup(
    c: Context,
    dry_run: bool = False,
    evidence_bucket: str | None = None,
    manage_instance_profile: bool = False,
    object_lock: bool = False,
    public_key_out: str | None = None,
    image_keys: bool = False,
    json: bool = False,
) -> None:
    """Create the evidence bucket, signing key (and role, image keys) once. Exit 0/1/2/3."""
    flags = (dry_run, evidence_bucket, manage_instance_profile, object_lock, public_key_out)
    _run(account.setup, c, *flags, image_keys, json)


@task(help=of("verify"))
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
    """Verify an AMI's signed validation record. Exit 0 verified+PASSED, 2, 3 not verified.

    Exit 0 does not mean promotable: promote also requires the current exceptions policy's
    digest and a record younger than pipeline.release.max_age_days.
    """
    flags = (ami, public_key, json, regate, level, evidence_bucket, export_public_key)
    _run(account.verify, c, *flags)


@task(help=of("revoke"))
def revoke(
    c: Context,
    ami: str,
    reason: str,
    channel: str | None = None,
    dry_run: bool = False,
    allow_stale_rollback: bool = False,
    json: bool = False,
) -> None:
    """Revoke an AMI and its copies; roll channels back to a verified earlier image. Exit 0/1/2."""
    _run(account.revoke, c, ami, reason, channel, dry_run, allow_stale_rollback, json)


@task(help=of("reap"))
def reap(
    c: Context,
    stale_minutes: str = "10",
    dry_run: bool = False,
    images: bool = True,
    json: bool = False,
) -> None:
    """Delete what killed runs leaked: only resources tagged as ours, of runs with no heartbeat."""
    _run(account.reap, c, stale_minutes, dry_run, images, json)


@task(help=of("channels"))
def channels(c: Context, channel: str | None = None, json: bool = False) -> None:
    """Each channel's image per region, whether its signed record verifies, its history. Exit 0."""
    _run(account.show_channels, c, channel, json)


@task(help=of("audit"))
def audit(
    c: Context,
    channel: str | None = None,
    dry_run: bool = False,
    out: str | None = None,
    enable_inspector: bool = False,
    json: bool = False,
) -> None:
    """Re-validate each channel's current image and report; never revokes. Exit 0/1/2/3/4."""
    _run(audit_command.audit, c, channel, dry_run, out, enable_inspector, json)


@task(help=of("build"), iterable=["var"])
def build(
    c: Context,
    platform: str | None = None,
    arch: str | None = None,
    k8s_version: str | None = None,
    level: str | None = None,
    local: bool = False,
    out: str | None = None,
    var: list[str] | None = None,
    subnet_id: str | None = None,
    security_group_id: str | None = None,
    public_ip: str | None = None,
    json: bool = False,
) -> None:
    """Build CIS-hardened EKS node AMIs with Packer; print the AMI IDs. Exit 0/1/2."""
    network = (subnet_id, security_group_id, public_ip)
    _run(stages.build, c, platform, arch, k8s_version, level, local, out, var, *network, json)


@task(help=of("build-and-validate"), iterable=["var"])
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
    var: list[str] | None = None,
    subnet_id: str | None = None,
    security_group_id: str | None = None,
    public_ip: str | None = None,
    json: bool = False,
) -> None:
    """Build the images, validate them all in one Inspector CIS scan, gate. Exit 0/1/2/3/4."""
    flags = (platform, arch, k8s_version, level, out, local, scenario, enable_inspector)
    network = (subnet_id, security_group_id, public_ip)
    _run(stages.build_and_validate, c, *flags, skip_unchanged, var, *network, json)


@task(help=of("local-aws"))
def local_aws(c: Context, port: str = "0", scenario: str | None = None) -> None:
    """Serve the local AWS (moto + Inspector CIS/SSM emulation) until interrupted."""
    _run(tools.local_aws, c, port, scenario)


@task(help=of("hardening-coverage"))
def hardening_coverage(
    c: Context, platform: str | None = None, level: str | None = None, json: bool = False
) -> None:
    """Where each automated CIS recommendation stands in the hardening; list the gaps."""
    _run(tools.hardening_coverage, c, platform, level, json)


@task(help=of("iam-policy"))
def iam_policy(c: Context, job: str | None = None) -> None:
    """Print the least-privilege IAM policy of a job's role (policies/iam/<job>.json)."""
    _run(tools.iam_policy, c, job)


@task(help=of("bench"))
def bench(c: Context, json: bool = False, gate_targets: str = "1000") -> None:
    """Benchmarks: pipeline overhead and AWS calls on the local AWS, gate throughput, start-up."""
    _run(tools.bench, c, json, gate_targets)


@task
def lint(c: Context) -> None:
    """Static checks: ruff, mypy, import contracts, shellcheck, actionlint, zizmor, packer fmt."""
    with c.cd(str(ROOT)):
        tools.run_all(c, tools.lint_commands(ROOT))


@task(help=of("test"))
def test(c: Context, k: str | None = None, args: str = "") -> None:
    """Run the test suite (pytest; never reaches real AWS)."""
    with c.cd(str(ROOT)):
        c.run(tools.pytest_command(k, args), pty=False)


@task(pre=[lint, test])
def ci(c: Context) -> None:
    """Everything CI runs: lint, then the tests."""


@task(help=of("catalogue.refresh"))
def catalogue_refresh(
    c: Context, scan_arn: str, platform: str | None = None, write: bool = False, json: bool = False
) -> None:
    """Compare the shipped CIS catalogue with a real scan's checks; --write updates it."""
    _run(account.catalogue_refresh, c, scan_arn, platform, write, json)


ns = Collection(
    *(build, validate, gate, build_and_validate, promote, revoke, reap, setup, verify),
    *(channels, audit, local_aws, hardening_coverage, iam_policy, bench, lint, test, ci),
)
ns.add_collection(Collection("policy", validate=policy_validate))
ns.add_collection(Collection("catalogue", refresh=catalogue_refresh))
