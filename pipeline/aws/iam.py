"""IAM: the scan instance's role and instance profile, and checking what a profile carries."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect
from pipeline.errors import ConfigError

IAM_ACTIONS: tuple[str, ...] = (
    "iam:GetInstanceProfile",
    "iam:ListAttachedRolePolicies",
    "iam:CreateRole",
    "iam:TagRole",
    "iam:AttachRolePolicy",
    "iam:CreateInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:PassRole",
)
SSM_CORE = "AmazonSSMManagedInstanceCore"
CIS_POLICY = "AmazonInspector2ManagedCisPolicy"  # capital P: the real name
REQUIRED_POLICIES = (SSM_CORE, CIS_POLICY)
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
    policies: frozenset[str]  # names of the managed policies attached to its role

    @property
    def missing(self) -> list[str]:
        return [p for p in REQUIRED_POLICIES if p not in self.policies]


def describe_profile(clients: AwsClients, name: str) -> InstanceProfile:
    """The profile, its role and the role's attached policies. Unknown name → ConfigError."""
    try:
        profile = clients.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise ConfigError(f"--instance-profile {name}: no such instance profile") from exc
        raise aws_error(f"iam:GetInstanceProfile {name}", exc) from exc
    roles = profile.get("Roles", [])
    role = roles[0]["RoleName"] if roles else None
    policies: set[str] = set()
    if role:
        attached = collect(
            clients.iam, "list_attached_role_policies", "AttachedPolicies", RoleName=role
        )
        policies = {str(p["PolicyName"]) for p in attached}
    return InstanceProfile(name, profile["Arn"], role, frozenset(policies))


def ensure_scan_profile(clients: AwsClients, name: str, tags: dict[str, str]) -> InstanceProfile:
    """Create (or reuse) a role + instance profile named ``name`` with exactly the two policies."""
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    try:
        clients.iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(_TRUST),
            Description="EKS CIS AMI pipeline: test instances scanned by Amazon Inspector",
            Tags=tag_list,  # type: ignore[arg-type]
        )
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":
            raise aws_error(f"iam:CreateRole {name}", exc) from exc
    for policy in REQUIRED_POLICIES:
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
    profile = describe_profile(clients, name)
    if profile.role is None:
        try:
            clients.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        except ClientError as exc:
            raise aws_error(f"iam:AddRoleToInstanceProfile {name}", exc) from exc
        profile = describe_profile(clients, name)
    return profile
