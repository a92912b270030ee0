"""Helpers for the local AWS tests, as fixtures: session clients, a ``world`` builder, manifests.

The server itself comes from ``tests/conftest.py`` (``local_aws_server`` / ``aws``). Test modules
import nothing from here (tests/ is not a package): constants live on ``World``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from pipeline import catalog, coverage
from pipeline.catalog import Platform
from pipeline.coverage import CoverageManifest
from pipeline.localaws import LocalAws

EKS = "/aws/service/eks/optimized-ami"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
NO_RETRY = Config(retries={"total_max_attempts": 1})
SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
CIS_POLICY = "arn:aws:iam::aws:policy/AmazonInspector2ManagedCisPolicy"
BOTH = (SSM_POLICY, CIS_POLICY)
# The AWS EKS workshop's FAILED checks on a CIS-hardened EKS AL2 node (inspector-cis-api.md §5).
WORKSHOP_13 = frozenset(
    {
        *("1.1.22", "1.6.1.6", "2.1.1.2", "3.2.1", "3.5.3.2.3", "3.5.3.2.4", "3.5.3.3.3"),
        *("4.2.1.5", "5.3.2", "5.3.4", "6.1.10", "6.1.11", "6.1.12"),
    }
)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def client(
    endpoint: str, service: str, region: str = "us-east-1", config: Config = NO_RETRY
) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name=region, config=config, **CREDENTIALS
    )


@dataclass
class Clients:
    ec2: Any
    iam: Any
    ssm: Any
    inspector: Any


@pytest.fixture(scope="session")
def clients(local_aws_server: LocalAws) -> Clients:
    """No-retry clients of the session server (a fault shows as one ClientError)."""
    endpoint = local_aws_server.endpoint
    return Clients(*(client(endpoint, s) for s in ("ec2", "iam", "ssm", "inspector2")))


def manifest(
    platform: Platform, states: Mapping[str, str] | None = None, default: str = "remediated"
) -> CoverageManifest:
    """A coverage manifest: every automated recommendation in ``default`` state unless ``states``
    says otherwise (state ``gap`` leaves the entry out)."""
    cat = catalog.load(platform)
    entries: dict[str, dict[str, str]] = {}
    for rec in cat.recommendations.values():
        state = (states or {}).get(rec.id, default)
        if not rec.automated or state == "gap":
            continue
        body = {"state": state}
        if state == "remediated":
            body["function"] = "cis_" + rec.id.replace(".", "_")
        if state in ("not_applicable", "base"):
            body["reason"] = "test manifest"
        entries[rec.id] = body
    raw = {"platform": platform.value, "benchmark_version": cat.version, "recommendations": entries}
    return coverage.parse_manifest(raw, source="<test manifest>")


def workshop_manifest() -> CoverageManifest:
    """FIXTURE manifest for AL2: the workshop's 13 checks excepted, every other one remediated."""
    return manifest(Platform.AMAZON_LINUX_2, {check: "excepted" for check in WORKSHOP_13})


