"""IAM: the scan instance's role and instance profile, and which of the actions the scan needs
its role's policies grant (AWS managed, customer managed or inline; decided by iam_eval)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeline import iam_eval
from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect
from pipeline.errors import ConfigError

IAM_ACTIONS: tuple[str, ...] = (
    "iam:GetInstanceProfile",
    "iam:ListAttachedRolePolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:CreateRole",
    "iam:TagRole",
    "iam:AttachRolePolicy",
    "iam:CreateInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:PassRole",
)
SSM_CORE = "AmazonSSMManagedInstanceCore"
CIS_POLICY = "AmazonInspector2ManagedCisPolicy"  # capital P: the real name
REQUIRED_POLICIES = (SSM_CORE, CIS_POLICY)  # what ensure_scan_profile attaches
REQUIRED_ACTIONS = iam_eval.SCAN_ROLE_ACTIONS  # what preflight checks, whatever grants them
_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True, slots=True)
class InstanceProfile:
    name: str
    arn: str
    role: str | None
    policies: frozenset[str]  # names of the role's managed (attached) and inline policies
    missing: tuple[str, ...] = REQUIRED_ACTIONS  # required actions its role does not grant
    conditional: frozenset[str] = frozenset()  # granted only under a Condition (assumed true)
    by_documents: bool = False  # judged by reading every policy document (describe_profile)


def profile_exists(clients: AwsClients, name: str) -> bool:
    """Whether the instance profile ``name`` exists with a role in it (iam:GetInstanceProfile)."""
    try:
        profile = clients.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise aws_error(f"iam:GetInstanceProfile {name}", exc) from exc
    return bool(profile.get("Roles"))


def describe_profile(clients: AwsClients, name: str) -> InstanceProfile:
    """The profile, its role, and which REQUIRED_ACTIONS the role's policies do not grant.

    Reads every policy of the role: attached managed ones (their default version) and inline
    ones (iam:GetInstanceProfile, ListAttachedRolePolicies, GetPolicy, GetPolicyVersion,
    ListRolePolicies, GetRolePolicy). Unknown profile → ConfigError; other failures → AwsError.
    """
    try:
        profile = clients.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise ConfigError(f"--instance-profile {name}: no such instance profile") from exc
        raise aws_error(f"iam:GetInstanceProfile {name}", exc) from exc
    roles = profile.get("Roles", [])
    role = roles[0]["RoleName"] if roles else None
    if not role:
        return InstanceProfile(name, profile["Arn"], None, frozenset())
    names, documents = _role_policies(clients, role)
    decision = iam_eval.evaluate(documents, REQUIRED_ACTIONS)
    return InstanceProfile(
        name, profile["Arn"], role, names, decision.missing, decision.conditional, True
    )


def _role_policies(clients: AwsClients, role: str) -> tuple[frozenset[str], list[Any]]:
    """Names and documents of every policy of ``role`` (managed: the default version)."""
    names: set[str] = set()
    documents: list[Any] = []
    try:
        attached = collect(
            clients.iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role
        )
        for policy in attached:
            arn = str(policy["PolicyArn"])
            names.add(str(policy["PolicyName"]))
            version = clients.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            found = clients.iam.get_policy_version(PolicyArn=arn, VersionId=version)
            documents.append(found["PolicyVersion"]["Document"])
        for inline in collect(clients.iam, "list_role_policies", "PolicyNames", RoleName=role):
            names.add(str(inline))
            found_inline = clients.iam.get_role_policy(RoleName=role, PolicyName=str(inline))
            documents.append(found_inline["PolicyDocument"])
    except ClientError as exc:
        raise aws_error(f"reading the policies of IAM role {role}", exc) from exc
    return frozenset(names), documents


def ensure_scan_profile(clients: AwsClients, name: str, tags: dict[str, str]) -> InstanceProfile:
    """Create (or reuse) a role + instance profile named ``name`` with exactly the two policies."""
    ensure_instance_profile(
        clients,
        name,
        REQUIRED_POLICIES,
        "EKS CIS AMI pipeline: test instances scanned by Amazon Inspector",
        tags,
    )
    return _attached_only(clients, name)


def ensure_instance_profile(
    clients: AwsClients,
    name: str,
    policies: tuple[str, ...],
    description: str,
    tags: dict[str, str],
) -> None:
    """Create (or reuse) a role + instance profile ``name`` trusting EC2, with the AWS managed
    ``policies`` attached (iam:CreateRole, AttachRolePolicy, CreateInstanceProfile,
    AddRoleToInstanceProfile). Idempotent. Raises AwsError on failure."""
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    try:
        clients.iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(_TRUST),
            Description=description,
            Tags=tag_list,  # type: ignore[arg-type]
        )
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":
            raise aws_error(f"iam:CreateRole {name}", exc) from exc
    for policy in policies:
        try:
            clients.iam.attach_role_policy(
                RoleName=name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}"
            )
        except ClientError as exc:
            raise aws_error(f"iam:AttachRolePolicy {policy} to {name}", exc) from exc
    try:
        clients.iam.create_instance_profile(InstanceProfileName=name, Tags=tag_list)  # type: ignore[arg-type]
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":
            raise aws_error(f"iam:CreateInstanceProfile {name}", exc) from exc
    found = clients.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    if not found.get("Roles"):
        try:
            clients.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        except ClientError as exc:
            raise aws_error(f"iam:AddRoleToInstanceProfile {name}", exc) from exc


def _attached_only(clients: AwsClients, name: str) -> InstanceProfile:
    """The profile ensure_scan_profile made, judged by the AWS managed policies it attached
    (setup's IAM policy grants no policy reads; describe_profile reads every document)."""
    profile = clients.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    roles = profile.get("Roles", [])
    role = roles[0]["RoleName"] if roles else None
    names: frozenset[str] = frozenset()
    if role:
        attached = collect(
            clients.iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role
        )
        names = frozenset(str(p["PolicyName"]) for p in attached)
    missing = (() if SSM_CORE in names else iam_eval.SSM_CORE_ACTIONS) + (
        () if CIS_POLICY in names else iam_eval.CIS_SESSION_ACTIONS
    )
    return InstanceProfile(name, profile["Arn"], role, names, missing if role else REQUIRED_ACTIONS)
