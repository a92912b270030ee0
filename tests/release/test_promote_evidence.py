"""Promotion trusts only the signed record `invoke validate` writes (pipeline.evidence), never
tags: a validated AMI is promoted; forged or altered tags on it or on a stock AMI are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.aws import AwsClients
from pipeline.errors import GateBlocked
from pipeline.evidence import store
from pipeline.localaws import LocalAws
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests.release.conftest import POLICY_DIR, REGIONS, base_ami, pipeline_ami, release
from tests.validate.conftest import FakeTime, ami_tags, settings

PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _promote(clients: AwsClients, ami: str) -> object:
    return run_promote(
        PromoteRequest(ami=ami),
        release(),
        clients,
        shifted_now(),
        print,
        policy_dir=POLICY_DIR,
        known_regions=REGIONS,
    )


def test_only_the_signed_record_counts(aws: LocalAws, clients: AwsClients, tmp_path: Path) -> None:
    ami = pipeline_ami(clients, "validated")
    fake = FakeTime(aws)
    lines: list[str] = []
    verdict = run_validate(
        settings(tmp_path, ami),
        clients,
        Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock),
    )
    assert verdict.verdict.value == "PASS", lines[-20:]
    record_tags = {k: v for k, v in ami_tags(clients, ami).items() if k.startswith("cis:")}

    # Every tag of the validated AMI, record pointers included, copied onto a stock AMI.
    stock = base_ami(clients)
    forged = {
        **record_tags,
        "cis-ami:platform": "AMAZON_LINUX_2023",
        "cis-ami:kubernetes-version": "1.32",
        "cis-ami:architecture": "x86_64",
    }
    clients.ec2.create_tags(
        Resources=[stock], Tags=[{"Key": k, "Value": v} for k, v in forged.items()]
    )
    with pytest.raises(GateBlocked) as caught:
        _promote(clients, stock)
    assert any("does not verify" in line for line in caught.value.lines()), caught.value.lines()

    # The validated AMI itself is promoted on its record.
    _promote(clients, ami)
    assert clients.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == ami

    # A platform tag that disagrees with the record cannot re-file the image elsewhere.
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": "cis-ami:platform", "Value": "AMAZON_LINUX_2"}]
    )
    with pytest.raises(GateBlocked) as caught:
        _promote(clients, ami)
    assert any("disagrees with the record" in line for line in caught.value.lines())
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": "cis-ami:platform", "Value": "AMAZON_LINUX_2023"}]
    )

    # A Kubernetes version tag that disagrees with the signed one cannot re-file it either.
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": "cis-ami:kubernetes-version", "Value": "1.33"}]
    )
    with pytest.raises(GateBlocked) as caught:
        _promote(clients, ami)
    assert any("Kubernetes version tag 1.33 disagrees" in x for x in caught.value.lines())
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": "cis-ami:kubernetes-version", "Value": "1.32"}]
    )

    # Altering its record's tags makes the record stop verifying: refused again.
    pointer = store.ATTESTATION_SHA_TAG
    clients.ec2.create_tags(Resources=[ami], Tags=[{"Key": pointer, "Value": "0" * 64}])
    with pytest.raises(GateBlocked, match="not promoted"):
        _promote(clients, ami)
