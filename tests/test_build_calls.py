"""Every authorization a real build asks of IAM is one policies/iam/build.json grants, decided
request by request with ``pipeline.iam_eval.decide`` (action, resource type, tags in the request
or on the resource, ``ec2:CreateAction``): what the pinned Packer amazon plugin sends
(``pipeline.aws.packer.CALLS``, and ``COPY_CALLS`` when the template copies the AMI) and what the
pipeline's own build calls send (recorded, tests._job_requests). Issue 21: an untagged network
interface, encrypt_boot's untagged copy and the heartbeat's ec2:DescribeKeyPairs each fail here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import hcl2
import pytest

from pipeline.aws import iam_policy, make_clients, network
from pipeline.aws import packer as packer_calls
from pipeline.build import _heartbeat, make_specs
from pipeline.build.process import LiveProcesses
from pipeline.catalog import Platform
from pipeline.iam_eval import Request, decide
from pipeline.localaws import LocalAws
from pipeline.packer import Arch, provenance_tags
from pipeline.settings import NetworkSettings
from pipeline.tags import MANAGED_TAG, MANAGED_VALUE
from tests._job_requests import CallRecorder, denied

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "packer" / "eks-cis.pkr.hcl"
RUN = "20261127T120000Z-abcdef"
NOW = "2026-11-27T12:00:00Z"


def _template() -> dict[str, Any]:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    with TEMPLATE.open(encoding="utf-8") as handle:
        return dict(hcl2.load(handle, serialization_options=options))


def _source(template: dict[str, Any]) -> dict[str, Any]:
    (block,) = template["source"]
    return dict(block["amazon-ebs"]["eks-cis"])


def _tags() -> dict[str, dict[str, str]]:
    """The run tags (local.run_tags, rendered for a run) and the provenance tags."""
    (spec,) = make_specs(
        [Platform.AMAZON_LINUX_2023], [Arch.X86_64], "1.33", 2, local=False, run_id=RUN,
        region="us-east-1", out_dir=Path("out"),
    )  # fmt: skip
    spec = replace(spec, source_ami="ami-0fedcba9876543210")
    (run_tags,) = [b["run_tags"] for b in _template()["locals"] if "run_tags" in b]
    rendered = {
        str(k): str(v).replace("${var.run_id}", RUN).replace("${timestamp()}", NOW)
        for k, v in run_tags.items()
    }
    assert "${" not in str(rendered)
    return {packer_calls.RUN: rendered, packer_calls.PROVENANCE: provenance_tags(spec)}


def _template_calls() -> tuple[packer_calls.Call, ...]:
    """What the plugin asks with the checked-in template: COPY_CALLS too if it copies the AMI
    (encrypt_boot, ami_regions); a launch tagged on create if it has run_tags."""
    source = _source(_template())
    copies = source.get("encrypt_boot") is True or "ami_regions" in source
    assert source["run_tags"] == "${local.run_tags}"  # RunInstances tags instance + interface
    return packer_calls.CALLS + (packer_calls.COPY_CALLS if copies else ())


def _explain(requests: list[Request]) -> str:
    return "\n".join(f"{r.action} {r.resource} {dict(r.context)}" for r in requests)


def test_every_authorization_packer_asks_is_allowed_by_build_json() -> None:
    policy = [iam_policy.load_policy("build")]
    requests = packer_calls.requests(_template_calls(), _tags())
    refused = [r for r in requests if not decide(policy, r).allowed]
    assert _explain(refused) == ""


@pytest.mark.parametrize(
    ("call", "why"),
    [
        (
            next(c for c in packer_calls.CALLS if c.resource == "network-interface"),
            "the launch tags the network interface",
        ),
        (packer_calls.COPY_CALLS[0], "an AMI copy carries no request tags"),
        (packer_calls.COPY_CALLS[2], "a copy's snapshots are created untagged"),
    ],
    ids=["network-interface", "copy", "copy-snapshot"],
)
def test_the_check_sees_resource_types_and_tags_not_only_actions(
    call: packer_calls.Call, why: str
) -> None:
    """The defects of issue 21 as requests: each one that build.json must refuse (the copy) or
    allow (the interface) is decided on its resource and tags, not its action name."""
    policy = [iam_policy.load_policy("build")]
    granted = iam_policy.granted_actions(policy[0])
    decisions = [decide(policy, r).allowed for r in packer_calls.requests((call,), _tags())]
    if call in packer_calls.COPY_CALLS:
        assert not all(decisions), why  # what the template must not do: it is not granted
    else:
        assert all(decisions) and call.action in granted, why


def test_the_declaration_names_only_actions_packer_is_granted_for() -> None:
    declared = packer_calls.IAM_ACTIONS
    for call in packer_calls.CALLS:
        assert any(
            call.action == a or (a.endswith("*") and call.action.startswith(a[:-1]))
            for a in declared
        ), call.action
    assert packer_calls.PLUGIN_VERSION in (ROOT / "packer" / "versions.pkr.hcl").read_text()


def test_the_build_heartbeat_and_network_preflight_call_only_what_build_json_allows(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = make_clients(region="us-east-1")
    group = clients.ec2.create_security_group(
        GroupName="packer-tmp", Description="x",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [
            {"Key": MANAGED_TAG, "Value": MANAGED_VALUE}, {"Key": "cis-ami:run-id", "Value": RUN}
        ]}],
    )["GroupId"]  # fmt: skip
    (spec,) = make_specs(
        [Platform.AMAZON_LINUX_2023], [Arch.X86_64], "1.33", 2, local=False, run_id=RUN,
        region="us-east-1", out_dir=Path("out"),
    )  # fmt: skip
    recorder = CallRecorder(aws.account_id)
    lines: list[str] = []
    with recorder.installed(monkeypatch):
        beat = _heartbeat(clients, [spec], lines.append, LiveProcesses())
        assert beat.beat(), lines
        network.prepare(clients, NetworkSettings(), ["m6i.large"])
    actions = {r.action for r in recorder.requests}
    assert {"ec2:DescribeKeyPairs", "ec2:CreateTags", "ec2:DescribeRouteTables"} <= actions
    assert "ec2:DescribeInstanceTypeOfferings" in actions
    assert _explain(denied("build", recorder.requests)) == ""
    tags = clients.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [group]}])
    assert "cis-pipeline:heartbeat" in {t["Key"] for t in tags["Tags"]}


def test_the_validate_network_preflight_calls_only_what_validate_json_allows(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = make_clients(region="us-east-1")
    recorder = CallRecorder(aws.account_id)
    with recorder.installed(monkeypatch):
        network.prepare(clients, NetworkSettings(), ["m6i.large", "m7g.large"])
    assert "ec2:DescribeRouteTables" in {r.action for r in recorder.requests}
    assert _explain(denied("validate", recorder.requests)) == ""
