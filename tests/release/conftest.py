"""Fixtures for the release tests: the session's local AWS, clients, pipeline-built AMIs and a
verifier standing in for ``pipeline.evidence.verify`` where a test needs a verified record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline import policy
from pipeline.aws import AwsClients, make_clients
from pipeline.aws.images import eks_ami_parameter
from pipeline.catalog import Platform
from pipeline.channels import ReleaseSettings, release_settings
from pipeline.evidence import store
from pipeline.evidence.verify import Verification
from pipeline.key_setup import run_image_keys
from pipeline.localaws import LocalAws
from pipeline.packer import Arch
from pipeline.release.promote import PromoteRequest, Promotion, run_promote
from pipeline.tags import BUILD_RUN_TAG, MANAGED_TAG, MANAGED_VALUE
from tests._dates import shifted_now

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policies" / "exceptions"
REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2")
ACCOUNT = "111122223333"


@pytest.fixture
def aws(local_aws_server: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """The session's local AWS, reset, with the client environment of the pipeline."""
    local_aws_server.reset()
    for key, value in local_aws_server.env().items():
        monkeypatch.setenv(key, value)
    yield local_aws_server


@pytest.fixture
def clients(aws: LocalAws) -> AwsClients:
    """us-east-1, with the evidence bucket promote records its copies in."""
    home = make_clients(region="us-east-1")
    home.s3.create_bucket(Bucket=store.default_bucket(aws.account_id, "us-east-1"))  # type: ignore[union-attr]
    return home


def release(**overrides: object) -> ReleaseSettings:
    config: dict[str, object] = {
        "channels": {"candidate": {"min_level": 1}, "stable": {}},
        "default_channel": "stable",
    }
    config.update(overrides)
    return release_settings(config, build_level=2, known_regions=REGIONS)


def base_ami(clients: AwsClients, k8s: str = "1.32", arch: str = "x86_64") -> str:
    name = eks_ami_parameter(k8s, Platform.AMAZON_LINUX_2023, Arch(arch))
    return clients.ssm.get_parameter(Name=name)["Parameter"]["Value"]


def pipeline_ami(
    clients: AwsClients,
    name: str,
    *,
    k8s: str = "1.32",
    arch: str = "x86_64",
    tags: dict[str, str] | None = None,
) -> str:
    """An AMI as ``invoke build`` leaves it: from the EKS base, with provenance and ownership."""
    instance = clients.ec2.run_instances(
        ImageId=base_ami(clients, k8s, arch), InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    ami = clients.ec2.create_image(InstanceId=instance, Name=name)["ImageId"]
    clients.ec2.terminate_instances(InstanceIds=[instance])
    values = {
        "cis-ami:platform": "AMAZON_LINUX_2023",
        "cis-ami:architecture": arch,
        "cis-ami:kubernetes-version": k8s,
        "cis-ami:hardening-level": "2",
        MANAGED_TAG: MANAGED_VALUE,
        BUILD_RUN_TAG: f"run-{name}",
        **(tags or {}),
    }
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in values.items()]
    )
    return ami


def current_policy_sha() -> str:
    return policy.load_all(policy.discover(POLICY_DIR))[Platform.AMAZON_LINUX_2023].sha256


def verified(
    ami: str,
    *,
    region: str = "us-east-1",
    ok: bool = True,
    reasons: tuple[str, ...] = (),
    level: str | None = "LEVEL_2",
    policy_sha256: tuple[str, ...] | None = None,
    time_verified: datetime | None = None,
    local: bool = True,
    sections: dict[str, Any] | None = None,
) -> Verification:
    """A Verification as pipeline.evidence.verify returns it for a good record (overridable):
    its statement states the three sections (``sections``: default all PASS)."""
    stated = passing_sections() if sections is None else sections
    return Verification(
        ami_id=ami,
        region=region,
        ok=ok,
        reasons=reasons,
        statement={"predicate": {"annotations": {"sections": stated}}},
        level=level,
        policy_sha256=policy_sha256 if policy_sha256 is not None else (current_policy_sha(),),
        time_verified=time_verified or shifted_now(),
        local=local,
        record_uri="s3://evidence/x",
        key_id="key",
    )


def passing_sections() -> dict[str, Any]:
    """The ``sections`` annotation of a record whose three gates passed."""
    return {
        "cis": {"verdict": "PASS", "passed": 200, "failed": 0, "excepted": 9, "skipped": 21},
        "node": {
            "verdict": "PASS",
            "passed": 14,
            "failed": 0,
            "probeSha256": "1" * 64,
            "catalogueSha256": "2" * 64,
        },
        "vulnerabilities": {
            "verdict": "PASS",
            "counts": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 2, "LOW": 1},
            "blocking": 0,
            "excepted": 0,
            "suppressed": 0,
            "policySha256": "3" * 64,
        },
    }


def verifier_ok() -> Callable[[AwsClients, str], Verification]:
    """Every AMI verifies (for tests of what happens after verification)."""
    return lambda clients, ami: verified(ami, region=clients.region)


def promote(
    clients: AwsClients, request: PromoteRequest, settings: ReleaseSettings | None = None
) -> Promotion:
    """``run_promote`` as the release tests run it: the default channels (or ``settings``), the
    shipped policies, a verifier that accepts, now, quietly."""
    return run_promote(
        request,
        settings or release(),
        clients,
        datetime.now(UTC),
        lambda _: None,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),
        known_regions=REGIONS,
    )


def encrypted_ami(clients: AwsClients, name: str, key: str | None = None) -> str:
    """An AMI as ``invoke build`` leaves it on the local AWS: Packer's encrypted copy of the
    built image (``encrypt_boot``), with ``key`` or, by default, the AWS-managed EBS key."""
    plain = pipeline_ami(clients, f"{name}-unencrypted")
    extra = {"KmsKeyId": key} if key else {}
    ami = clients.ec2.copy_image(
        SourceImageId=plain, SourceRegion=clients.region, Name=name, Encrypted=True, **extra
    )["ImageId"]
    tags = clients.ec2.describe_images(ImageIds=[plain])["Images"][0]["Tags"]
    clients.ec2.create_tags(Resources=[ami], Tags=tags)
    clients.ec2.deregister_image(ImageId=plain)
    return ami


def image_keys(
    clients: AwsClients, regions: tuple[str, ...], accounts: tuple[str, ...], **overrides: object
) -> ReleaseSettings:
    """``invoke setup --image-keys`` for ``regions`` and ``accounts``: release settings that
    name the keys it made (as it records them in invoke.yaml)."""
    made = run_image_keys(clients, regions, accounts, {}, echo=lambda _: None)
    return release(kms_keys=dict(made.keys), accounts=list(accounts), **overrides)
