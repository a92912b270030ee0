"""The IAM requests AWS authorizes for the pipeline's writes, for ``pipeline.iam_eval.decide``:
built by hand from the code's own tag and key functions (``create_tags``, ``put_object``...), or
recorded from what a run really sends (``Recorder``: tag writes, tags given on create, S3
objects), each with the context AWS would supply."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient

from pipeline.iam_eval import Request, tag_context

ACCOUNT = "111122223333"
REGION = "us-east-1"
_TYPES = {  # ID prefix -> (EC2 resource type, ARN carries the account)
    "ami-": ("image", False),
    "snap-": ("snapshot", False),
    "i-": ("instance", True),
    "vol-": ("volume", True),
    "sg-": ("security-group", True),
    "key-": ("key-pair", True),
}
# A create call's TagSpecifications ResourceType -> the EC2 resource type in ARNs.
CREATE_CALLS = ("RunInstances", "CreateSecurityGroup", "CreateKeyPair", "CreateImage", "CopyImage")


def ec2_arn(kind: str, resource_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """The ARN of an EC2 resource: images and snapshots name no account."""
    owner = "" if kind in ("image", "snapshot") else account
    return f"arn:aws:ec2:{region}:{owner}:{kind}/{resource_id}"


def arn_of_id(resource_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    for prefix, (kind, _) in _TYPES.items():
        if resource_id.startswith(prefix):
            return ec2_arn(kind, resource_id, region, account)
    return f"arn:aws:ec2:{region}:{account}:unknown/{resource_id}"  # matches no policy


def create_tags(
    arn: str, tags: Mapping[str, str], resource_tags: Mapping[str, str] | None = None
) -> Request:
    """ec2:CreateTags of ``tags`` on an existing resource that has ``resource_tags``."""
    return Request("ec2:CreateTags", arn, tag_context(tags, resource_tags=resource_tags or {}))


def delete_tags(
    arn: str, keys: Sequence[str], resource_tags: Mapping[str, str] | None = None
) -> Request:
    """ec2:DeleteTags of ``keys`` (none: every tag) on a resource that has ``resource_tags``."""
    context = tag_context(tag_keys=keys, resource_tags=resource_tags or {})
    return Request("ec2:DeleteTags", arn, context)


def tag_on_create(create_action: str, arn: str, tags: Mapping[str, str]) -> list[Request]:
    """A create call given ``tags`` (TagSpecifications): the call itself on what it creates,
    with the tags in the request, and the ec2:CreateTags AWS authorizes with it."""
    return [
        Request(f"ec2:{create_action}", arn, tag_context(tags)),
        Request("ec2:CreateTags", arn, tag_context(tags, create_action=create_action)),
    ]


def put_object(bucket: str, key: str, *, account: str = ACCOUNT, region: str = REGION) -> Request:
    """s3:PutObject, signed by a principal of ``account`` calling S3 in ``region``."""
    context = {"aws:PrincipalAccount": account, "aws:RequestedRegion": region}
    return Request("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", context)


@dataclass
class Recorder:
    """Records, as IAM requests, every tag write (CreateTags, DeleteTags, TagSpecifications of a
    create call) and every S3 object write the process's botocore clients make, with the tags
    the resource had just before. On the local AWS it also makes CopyImage's TagSpecifications
    take effect, as AWS does (moto ignores them), so the run goes the way it goes on AWS."""

    account: str
    requests: list[tuple[str, Request]] = field(default_factory=list)  # (operation, request)
    _quiet: threading.local = field(default_factory=threading.local)

    @contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
        original = BaseClient._make_api_call
        recorder = self

        def call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            def raw(op: str, args: dict[str, Any]) -> Any:
                recorder._quiet.on = True
                try:
                    return original(client, op, args)
                finally:
                    recorder._quiet.on = False

            if getattr(recorder._quiet, "on", False):
                return original(client, operation, params)
            service = client.meta.service_model.service_name
            region = client.meta.region_name or REGION
            recorder._record(service, operation, params, region, raw)
            result = original(client, operation, params)
            if (service, operation) == ("ec2", "CopyImage"):
                recorder._tag_copy(params, result, raw)
            return result

        monkeypatch.setattr(BaseClient, "_make_api_call", call)
        try:
            yield self
        finally:
            monkeypatch.setattr(BaseClient, "_make_api_call", original)

    def of(self, *operations: str) -> list[Request]:
        return [r for op, r in self.requests if not operations or op in operations]

    def _record(
        self, service: str, operation: str, params: dict[str, Any], region: str, raw: Any
    ) -> None:
        add = self.requests.append
        if service == "s3" and operation == "PutObject":
            put = put_object(params["Bucket"], params["Key"], account=self.account, region=region)
            add((operation, put))
        if service != "ec2":
            return
        if operation in ("CreateTags", "DeleteTags"):
            sent = params.get("Tags", [])
            for resource in params.get("Resources", []):
                arn = arn_of_id(resource, region, self.account)
                had = _tags_of(raw, resource)
                if operation == "CreateTags":
                    add((operation, create_tags(arn, {t["Key"]: t["Value"] for t in sent}, had)))
                else:
                    add((operation, delete_tags(arn, [t["Key"] for t in sent], had)))
        if operation in CREATE_CALLS:
            for spec in params.get("TagSpecifications", []):
                arn = ec2_arn(spec["ResourceType"], "new", region, self.account)
                tags = {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
                for request in tag_on_create(operation, arn, tags):
                    add((operation, request))

    def _tag_copy(self, params: dict[str, Any], result: Any, raw: Any) -> None:
        specs = {s["ResourceType"]: s["Tags"] for s in params.get("TagSpecifications", [])}
        image = result["ImageId"]
        found = raw("DescribeImages", {"ImageIds": [image]})["Images"]
        mappings = found[0].get("BlockDeviceMappings", []) if found else []
        snapshots = [m["Ebs"]["SnapshotId"] for m in mappings if m.get("Ebs", {}).get("SnapshotId")]
        for kind, ids in (("image", [image]), ("snapshot", snapshots)):
            if specs.get(kind) and ids:
                raw("CreateTags", {"Resources": ids, "Tags": specs[kind]})


def _tags_of(raw: Any, resource_id: str) -> dict[str, str]:
    found = raw("DescribeTags", {"Filters": [{"Name": "resource-id", "Values": [resource_id]}]})
    return {t["Key"]: t["Value"] for t in found.get("Tags", [])}
