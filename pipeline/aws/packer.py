"""What Packer's amazon plugin calls through its own SDK with the pipeline's credentials.

Nothing here calls AWS: the actions are declared beside the boundary's own ``IAM_ACTIONS`` so the
build job's IAM policy (``pipeline.iam_policy``) covers what Packer does on the pipeline's behalf.
"""

from __future__ import annotations

# What Packer's amazon-ebs builder calls with the pipeline's credentials (production template:
# Session Manager through a pre-created instance profile named in var.iam_instance_profile, so no
# iam:CreateRole; encrypted AMI, deprecation, manifest). The plugin's documented list minus what
# only other builders (chroot, ebssurrogate, ebsvolume) or a temporary profile need; granted,
# scoped, by policies/iam/build.json.
# https://developer.hashicorp.com/packer/integrations/hashicorp/amazon#iam-task-or-instance-role
IAM_ACTIONS: tuple[str, ...] = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CopyImage",
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
