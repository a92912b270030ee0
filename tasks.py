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
from pathlib import Path
from typing import Any

from invoke import Collection, Context, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # this checkout's pipeline/, even if another copy is installed

from pipeline.cli import account, invoke_exit, stages, tools  # noqa: E402
from pipeline.cli.exits import exit_codes, finish  # noqa: E402
from pipeline.cli.invocation import Invocation  # noqa: E402
from pipeline.errors import ExitCode  # noqa: E402

invoke_exit.install()  # Invoke's parse and config errors exit 2 (parsing follows this import)


def _run(command: Callable[..., ExitCode], c: Context, *flags: Any) -> None:
    """Run ``command`` with this invocation's settings and the task's flags, in order; its
    errors and its outcome become the exit code."""
    with exit_codes():
        code = command(Invocation.of(c.config, ROOT), *flags)
    finish(code)


@task(
    help={
        "policy": "Policy file to validate (repeatable; default: all under policies/exceptions/).",
        "today": "Judge expiry as of this date, YYYY-MM-DD (default: today, UTC).",
    },
    iterable=["policy"],
)
def policy_validate(c: Context, policy: list[str], today: str | None = None) -> None:
    """Validate exceptions policies: YAML, schema, CIS catalogue, expiry. Exit 0 or 2."""
    _run(stages.policy_validate, c, policy, today)


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
    _run(stages.gate, c, results, policy, today, out, level)


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
    flags = (ami, level, out, run_id, instance_profile, subnet_id, enable_inspector, keep)
    _run(stages.validate, c, *flags, ssm_timeout, scan_timeout, evidence_bucket)


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
    _run(account.promote, c, ami, channel, regions, accounts, dry_run, public_key)


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
    flags = (dry_run, evidence_bucket, manage_instance_profile, object_lock, public_key_out)
    _run(account.setup, c, *flags)


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
    """Verify an AMI's signed validation record. Exit 0 verified+PASSED, 2, 3 not verified.

    Exit 0 does not mean promotable: promote also requires the current exceptions policy's
    digest and a record younger than pipeline.release.max_age_days.
    """
    flags = (ami, public_key, json, regate, level, evidence_bucket, export_public_key)
    _run(account.verify, c, *flags)


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
    _run(account.revoke, c, ami, reason, channel, dry_run, allow_stale_rollback)


@task(
    help={
        "stale_minutes": "Reap a run once its newest heartbeat is this old (default 10).",
        "dry_run": "Only list what would be deleted.",
        "images": "Also deregister old unpromoted pipeline AMIs (pipeline.reap.retention).",
    }
)
def reap(c: Context, stale_minutes: str = "10", dry_run: bool = False, images: bool = True) -> None:
    """Delete what killed runs leaked: only resources tagged as ours, of runs with no heartbeat."""
    _run(account.reap, c, stale_minutes, dry_run, images)


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
    _run(stages.build, c, platform, arch, k8s_version, level, local, out)


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
    flags = (platform, arch, k8s_version, level, out, local, scenario, enable_inspector)
    _run(stages.build_and_validate, c, *flags, skip_unchanged)


@task(
    help={
        "port": "Port on 127.0.0.1 (default: a free one).",
        "scenario": "A failure scenario to rehearse (YAML/JSON; see pipeline/localaws/README.md).",
    }
)
def local_aws(c: Context, port: str = "0", scenario: str | None = None) -> None:
    """Serve the local AWS (moto + Inspector CIS/SSM emulation) until interrupted."""
    _run(tools.local_aws, c, port, scenario)


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
    _run(tools.hardening_coverage, c, platform, level, json)


@task(help={"job": "build, validate, promote, reap or setup (default: all, keyed by job)."})
def iam_policy(c: Context, job: str | None = None) -> None:
    """Print the least-privilege IAM policy of a job's role (policies/iam/<job>.json)."""
    _run(tools.iam_policy, c, job)


@task(
    help={
        "json": "Print the numbers as JSON (docs/benchmarks.md records them).",
        "gate_targets": "Targets of the gate benchmark (x ~243 rows each; default 1000).",
    }
)
def bench(c: Context, json: bool = False, gate_targets: str = "1000") -> None:
    """Benchmarks: pipeline overhead and AWS calls on the local AWS, gate throughput, start-up."""
    _run(tools.bench, c, json, gate_targets)


@task
def lint(c: Context) -> None:
    """Static checks: ruff, mypy, import contracts, shellcheck, actionlint, zizmor, packer fmt."""
    with c.cd(str(ROOT)):
        tools.run_all(c, tools.lint_commands(ROOT))


@task(help={"k": "Only tests matching this pytest -k expression.", "args": "Extra pytest args."})
def test(c: Context, k: str | None = None, args: str = "") -> None:
    """Run the test suite (pytest; never reaches real AWS)."""
    with c.cd(str(ROOT)):
        c.run(tools.pytest_command(k, args), pty=False)


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
    _run(account.catalogue_refresh, c, scan_arn, platform, write)


ns = Collection(
    *(build, validate, gate, build_and_validate, promote, revoke, reap, setup, verify),
    *(local_aws, hardening_coverage, iam_policy, bench, lint, test, ci),
)
ns.add_collection(Collection("policy", validate=policy_validate))
ns.add_collection(Collection("catalogue", refresh=catalogue_refresh))
