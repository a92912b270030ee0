"""Issue 20 #3: ``build-and-validate --skip-unchanged`` re-validates "the newest pipeline AMI".
An attacker with ec2:CreateTags and ec2:RegisterImage/CreateImage makes an image carrying every
pipeline tag (and the current input fingerprint): it must never be taken for the pipeline's
build. Only an image the pipeline's signed record is about (subject digest: ID, owner, snapshot
IDs, creation date) and whose signed platform and Kubernetes version match is reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import AwsClients
from pipeline.catalog import Platform
from pipeline.evidence import store
from pipeline.fingerprint import inputs_fingerprint
from pipeline.localaws import LocalAws
from pipeline.orchestration import nightly
from pipeline.orchestration.settings import ChainSettings
from pipeline.packer import PACKER_DIR, Arch
from pipeline.tags import FINGERPRINT_TAG
from pipeline.validate import Runtime, run_validate
from tests.release.conftest import POLICY_DIR, base_ami, pipeline_ami
from tests.validate.conftest import FakeTime, ami_tags, settings


def _settings(tmp_path: Path) -> ChainSettings:
    return ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version="1.32",
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=POLICY_DIR,
        local=True,
        skip_unchanged=True,
    )


def _unchanged(clients: AwsClients) -> dict[str, str]:
    """The tags a build leaves when its inputs are the inputs now."""
    base = base_ami(clients)
    value = inputs_fingerprint(
        Platform.AMAZON_LINUX_2023, Arch.X86_64, "1.32", 2, True, base, POLICY_DIR, PACKER_DIR
    )
    return {FINGERPRINT_TAG: value, "cis-ami:source-ami": base}


def _validated(aws: LocalAws, clients: AwsClients, tmp_path: Path, name: str, **kw: Any) -> str:
    ami = pipeline_ami(clients, name, tags=_unchanged(clients), **kw)
    fake = FakeTime(aws)
    lines: list[str] = []
    verdict = run_validate(
        settings(tmp_path / name, ami),
        clients,
        Runtime(echo=lines.append, sleep=fake.sleep, clock=fake.clock),
    )
    assert verdict.verdict.value == "PASS", lines[-20:]
    return ami


def _substitute(clients: AwsClients, genuine: str, how: str) -> str:
    """A newer image made by the attacker, wearing the genuine image's tags (record pointers
    and fingerprint included)."""
    tags = ami_tags(clients, genuine)
    if how == "create-image":
        ami = pipeline_ami(clients, "substitute", tags=tags)
    else:  # register-image from the genuine image's own snapshot
        image = clients.ec2.describe_images(ImageIds=[genuine])["Images"][0]
        ami = clients.ec2.register_image(
            Name="substitute-registered",
            Architecture="x86_64",
            RootDeviceName=image["RootDeviceName"],
            BlockDeviceMappings=image["BlockDeviceMappings"],
        )["ImageId"]
        clients.ec2.create_tags(
            Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    return ami


@pytest.mark.parametrize("how", ["create-image", "register-image"])
def test_a_tagged_substitute_is_never_reused_the_proven_build_is(
    aws: LocalAws, clients: AwsClients, tmp_path: Path, how: str
) -> None:
    genuine = _validated(aws, clients, tmp_path, "genuine")
    aws.advance(60)
    fake = _substitute(clients, genuine, how)

    decision = nightly.decide(_settings(tmp_path), clients)[0]

    assert decision.reuse == genuine, decision.why
    # EC2's CreationDate has a resolution of a second: the substitute is named as refused when
    # it is the newer image (when both share a second, either may be looked at first)
    created = {
        i["ImageId"]: i["CreationDate"]
        for i in clients.ec2.describe_images(ImageIds=[genuine, fake])["Images"]
    }
    if created[fake] > created[genuine]:
        assert f"{fake} is not reused, no pipeline build proven" in decision.why


@pytest.mark.parametrize("how", ["create-image", "register-image"])
def test_a_substitute_alone_means_a_build(
    aws: LocalAws, clients: AwsClients, tmp_path: Path, how: str
) -> None:
    genuine = _validated(aws, clients, tmp_path, "genuine")
    fake = _substitute(clients, genuine, how)
    clients.ec2.deregister_image(ImageId=genuine)  # only the substitute is left

    decision = nightly.decide(_settings(tmp_path), clients)[0]

    assert decision.reuse is None
    assert f"{fake} is not reused, no pipeline build proven" in decision.why
    assert "no earlier pipeline AMI to reuse" in decision.why


def test_a_genuine_build_of_another_kubernetes_version_retagged_is_not_reused(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    other = _validated(aws, clients, tmp_path, "k8s-131", k8s="1.31")
    clients.ec2.create_tags(
        Resources=[other],
        Tags=[{"Key": k, "Value": v} for k, v in {"cis-ami:kubernetes-version": "1.32"}.items()],
    )
    decision = nightly.decide(_settings(tmp_path), clients)[0]
    assert decision.reuse is None
    assert "signed Kubernetes version 1.31, not 1.32" in decision.why, decision.why


def test_an_image_without_any_record_is_not_reused(clients: AwsClients, tmp_path: Path) -> None:
    ami = pipeline_ami(clients, "never-validated", tags=_unchanged(clients))
    decision = nightly.decide(_settings(tmp_path), clients)[0]
    assert decision.reuse is None
    assert f"{ami} is not reused, no pipeline build proven: no validation record" in decision.why


def test_a_genuine_build_whose_record_was_deleted_is_not_reused(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    genuine = _validated(aws, clients, tmp_path, "genuine")
    where = store.parse_s3_uri(ami_tags(clients, genuine)[store.ATTESTATION_TAG])
    assert where is not None
    clients.s3.put_object(Bucket=where[0], Key=where[1], Body=b"{}")  # type: ignore[union-attr]
    decision = nightly.decide(_settings(tmp_path), clients)[0]
    assert decision.reuse is None and f"{genuine} is not reused" in decision.why
