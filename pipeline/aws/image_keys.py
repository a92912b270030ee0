"""KMS and EBS calls about the keys that encrypt released images: read a key (metadata, policy,
grants), which key encrypts each snapshot, create the pipeline's image key, and what a consumer
account is given (DescribeImages ExecutableUsers). Nothing here decides anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.aws._paginate import collect
from pipeline.errors import AwsError
from pipeline.kms_policy import KeyFacts

IAM_ACTIONS: tuple[str, ...] = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:ListGrants",
    "kms:CreateKey",
    "kms:CreateAlias",
    "kms:PutKeyPolicy",
    "kms:TagResource",
    "ec2:DescribeSnapshots",
    "ec2:DescribeImages",
)


@dataclass(frozen=True, slots=True)
class SnapshotKey:
    """How a snapshot is encrypted (DescribeSnapshots): ``key`` None when it is not."""

    snapshot: str
    key: str | None


def _kms(clients: AwsClients) -> Any:
    if clients.kms is None:
        raise AwsError("no KMS client in this client bundle")
    return clients.kms


def read_key(clients: AwsClients, key_id: str) -> KeyFacts | None:
    """The key (ID, ARN, alias) with its key policy and grants, or None when it does not exist
    (kms:DescribeKey, kms:GetKeyPolicy, kms:ListGrants; the last two only for a customer key)."""
    kms = _kms(clients)
    try:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise aws_error(f"kms:DescribeKey {key_id} ({clients.region})", exc) from exc
    arn = str(meta["Arn"])
    manager = str(meta.get("KeyManager", "CUSTOMER"))
    policy: Mapping[str, Any] | None = None
    grants: list[tuple[str, tuple[str, ...]]] = []
    if manager == "CUSTOMER":
        try:
            text = kms.get_key_policy(KeyId=arn, PolicyName="default").get("Policy") or "{}"
            items = collect(kms, "list_grants", "Grants", KeyId=arn)
        except ClientError as exc:
            raise aws_error(f"kms:GetKeyPolicy/ListGrants {arn} ({clients.region})", exc) from exc
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = {}
        policy = loaded if isinstance(loaded, dict) else {}
        grants = [
            (str(g.get("GranteePrincipal", "")), tuple(str(o) for o in g.get("Operations", [])))
            for g in items
        ]
    return KeyFacts(
        arn=arn,
        manager=manager,
        state=str(meta.get("KeyState", "Enabled" if meta.get("Enabled") else "Disabled")),
        spec=str(meta.get("KeySpec", meta.get("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"))),
        usage=str(meta.get("KeyUsage", "ENCRYPT_DECRYPT")),
        policy=policy,
        grants=tuple(grants),
    )


def snapshot_keys(clients: AwsClients, snapshot_ids: Sequence[str]) -> list[SnapshotKey]:
    """The key of each snapshot (ec2:DescribeSnapshots); None for an unencrypted one."""
    if not snapshot_ids:
        return []
    try:
        items = collect(
            clients.ec2, "describe_snapshots", "Snapshots", SnapshotIds=list(snapshot_ids)
        )
    except ClientError as exc:
        raise aws_error(
            f"ec2:DescribeSnapshots {', '.join(snapshot_ids)} ({clients.region})", exc
        ) from exc
    found = {
        str(s["SnapshotId"]): (str(s.get("KmsKeyId")) if s.get("Encrypted") else None)
        for s in items
    }
    return [SnapshotKey(s, found.get(s)) for s in snapshot_ids]


def create_image_key(
    clients: AwsClients, alias: str, policy: Mapping[str, Any], tags: Mapping[str, str]
) -> str:
    """A new symmetric customer-managed key with ``policy``, tagged, reachable as ``alias``;
    its ARN (kms:CreateKey, kms:CreateAlias)."""
    kms = _kms(clients)
    try:
        meta = kms.create_key(
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            Description="eks-cis-ami-pipeline: encrypts the released images' snapshots",
            Policy=json.dumps(policy),
            Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())],
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    except ClientError as exc:
        raise aws_error(f"kms:CreateKey {alias} ({clients.region})", exc) from exc
    return str(meta["Arn"])


def put_key_policy(clients: AwsClients, key_arn: str, policy: Mapping[str, Any]) -> None:
    """Replace the key's policy (kms:PutKeyPolicy)."""
    try:
        _kms(clients).put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(policy))
    except ClientError as exc:
        raise aws_error(f"kms:PutKeyPolicy {key_arn} ({clients.region})", exc) from exc


def executable_by(clients: AwsClients, ami_id: str, account: str) -> bool:
    """Whether ``account`` has launch permission on this account's AMI, as EC2 lists the images
    an account may launch (ec2:DescribeImages with ExecutableUsers)."""
    try:
        items = collect(
            clients.ec2,
            "describe_images",
            "Images",
            Owners=["self"],
            ExecutableUsers=[account],
            Filters=[{"Name": "image-id", "Values": [ami_id]}],
        )
    except ClientError as exc:
        raise aws_error(
            f"ec2:DescribeImages {ami_id} for {account} ({clients.region})", exc
        ) from exc
    return any(str(i.get("ImageId")) == ami_id for i in items)
