"""Least-privilege IAM per job: which of the actions ``pipeline/aws`` modules (and Packer) declare
each job needs (``JOBS``), and the checked-in ``policies/iam/<job>.json`` that grant exactly those.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

PACKER = "pipeline.aws.packer"
MODULES = (
    "pipeline.aws.account",
    "pipeline.aws.ec2",
    "pipeline.aws.iam",
    "pipeline.aws.images",
    "pipeline.aws.inspector",
    "pipeline.aws.ssm",
    "pipeline.aws.s3",
    "pipeline.aws.kms",
    "pipeline.aws.release",
)
POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "iam"

# job -> declaring module -> the actions of that module the job calls (empty: all of them).
# Each pipeline/aws module declares what its functions call in IAM_ACTIONS (Packer's needs are
# pipeline.aws.packer). tests/test_iam_policies.py holds the three together: every
# declared action belongs to a job, every assigned action is declared, and each job's policy
# file grants exactly the job's actions.
JOBS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "build": {
        "pipeline.aws.images": ("ssm:GetParameter", "ec2:DescribeImages"),
        PACKER: (),  # all of them: filled in by job_actions()
    },
    "validate": {
        "pipeline.aws.account": ("sts:GetCallerIdentity",),
        "pipeline.aws.images": ("ec2:DescribeImages", "ec2:CreateTags", "ec2:DeleteTags"),
        "pipeline.aws.ec2": (
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "ec2:CreateSecurityGroup",
            "ec2:DeleteSecurityGroup",
            "ec2:DescribeImages",
            "ec2:RunInstances",
            "ec2:CreateTags",
            "ec2:DescribeInstances",
            "ec2:TerminateInstances",
        ),
        "pipeline.aws.iam": (
            "iam:GetInstanceProfile",
            "iam:ListAttachedRolePolicies",
            "iam:GetPolicy",
            "iam:GetPolicyVersion",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:PassRole",
        ),
        "pipeline.aws.inspector": (
            "inspector2:BatchGetAccountStatus",
            "inspector2:CreateCisScanConfiguration",
            "inspector2:DeleteCisScanConfiguration",
            "inspector2:ListCisScanConfigurations",
            "inspector2:ListCisScans",
            "inspector2:ListCisScanResultsAggregatedByTargetResource",
            "inspector2:GetCisScanResultDetails",
            "inspector2:GetCisScanReport",
            "inspector2:TagResource",
            # `invoke catalogue.refresh --scan-arn` reads a real scan's checks with this role
            "inspector2:ListCisScanResultsAggregatedByChecks",
        ),
        "pipeline.aws.ssm": ("ssm:DescribeInstanceInformation",),
        # the evidence store and the signed record (pipeline.evidence)
        "pipeline.aws.s3": (
            "s3:ListBucket",
            "s3:GetBucketVersioning",
            "s3:PutObject",
            "s3:GetObject",
        )
        + ("s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration")
        + ("s3:GetBucketPolicy", "s3:GetBucketObjectLockConfiguration"),
        "pipeline.aws.kms": ("kms:DescribeKey", "kms:Sign"),
    },
    "promote": {
        "pipeline.aws.account": ("sts:GetCallerIdentity",),
        "pipeline.aws.images": ("ec2:DescribeImages",),
        "pipeline.aws.ec2": ("ec2:ModifyImageAttribute",),
        "pipeline.aws.ssm": ("ssm:PutParameter",),
        # verifying the signed record (pipeline.evidence.verify)
        "pipeline.aws.s3": ("s3:ListBucket", "s3:GetObject"),
        "pipeline.aws.kms": ("kms:DescribeKey", "kms:Verify", "kms:GetPublicKey"),
        # promotion channels, copies to other regions, sharing, revoke, retention (pipeline.release)
        "pipeline.aws.release": (),
    },
    "reap": {
        "pipeline.aws.ec2": (
            "ec2:DescribeInstances",
            "ec2:TerminateInstances",
            "ec2:DescribeSecurityGroups",
            "ec2:DeleteSecurityGroup",
            "ec2:DescribeKeyPairs",
            "ec2:DeleteKeyPair",
        ),
        "pipeline.aws.inspector": (
            "inspector2:ListCisScanConfigurations",
            "inspector2:DeleteCisScanConfiguration",
        ),
        # --images: old unpromoted pipeline AMIs (pipeline.reap.retention)
        "pipeline.aws.release": (
            "ec2:DescribeImages",
            "ssm:GetParametersByPath",
            "ec2:DeregisterImage",
            "ec2:DeleteSnapshot",
        ),
    },
    "setup": {
        "pipeline.aws.account": ("sts:GetCallerIdentity",),
        "pipeline.aws.iam": (
            "iam:GetInstanceProfile",
            "iam:ListAttachedRolePolicies",
            "iam:GetPolicy",  # describe_profile reads every policy document of the role
            "iam:GetPolicyVersion",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:CreateRole",
            "iam:TagRole",
            "iam:AttachRolePolicy",
            "iam:CreateInstanceProfile",
            "iam:AddRoleToInstanceProfile",
        ),
        "pipeline.aws.s3": (),  # all: the evidence bucket and its protections
        "pipeline.aws.kms": ("kms:CreateKey", "kms:CreateAlias", "kms:TagResource")
        + ("kms:DescribeKey", "kms:GetPublicKey"),
        # Enabling Inspector is one-time account setup (validate --enable-inspector needs it too).
        "pipeline.aws.inspector": (
            "inspector2:BatchGetAccountStatus",
            "inspector2:Enable",
            "iam:CreateServiceLinkedRole",
        ),
    },
}


def _declared(source: str) -> tuple[str, ...]:
    """The actions one module declares (``module`` or ``module:ATTRIBUTE``)."""
    module, _, attribute = source.partition(":")
    value = getattr(importlib.import_module(module), attribute or "IAM_ACTIONS")
    return tuple(str(a) for a in value)


def sources() -> tuple[str, ...]:
    """Every declaring module (and Packer's declaration) the jobs draw from."""
    return tuple(dict.fromkeys((*MODULES, PACKER, *(s for j in JOBS.values() for s in j))))


def check_job(job: str) -> str:
    """``job`` if it is one of ``JOBS``, else ConfigError naming the flag."""
    if job not in JOBS:
        raise ConfigError(f"--job {job}: not one of {', '.join(JOBS)}")
    return job


def job_actions(job: str) -> frozenset[str]:
    """The IAM actions ``job`` needs: its share of each module's declared actions."""
    actions: set[str] = set()
    for source, chosen in JOBS[check_job(job)].items():
        actions.update(chosen or _declared(source))
    return frozenset(actions)


def unassigned() -> dict[str, set[str]]:
    """Declared actions no job uses ({source: actions}); a test keeps this empty."""
    used: dict[str, set[str]] = {}
    for job in JOBS.values():
        for source, chosen in job.items():
            used.setdefault(source, set()).update(chosen or _declared(source))
    out = {s: set(_declared(s)) - used.get(s, set()) for s in sources()}
    return {s: a for s, a in out.items() if a}


def undeclared() -> dict[str, set[str]]:
    """Actions a job takes from a module that does not declare them; a test keeps this empty."""
    out: dict[str, set[str]] = {}
    for job in JOBS.values():
        for source, chosen in job.items():
            missing = set(chosen) - set(_declared(source))
            if missing:
                out.setdefault(source, set()).update(missing)
    return out


def declared_actions(include_packer: bool = True) -> list[str]:
    """Every IAM action the pipeline's AWS boundary (and Packer) declares, sorted."""
    actions: set[str] = set()
    for source in sources():
        if include_packer or source != PACKER:
            actions.update(_declared(source))
    return sorted(actions)


def load_policy(job: str, directory: Path = POLICY_DIR) -> dict[str, Any]:
    """The checked-in policy of ``job`` (``policies/iam/<job>.json``)."""
    path = directory / f"{check_job(job)}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: $: not a policy document")
    return doc


def granted_actions(doc: Mapping[str, Any]) -> frozenset[str]:
    """Every action an identity policy's Allow statements name."""
    out: set[str] = set()
    for statement in doc.get("Statement", []):
        if statement.get("Effect") == "Allow":
            action = statement.get("Action", [])
            out.update([action] if isinstance(action, str) else action)
    return frozenset(out)


def render(job: str | None = None, directory: Path = POLICY_DIR) -> str:
    """JSON text of one job's policy, or of all jobs' policies keyed by job."""
    if job is not None:
        return json.dumps(load_policy(job, directory), indent=2)
    return json.dumps({j: load_policy(j, directory) for j in JOBS}, indent=2)
