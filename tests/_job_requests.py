"""Every AWS call a job's real run makes, as the IAM request AWS would authorize: the action, the
resource ARN where the call names one (IAM roles, instance profiles and policies, SSM
parameters, S3 buckets and objects, KMS keys by ARN), and the condition keys the call supplies
(``iam:PolicyARN``, ``iam:AWSServiceName``). Calls on EC2 are checked by action only (their
tags are ``tests._iam_requests.Recorder``'s), and so are KMS's (keys are named by alias and
judged by their tags: tests/evidence/test_setup.py). The local AWS enforces no IAM: this is how a
missing grant, resource or condition shows before a real account refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient

from pipeline.aws import iam_policy
from pipeline.iam_eval import Request, decide

# Operations whose IAM action has another name.
ACTION = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "s3:GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
}


@dataclass
class CallRecorder:
    account: str
    requests: list[Request] = field(default_factory=list)

    @contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[CallRecorder]:
        original = BaseClient._make_api_call
        recorder = self

        def call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            region = client.meta.region_name or "us-east-1"
            recorder.requests.append(recorder._request(service, operation, params, region))
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", call)
        try:
            yield self
        finally:
            monkeypatch.setattr(BaseClient, "_make_api_call", original)

    def _request(
        self, service: str, operation: str, params: dict[str, Any], region: str
    ) -> Request:
        action = ACTION.get(f"{service}:{operation}", f"{service}:{operation}")
        account, context = self.account, {}
        resource = "*"
        if service == "iam":
            if "PolicyArn" in params and operation in ("GetPolicy", "GetPolicyVersion"):
                resource = params["PolicyArn"]
            elif "InstanceProfileName" in params:
                resource = (
                    f"arn:aws:iam::{account}:instance-profile/{params['InstanceProfileName']}"
                )
            elif "RoleName" in params:
                resource = f"arn:aws:iam::{account}:role/{params['RoleName']}"
            if operation == "AttachRolePolicy":
                context["iam:PolicyARN"] = params["PolicyArn"]
            if operation == "CreateServiceLinkedRole":
                name = params["AWSServiceName"]
                context["iam:AWSServiceName"] = name
                resource = f"arn:aws:iam::{account}:role/aws-service-role/{name}/x"
        elif service == "ssm" and ("Name" in params or "Path" in params):
            name = params.get("Name") or params["Path"]
            name = name if name.startswith("/") else "/" + name
            owner = "" if name.startswith("/aws/service/") else account
            resource = f"arn:aws:ssm:{region}:{owner}:parameter{name}"
        elif service == "s3" and "Bucket" in params:
            key = params.get("Key")
            resource = f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key else "")
        elif service == "kms" and str(params.get("KeyId", "")).startswith("arn:"):
            resource = params["KeyId"]
        return Request(action, resource, context)


def denied(job: str, requests: list[Request]) -> list[Request]:
    """The requests the job's policy does not allow (EC2: the action alone is checked)."""
    policy = [iam_policy.load_policy(job)]
    granted = iam_policy.granted_actions(policy[0])
    out = []
    for request in requests:
        if request.action.startswith(("ec2:", "kms:")):
            if request.action not in granted:
                out.append(request)
        elif not decide(policy, request).allowed:
            out.append(request)
    return out
