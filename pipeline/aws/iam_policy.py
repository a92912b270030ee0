"""Least-privilege IAM per job: which of the actions ``pipeline/aws`` modules (and Packer) declare
each job needs (``JOBS``), which tag keys and evidence objects each job's code writes
(``WRITES``), and the checked-in ``policies/iam/<job>.json`` that grant exactly those.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import evidence_keys
from pipeline.errors import ConfigError
from pipeline.tags import (
    AMI_TAG_PREFIX,
    CHANNEL_TAG_PREFIX,
    CIS_TAG_PREFIX,
    COPIED_FROM_TAG,
    COPIED_TAG_KEYS,
    COPY_TAG_PREFIX,
    DRIFT_COUNTS_TAG,
    DRIFT_FAILED_TAG,
    HEARTBEAT_TAG,
    MANAGED_TAG,
    MANAGED_VALUE,
    NAME_TAG,
    REVOKED_AT_TAG,
    REVOKED_BY_TAG,
    REVOKED_REASON_TAG,
    REVOKED_TAG,
    VALIDATE_TAG_PREFIX,
)

PACKER = "pipeline.aws.packer"
MODULES = (
    "pipeline.aws.account",
    "pipeline.aws.ec2",
    "pipeline.aws.network",
    "pipeline.aws.iam",
    "pipeline.aws.images",
    "pipeline.aws.inspector",
    "pipeline.aws.ssm",
    "pipeline.aws.runcommand",
    "pipeline.aws.packages",
    "pipeline.aws.s3",
    "pipeline.aws.kms",
    "pipeline.aws.image_keys",
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
        # the heartbeat on Packer's resources (pipeline.build.beat)
        "pipeline.aws.ec2": (
            "ec2:CreateTags",
            "ec2:DescribeInstances",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeKeyPairs",
        ),
        # the build instance's subnet, zone, public IP, group and route to SSM (preflight)
        "pipeline.aws.network": (),
        PACKER: (),  # all of them: filled in by job_actions()
    },
    "validate": {
        "pipeline.aws.account": ("sts:GetCallerIdentity",),
        "pipeline.aws.images": ("ec2:DescribeImages", "ec2:CreateTags", "ec2:DeleteTags"),
        "pipeline.aws.ec2": (
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
        # the test instances' subnet, zone, public IP, group and route to SSM (preflight)
        "pipeline.aws.network": (),
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
        # the node probe (SSM Run Command) and Inspector's package scan of the test instances
        "pipeline.aws.runcommand": (),
        "pipeline.aws.packages": (),
        # the nightly chain's drift report reads the channel's current image; `invoke audit`
        # reads the channels it re-validates (pipeline.orchestration.audit)
        "pipeline.aws.release": ("ssm:GetParameter", "ssm:GetParametersByPath"),
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
        # verifying the signed record (pipeline.evidence.verify); recording each regional copy
        # in the release history (<account>/<region>/<ami>/releases/, revoke reads it)
        "pipeline.aws.s3": ("s3:ListBucket", "s3:GetObject", "s3:PutObject"),
        "pipeline.aws.kms": ("kms:DescribeKey", "kms:Verify", "kms:GetPublicKey"),
        # promotion channels, copies to other regions, sharing, revoke, retention (pipeline.release)
        "pipeline.aws.release": (),
        # the key preflight (every key of the images to share) and the consumer-side check
        "pipeline.aws.image_keys": (
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:ListGrants",
            "ec2:DescribeSnapshots",
            "ec2:DescribeImages",
        ),
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
            "ssm:GetParameterHistory",  # every image a channel ever published is kept
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
        # the evidence bucket and its protections; no object (setup writes none of the evidence)
        "pipeline.aws.s3": (
            "s3:CreateBucket",
            "s3:ListBucket",
            "s3:PutBucketVersioning",
            "s3:GetBucketVersioning",
            "s3:PutBucketPublicAccessBlock",
            "s3:GetBucketPublicAccessBlock",
            "s3:PutEncryptionConfiguration",
            "s3:GetEncryptionConfiguration",
            "s3:PutBucketPolicy",
            "s3:GetBucketPolicy",
            "s3:PutBucketObjectLockConfiguration",
            "s3:GetBucketObjectLockConfiguration",
            "s3:PutBucketTagging",
        ),
        "pipeline.aws.kms": ("kms:CreateKey", "kms:CreateAlias", "kms:TagResource")
        + ("kms:DescribeKey", "kms:GetPublicKey"),
        # --image-keys: the images' key per release region (or a check of a brought key)
        "pipeline.aws.image_keys": (
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:ListGrants",
            "kms:CreateKey",
            "kms:CreateAlias",
            "kms:PutKeyPolicy",
            "kms:TagResource",
        ),
        # Enabling Inspector is one-time account setup (validate --enable-inspector needs it too).
        "pipeline.aws.inspector": (
            "inspector2:BatchGetAccountStatus",
            "inspector2:Enable",
            "iam:CreateServiceLinkedRole",
        ),
    },
}


# --- What each job writes: tag keys and evidence objects -----------------------------------
# ARNs of the EC2 resources the jobs tag (any region, the caller's account).
EC2_ARNS: Mapping[str, str] = {
    "instance": "arn:aws:ec2:*:*:instance/*",
    "volume": "arn:aws:ec2:*:*:volume/*",
    "network-interface": "arn:aws:ec2:*:*:network-interface/*",
    "security-group": "arn:aws:ec2:*:*:security-group/*",
    "key-pair": "arn:aws:ec2:*:*:key-pair/*",
    "image": "arn:aws:ec2:*::image/*",
    "snapshot": "arn:aws:ec2:*::snapshot/*",
}
EVIDENCE_BUCKET_ARN = f"arn:aws:s3:::{evidence_keys.BUCKET_PREFIX}*"
# A run's prefix, as evidence_keys lays it out: the caller's own account, the region it calls.
EVIDENCE_RUN_PREFIX = evidence_keys.run_prefix(
    "${aws:PrincipalAccount}", "${aws:RequestedRegion}", "ami-*", "*"
)


@dataclass(frozen=True, slots=True)
class TagWrite:
    """Tag keys (exact, or ``prefix*`` as IAM's StringLike reads it) a job writes on some EC2
    resource types in one way: with the call that creates them (``create_actions``, checked by
    IAM as ``ec2:CreateAction``, with the ownership tag in the request), or later with
    ec2:CreateTags on resources already tagged as the pipeline's (``owned``) or on any
    (validate's verdict on a stock AMI); ``delete``: ec2:DeleteTags of those keys too."""

    sid: str
    keys: tuple[str, ...]
    resources: tuple[str, ...]  # keys of EC2_ARNS
    create_actions: tuple[str, ...] = ()
    owned: bool = True
    delete: bool = False

    def statement(self) -> dict[str, Any]:
        """The IAM statement granting exactly this."""
        keys = {"ForAllValues:StringLike": {"aws:TagKeys": list(self.keys)}}
        condition: dict[str, Any]
        if self.create_actions:
            eq = {"ec2:CreateAction": list(self.create_actions)}
            condition = {"StringEquals": {**eq, f"aws:RequestTag/{MANAGED_TAG}": MANAGED_VALUE}}
            condition.update(keys)
        else:
            owned = {f"aws:ResourceTag/{MANAGED_TAG}": MANAGED_VALUE}
            condition = {"StringEquals": owned} if self.owned else {}
            # Null: a CreateTags/DeleteTags naming no key (DeleteTags then deletes every tag)
            condition.update({**keys, "Null": {"aws:TagKeys": "false"}})
        actions = ["ec2:CreateTags", "ec2:DeleteTags"] if self.delete else ["ec2:CreateTags"]
        resources = [EC2_ARNS[r] for r in self.resources]
        return _allow(self.sid, actions, resources, condition)


@dataclass(frozen=True, slots=True)
class Writes:
    """What one job's code writes: tags, and objects of the evidence bucket (key patterns
    under the bucket, with policy variables)."""

    tags: tuple[TagWrite, ...] = ()
    objects: tuple[str, ...] = ()
    objects_sid: str = "WriteEvidence"

    def statements(self) -> list[dict[str, Any]]:
        """The job policy's statements granting ec2:CreateTags, ec2:DeleteTags, s3:PutObject."""
        out = [t.statement() for t in self.tags]
        if self.objects:
            arns = [f"{EVIDENCE_BUCKET_ARN}/{key}" for key in self.objects]
            out.append(_allow(self.objects_sid, ["s3:PutObject"], arns))
        return out


def _allow(
    sid: str, actions: list[str], resources: list[str], condition: Any = None
) -> dict[str, Any]:
    """An Allow statement in the key order of the checked-in files."""
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


PIPELINE_KEYS = (MANAGED_TAG, HEARTBEAT_TAG)  # ownership and liveness, on what a job creates
BUILD_KEYS = (NAME_TAG, f"{AMI_TAG_PREFIX}*", *PIPELINE_KEYS)  # Packer's tags, tag_builds
BUILT = ("instance", "volume", "security-group", "key-pair", "image", "snapshot")
# RunInstances also tags the build instance's network interface (Packer's run_tags)
BUILT_ON_CREATE = ("instance", "network-interface", *BUILT[1:])
RELEASE_KEYS = (  # promote's channel record and copy pointers, revoke's revocation
    f"{CHANNEL_TAG_PREFIX}*",
    f"{COPY_TAG_PREFIX}*",
    REVOKED_TAG,
    REVOKED_REASON_TAG,
    REVOKED_AT_TAG,
    REVOKED_BY_TAG,
)
WRITES: Mapping[str, Writes] = {
    "build": Writes(
        tags=(
            # Packer's run_tags on its instance, network interface, volumes, group, key pair; the
            # AMI's and its snapshots' at CreateImage (pipeline.aws.packer.CALLS). No CopyImage:
            # the build copies nothing (no encrypt_boot, no ami_regions: promote copies, tagged)
            TagWrite(
                "TagOnCreate",
                BUILD_KEYS,
                BUILT_ON_CREATE,
                ("RunInstances", "CreateSecurityGroup", "CreateKeyPair", "CreateImage"),
            ),
            # Packer's provenance tags (StepCreateTags), tag_builds' fingerprint, the heartbeat
            TagWrite("TagOwnBuildResourcesWithBuildKeys", BUILD_KEYS, BUILT),
        )
    ),
    "validate": Writes(
        tags=(
            TagWrite(
                "TagOnCreate",
                (NAME_TAG, f"{VALIDATE_TAG_PREFIX}*", *PIPELINE_KEYS),
                ("instance", "volume", "security-group"),
                ("RunInstances", "CreateSecurityGroup"),
            ),
            TagWrite(
                "HeartbeatOnOwnInstancesAndGroups", (HEARTBEAT_TAG,), ("instance", "security-group")
            ),
            # PENDING, the verdict and the pointer to the signed record; on any AMI (a stock
            # one too), so only the cis: keys, and only validate (the role that can sign)
            TagWrite(
                "VerdictTagsOnlyCisKeysOnAnyAmi",
                (f"{CIS_TAG_PREFIX}*",),
                ("image",),
                owned=False,
                delete=True,
            ),
            # the nightly chain's drift record, on the pipeline AMI it validated
            TagWrite("DriftRecordOnPipelineAmis", (DRIFT_COUNTS_TAG, DRIFT_FAILED_TAG), ("image",)),
        ),
        # every object of a run (evidence_keys.RUN_OBJECTS), only under its own prefix
        objects=(f"{EVIDENCE_RUN_PREFIX}*",),
        objects_sid="WriteEvidenceOnlyUnderTheCallersAccountAndRegion",
    ),
    "promote": Writes(
        tags=(
            # a regional copy gets its source's tags (cis: pointers too) only as CopyImage makes it
            TagWrite(
                "TagCopiesOnCreate",
                (*COPIED_TAG_KEYS, COPIED_FROM_TAG),
                ("image", "snapshot"),
                ("CopyImage",),
            ),
            TagWrite("ReleaseTagsOnlyOnPipelineAmis", RELEASE_KEYS, ("image",)),
        ),
        # the release history: each regional copy promote made, under the source AMI's prefix
        objects=(
            evidence_keys.releases_prefix(
                "${aws:PrincipalAccount}", "${aws:RequestedRegion}", "ami-*"
            )
            + "*",
        ),
        objects_sid="RecordCopiesInTheReleaseHistory",
    ),
    "reap": Writes(),
    "setup": Writes(),
}
WRITE_ACTIONS = frozenset({"ec2:CreateTags", "ec2:DeleteTags", "s3:PutObject"})


def write_statements(job: str) -> list[dict[str, Any]]:
    """The statements of ``job``'s policy that grant WRITE_ACTIONS, as ``WRITES`` says."""
    return WRITES[check_job(job)].statements()


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
