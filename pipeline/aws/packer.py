"""What Packer's amazon plugin calls through its own SDK with the pipeline's credentials.

Nothing here calls AWS: the actions are declared beside the boundary's own ``IAM_ACTIONS`` so the
build job's IAM policy (``pipeline.iam_policy``) covers what Packer does on the pipeline's behalf,
and ``CALLS`` declares each authorization the pinned plugin asks of IAM (action, resource type,
tags in the request or on the resource), so ``requests`` can test build.json with
``pipeline.iam_eval.decide``: an action name alone cannot show a missing resource type or tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.iam_eval import Request, tag_context

# What Packer's amazon-ebs builder calls with the pipeline's credentials (production template:
# Session Manager through a pre-created instance profile named in var.iam_instance_profile, so no
# iam:CreateRole; encrypted launch volumes, whose snapshots the AMI keeps; deprecation, manifest;
# no encrypt_boot and no ami_regions, so no ec2:CopyImage). The plugin's documented list minus what
# only other builders (chroot, ebssurrogate, ebsvolume) or a temporary profile need; granted,
# scoped, by policies/iam/build.json.
# https://developer.hashicorp.com/packer/integrations/hashicorp/amazon#iam-task-or-instance-role
IAM_ACTIONS: tuple[str, ...] = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateImage",
    "ec2:CreateKeyPair",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:DeleteKeyPair",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteSnapshot",
    "ec2:DeleteVolume",
    "ec2:DeregisterImage",
    "ec2:DescribeImageAttribute",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcs",
    "ec2:EnableImageDeprecation",
    "ec2:GetPasswordData",
    "ec2:ModifyImageAttribute",
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifySnapshotAttribute",
    "ec2:RunInstances",
    "ec2:StopInstances",
    "ec2:TerminateInstances",
    "iam:GetInstanceProfile",
    "iam:PassRole",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "ssm:DescribeInstanceInformation",
    "ssm:GetParameter",
    "ssm:StartSession",
    "ssm:TerminateSession",
)

# The plugin version whose source ``CALLS`` follows (packer/versions.pkr.hcl pins it).
PLUGIN_VERSION = "1.8.2"
RUN = "run"  # the template's local.run_tags (run_tags, run_volume_tags: the same map)
PROVENANCE = "provenance"  # the template's local.provenance_tags (tags, snapshot_tags)
PROFILE = "eks-cis-ami-pipeline-packer"  # var.iam_instance_profile's default (setup makes it)


@dataclass(frozen=True, slots=True)
class Call:
    """One authorization Packer's amazon-ebs builder asks of IAM with the production template.

    ``resource``: an EC2 resource type (``instance``, ``network-interface``...; its ARN is made
    by ``requests``) or a whole ARN. ``sends``: the tags in the request (RUN, PROVENANCE or
    None); ``on_create``: sent as the TagSpecifications of the call creating the resource, which
    IAM also authorizes as ec2:CreateTags with ``ec2:CreateAction``. ``has``: the tags the
    resource carries already (RUN, or None: a stock AMI, a subnet, an untagged copy).
    """

    step: str  # the plugin's source file (builder/common/ unless it says ebs/)
    action: str
    resource: str
    sends: str | None = None
    on_create: bool = False
    has: str | None = None
    context: tuple[tuple[str, str], ...] = ()


_KMS_VIA_EC2 = (("kms:ViaService", "ec2.{region}.amazonaws.com"),)
_KMS_KEY = "arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# The production template's build, step by step (plugin v1.8.2, amazon-ebs): subnet_id given
# (the pipeline always passes one), temporary key pair and security group, a named instance
# profile, Session Manager, encrypted launch volumes with var.kms_key_id, run_tags and
# run_volume_tags, CreateImage with the run tags, deprecate_at, tags and snapshot_tags.
CALLS: tuple[Call, ...] = (
    Call("step_source_ami_info.go", "ec2:DescribeImages", "*"),
    Call("step_network_info.go", "ec2:DescribeSubnets", "*"),
    Call("step_key_pair.go", "ec2:CreateKeyPair", "key-pair", RUN, on_create=True),
    Call("step_security_group.go", "ec2:DescribeSecurityGroups", "*"),
    Call("step_security_group.go", "ec2:CreateSecurityGroup", "security-group", RUN, True),
    Call("step_security_group.go", "ec2:CreateSecurityGroup", "vpc", RUN),
    Call("step_security_group.go", "ec2:AuthorizeSecurityGroupIngress", "security-group", has=RUN),
    Call("step_iam_instance_profile.go", "iam:GetInstanceProfile", f"instance-profile/{PROFILE}"),
    # RunInstances: TagSpecifications instance + network-interface (run_tags), volume
    Call("step_run_source_instance.go", "ec2:RunInstances", "instance", RUN, on_create=True),
    Call("step_run_source_instance.go", "ec2:RunInstances", "network-interface", RUN, True),
    Call("step_run_source_instance.go", "ec2:RunInstances", "volume", RUN, on_create=True),
    # the request's tags are in the context of every resource it names (aws:RequestTag)
    Call("step_run_source_instance.go", "ec2:RunInstances", "image", RUN),  # the EKS AMI
    Call("step_run_source_instance.go", "ec2:RunInstances", "subnet", RUN),
    Call("step_run_source_instance.go", "ec2:RunInstances", "security-group", RUN, has=RUN),
    Call("step_run_source_instance.go", "ec2:RunInstances", "key-pair", RUN, has=RUN),
    Call(
        "step_run_source_instance.go",
        "iam:PassRole",
        f"role/{PROFILE}",
        context=(("iam:PassedToService", "ec2.amazonaws.com"),),
    ),
    Call("step_run_source_instance.go", "kms:CreateGrant", _KMS_KEY, context=_KMS_VIA_EC2),
    Call(
        "step_run_source_instance.go",
        "kms:GenerateDataKeyWithoutPlaintext",
        _KMS_KEY,
        context=_KMS_VIA_EC2,
    ),  # fmt: skip
    Call("step_run_source_instance.go", "kms:Decrypt", _KMS_KEY, context=_KMS_VIA_EC2),
    Call("step_run_source_instance.go", "kms:DescribeKey", _KMS_KEY, context=_KMS_VIA_EC2),
    Call("step_run_source_instance.go", "ec2:DescribeInstances", "*"),
    Call("ssm/session.go", "ssm:StartSession", "instance", has=RUN),
    Call(
        "ssm/session.go",
        "ssm:StartSession",
        "arn:aws:ssm:{region}::document/AWS-StartPortForwardingSession",
    ),
    Call(
        "ssm/session.go",
        "ssm:TerminateSession",
        "arn:aws:ssm:{region}:{account}:session/AROAEXAMPLE:build-0123456789abcdef0",
        context=(("aws:userid", "AROAEXAMPLE:build"),),
    ),
    Call("step_stop_ebs_instance.go", "ec2:StopInstances", "instance", has=RUN),
    Call("step_modify_ebs_instance.go", "ec2:ModifyInstanceAttribute", "instance", has=RUN),
    # ebs/step_create_ami.go: TagSpecifications image + snapshot (run_tags)
    Call("ebs/step_create_ami.go", "ec2:CreateImage", "instance", RUN, has=RUN),
    Call("ebs/step_create_ami.go", "ec2:CreateImage", "image", RUN, on_create=True),
    Call("ebs/step_create_ami.go", "ec2:CreateImage", "snapshot", RUN, on_create=True),
    Call("step_enable_deprecation.go", "ec2:EnableImageDeprecation", "image", has=RUN),
    Call("step_modify_ami_attributes.go", "ec2:ModifyImageAttribute", "image", has=RUN),
    # step_create_tags.go: tags on the AMI and snapshot_tags on its snapshots, after the fact
    Call("step_create_tags.go", "ec2:CreateTags", "image", PROVENANCE, has=RUN),
    Call("step_create_tags.go", "ec2:CreateTags", "snapshot", PROVENANCE, has=RUN),
    Call("step_run_source_instance.go", "ec2:TerminateInstances", "instance", has=RUN),
    Call("step_security_group.go", "ec2:DeleteSecurityGroup", "security-group", has=RUN),
    Call("step_key_pair.go", "ec2:DeleteKeyPair", "key-pair", has=RUN),
)
# What step_ami_region_copy.go adds with encrypt_boot (a copy of an intermediate AMI) or
# ami_regions (a copy per region): CopyImage with no TagSpecifications (CopyImageTags copies
# the AMI's tags, which IAM does not see as request tags), then step_create_tags.go tags the
# copies' snapshots, which carry no tag yet. build.json grants neither, so the production
# template sets neither (release copies are promote's: tagged on create, policies/iam/promote.json).
COPY_CALLS: tuple[Call, ...] = (
    Call("step_ami_region_copy.go", "ec2:CopyImage", "image", has=RUN),
    Call("step_ami_region_copy.go", "ec2:CopyImage", "snapshot"),
    Call("step_create_tags.go", "ec2:CreateTags", "snapshot", PROVENANCE),
    Call("step_ami_region_copy.go", "ec2:DeregisterImage", "image", has=RUN),
    Call("step_ami_region_copy.go", "ec2:DeleteSnapshot", "snapshot", has=RUN),
)
_OWNERLESS = ("image", "snapshot")  # their ARNs name no account


def arn(resource: str, region: str, account: str) -> str:
    """The ARN of a ``Call``'s resource: an EC2 type (made up ID), an IAM path, or an ARN."""
    if resource.startswith("arn:"):
        return resource.format(region=region, account=account)
    if resource.startswith(("role/", "instance-profile/")):
        return f"arn:aws:iam::{account}:{resource}"
    owner = "" if resource in _OWNERLESS else account
    return f"arn:aws:ec2:{region}:{owner}:{resource}/{resource[:3]}-0123456789abcdef0"


def requests(
    calls: tuple[Call, ...],
    tags: Mapping[str, Mapping[str, str]],
    *,
    region: str = "us-east-1",
    account: str = "111122223333",
) -> list[Request]:
    """The IAM requests of ``calls``, with ``tags`` {RUN: ..., PROVENANCE: ...} as rendered for
    a build: a create call with tags is two requests (the call, and ec2:CreateTags with
    ``ec2:CreateAction``), as AWS authorizes tag on create."""
    out: list[Request] = []
    for call in calls:
        target = arn(call.resource, region, account) if call.resource != "*" else "*"
        sent = dict(tags[call.sends]) if call.sends else None
        held = dict(tags[call.has]) if call.has else None
        extra = {k: v.format(region=region) for k, v in call.context}
        if call.on_create:
            out.append(Request(call.action, target, tag_context(sent, extra=extra)))
            name = call.action.removeprefix("ec2:")
            out.append(Request("ec2:CreateTags", target, tag_context(sent, create_action=name)))
        else:
            out.append(
                Request(call.action, target, tag_context(sent, resource_tags=held, extra=extra))
            )
    return out
