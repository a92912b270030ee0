"""The test instance's RunInstances request, captured (botocore event hook) from a validation run
on the local AWS: IMDSv2, hop limit 1, no key pair, no public IP, no ingress, encrypted root,
terminate on power-off, the dead-man's switch, and the ownership, run and heartbeat tags."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline import heartbeat
from pipeline.aws import AwsClients, ec2, make_clients, network
from pipeline.localaws import LocalAws
from pipeline.settings import NetworkSettings
from pipeline.tags import HEARTBEAT_TAG, MANAGED_TAG, RUN_TAG
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests.validate.conftest import FakeTime, make_ami, settings


@pytest.fixture
def clients(aws: LocalAws) -> AwsClients:
    return make_clients()


def capture(clients: AwsClients, operation: str) -> list[dict[str, Any]]:
    """Every request ``operation`` makes from now on, as the caller passed it to botocore."""
    seen: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    clients.ec2.meta.events.register(f"provide-client-params.ec2.{operation}", hook)
    return seen


def tags_of(request: dict[str, Any], resource_type: str) -> dict[str, str]:
    (spec,) = [s for s in request["TagSpecifications"] if s["ResourceType"] == resource_type]
    return {t["Key"]: t["Value"] for t in spec["Tags"]}


def test_the_test_instance_launch_request(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    ami = make_ami(clients)
    runs = capture(clients, "RunInstances")
    groups = capture(clients, "CreateSecurityGroup")
    fake = FakeTime(aws)
    rt = Runtime(now=shifted_now, echo=lambda _: None, sleep=fake.sleep, clock=fake.clock)
    run_validate(settings(tmp_path, ami, run_id="cisv-20261127120000-launch"), clients, rt)

    (req,) = runs
    assert req["ImageId"] == ami and (req["MinCount"], req["MaxCount"]) == (1, 1)
    assert req["MetadataOptions"]["HttpTokens"] == "required"  # IMDSv2 only
    assert req["MetadataOptions"]["HttpPutResponseHopLimit"] == 1  # no container reaches IMDS
    assert "KeyName" not in req and "KeyName" not in str(req)  # no SSH key at all
    (nic,) = req["NetworkInterfaces"]
    # --public-ip auto (the default): the subnet's own choice; a default subnet maps public IPs,
    # the route to SSM the network preflight checked (pipeline.aws.network)
    assert nic["AssociatePublicIpAddress"] is True
    assert "SecurityGroupIds" not in req and "SecurityGroups" not in req
    (root,) = req["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["DeleteOnTermination"] is True
    assert req["InstanceInitiatedShutdownBehavior"] == "terminate"
    user_data = base64.b64decode(req["UserData"]).decode()
    assert re.search(r"^shutdown -P \+120 ", user_data, re.MULTILINE), user_data
    assert req["IamInstanceProfile"] == {"Name": "eks-cis-ami-pipeline-scan"}

    # The per-run security group: created by this run, tagged as ours, never given ingress.
    (made,) = groups
    assert made["GroupName"] == "cis-validate-cisv-20261127120000-launch"
    assert len(nic["Groups"]) == 1
    assert clients.calls.counts["ec2:AuthorizeSecurityGroupIngress"] == 0
    for resource in ("instance", "volume"):
        tags = tags_of(req, resource)
        assert tags[MANAGED_TAG] == "true"
        assert tags[RUN_TAG] == "cisv-20261127120000-launch"
        heartbeat.parse(tags[HEARTBEAT_TAG])
    sg_tags = tags_of(made, "security-group")
    assert (sg_tags[MANAGED_TAG], sg_tags[RUN_TAG]) == ("true", "cisv-20261127120000-launch")


def test_the_run_security_group_has_no_ingress(aws: LocalAws, clients: AwsClients) -> None:
    vpc = clients.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(clients, vpc, "cis-validate-x", {MANAGED_TAG: "true"})
    (described,) = clients.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    assert described["IpPermissions"] == []


@pytest.mark.parametrize("public_ip", [False, True])
def test_public_ip_only_when_asked(aws: LocalAws, clients: AwsClients, public_ip: bool) -> None:
    ami = make_ami(clients)
    runs = capture(clients, "RunInstances")
    placed = network.prepare(clients, NetworkSettings(), ["t3.medium"])
    vpc, subnet = placed.vpc_id, placed.subnet_id
    group = ec2.create_security_group(clients, vpc, "g", {MANAGED_TAG: "true"})
    clients.iam.create_instance_profile(InstanceProfileName="p")
    spec = ec2.LaunchSpec(
        ami_id=ami,
        instance_type="t3.medium",
        instance_profile="p",
        subnet_id=subnet,
        security_group_id=group,
        tags={MANAGED_TAG: "true", RUN_TAG: "r"},
        ttl_minutes=30,
        public_ip=public_ip,
    )
    instance = ec2.launch(clients, spec)
    ec2.terminate(clients, [instance])
    (req,) = runs
    assert req["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is public_ip
    assert "shutdown -P +30 " in base64.b64decode(req["UserData"]).decode()