class World:
    """Builds what a scan needs in the local AWS: roles, AMIs, tagged instances, scans."""

    SSM_POLICY = SSM_POLICY
    CIS_POLICY = CIS_POLICY
    WORKSHOP_13 = WORKSHOP_13
    Platform = Platform
    manifest = staticmethod(manifest)
    workshop_manifest = staticmethod(workshop_manifest)
    client = staticmethod(client)

    def __init__(self, aws: LocalAws, clients: Clients) -> None:
        self.aws = aws
        self.c = clients
        self._profiles: dict[tuple[str, ...], str] = {}

    def profile(self, policies: Iterable[str] = BOTH) -> str:
        """An instance profile whose role has exactly ``policies`` attached."""
        key = tuple(sorted(policies))
        if key not in self._profiles:
            name = f"cis-test-{len(self._profiles)}"
            self.c.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
            for arn in key:
                self.c.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            self.c.iam.create_instance_profile(InstanceProfileName=name)
            self.c.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
            self._profiles[key] = name
        return self._profiles[key]

    def custom_profile(
        self,
        inline: Iterable[Mapping[str, Any]] = (),
        managed: Iterable[Mapping[str, Any]] = (),
        aws_managed: Iterable[str] = (),
    ) -> str:
        """An instance profile whose role gets its permissions from inline policies, customer
        managed policies (created here) and AWS managed ones (ARNs), as given."""
        name = f"cis-custom-{len(self._profiles)}"
        self._profiles[(name,)] = name
        self.c.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
        for index, document in enumerate(inline):
            self.c.iam.put_role_policy(
                RoleName=name, PolicyName=f"inline-{index}", PolicyDocument=json.dumps(document)
            )
        for index, document in enumerate(managed):
            arn = self.c.iam.create_policy(
                PolicyName=f"{name}-managed-{index}", PolicyDocument=json.dumps(document)
            )["Policy"]["Arn"]
            self.c.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for arn in aws_managed:
            self.c.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        self.c.iam.create_instance_profile(InstanceProfileName=name)
        self.c.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        return name

    def base_ami(
        self, platform: str = "amazon-linux-2023", k8s: str = "1.32", arch: str = "x86_64"
    ) -> str:
        """The seeded EKS-optimized AMI, resolved like the pipeline does: via its SSM parameter."""
        if platform == "amazon-linux-2023":
            name = f"{EKS}/{k8s}/amazon-linux-2023/{arch}/standard/recommended/image_id"
        else:
            suffix = "-arm64" if arch == "arm64" else ""
            name = (
                f"/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2{suffix}/recommended/image_id"
            )
        return str(self.c.ssm.get_parameter(Name=name)["Parameter"]["Value"])

    def ami(self, tags: Mapping[str, str], base: str | None = None) -> str:
        """An AMI built like Packer does (builder instance -> CreateImage with tags)."""
        builder = self.c.ec2.run_instances(ImageId=base or self.base_ami(), MinCount=1, MaxCount=1)
        instance_id = builder["Instances"][0]["InstanceId"]
        image = self.c.ec2.create_image(
            InstanceId=instance_id,
            Name=f"cis-test-{len(tags)}-{instance_id}",
            TagSpecifications=[
                {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )
        self.c.ec2.terminate_instances(InstanceIds=[instance_id])
        return str(image["ImageId"])

    def hardened(self, platform: Platform, level: int = 2) -> str:
        return self.ami({"cis-ami:platform": platform.value, "cis-ami:hardening-level": str(level)})

    def launch(
        self,
        ami: str | None = None,
        tags: Mapping[str, str] | None = None,
        policies: Iterable[str] | None = BOTH,
        count: int = 1,
        profile: str | None = None,
    ) -> list[str]:
        """Running instances tagged ``tags`` (default cis-scan=run-1), role with ``policies``
        (or the instance profile named ``profile``)."""
        kwargs: dict[str, Any] = {}
        if profile is not None:
            kwargs["IamInstanceProfile"] = {"Name": profile}
        elif policies is not None:
            kwargs["IamInstanceProfile"] = {"Name": self.profile(policies)}
        tag_list = [{"Key": k, "Value": v} for k, v in (tags or {"cis-scan": "run-1"}).items()]
        response = self.c.ec2.run_instances(
            ImageId=ami or self.base_ami(),
            MinCount=count,
            MaxCount=count,
            InstanceType="t3.medium",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}],
            **kwargs,
        )
        return [i["InstanceId"] for i in response["Instances"]]

    def create(
        self,
        tags: Mapping[str, list[str]] | None = None,
        level: str = "LEVEL_2",
        schedule: Mapping[str, Any] | None = None,
        activate: bool = True,
    ) -> str:
        """A CIS scan configuration; Inspector EC2 scanning is first ENABLED (unless not
        ``activate``), as CIS scans need it."""
        if activate:
            self.aws.emulation.accounts.activate(self.aws.region)
        response = self.c.inspector.create_cis_scan_configuration(
            scanName="cis-test",
            securityLevel=level,
            schedule=dict(schedule or {"oneTime": {}}),
            targets={
                "accountIds": ["SELF"],
                "targetResourceTags": dict(tags or {"cis-scan": ["run-1"]}),
            },
        )
        return str(response["scanConfigurationArn"])

    def scans(self, config_arn: str) -> list[dict[str, Any]]:
        flt = {"scanConfigurationArnFilters": [{"comparison": "EQUALS", "value": config_arn}]}
        return list(self.c.inspector.list_cis_scans(filterCriteria=flt).get("scans", []))

    def scan(
        self,
        tags: Mapping[str, list[str]] | None = None,
        level: str = "LEVEL_2",
        finish: bool = True,
    ) -> str:
        """Create a one-time configuration (after SSM registration), return the scan ARN."""
        self.aws.advance(2)  # past the default SSM registration delay
        (scan,) = self.scans(self.create(tags, level))
        if finish:
            self.aws.advance(10)  # past the default scan duration
        return str(scan["scanArn"])

    def targets(self, scan_arn: str) -> dict[str, dict[str, Any]]:
        pages = self.c.inspector.get_paginator(
            "list_cis_scan_results_aggregated_by_target_resource"
        )
        return {
            item["targetResourceId"]: item
            for page in pages.paginate(scanArn=scan_arn)
            for item in page.get("targetResourceAggregations", [])
        }

    def details(self, scan_arn: str, instance_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        pages = self.c.inspector.get_paginator("get_cis_scan_result_details")
        return [
            row
            for page in pages.paginate(
                scanArn=scan_arn,
                targetResourceId=instance_id,
                accountId=self.aws.account_id,
                **kwargs,
            )
            for row in page.get("scanResultDetails", [])
        ]

    def outcome(self, scan_arn: str, instance_id: str) -> dict[str, set[str]]:
        """Check IDs by status."""
        result: dict[str, set[str]] = {"PASSED": set(), "FAILED": set(), "SKIPPED": set()}
        for row in self.details(scan_arn, instance_id):
            result[row["status"]].add(row["checkId"])
        return result


@pytest.fixture
def world(aws: LocalAws, clients: Clients) -> World:
    return World(aws, clients)


@pytest.fixture
def make_manifest() -> Any:
    """``make_manifest(platform, states=None, default="remediated")`` (no server needed)."""
    return manifest


@pytest.fixture
def workshop_13() -> frozenset[str]:
    return WORKSHOP_13


@pytest.fixture
def shared(local_aws_server: LocalAws, clients: Clients) -> Any:
    """The session server WITHOUT a reset, for tests that need no particular state (e.g. requests
    that fail validation); the default scenario is back in force afterwards."""
    yield World(local_aws_server, clients)
    local_aws_server.load_scenario(None)
