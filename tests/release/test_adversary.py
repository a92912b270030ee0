"""An adversary who may tag any AMI tries to make ``promote`` publish, or ``revoke`` miss, an
image whose PASS was never proven: the regional copy is chosen by tags it can write."""

from __future__ import annotations

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.evidence.verify import Verification
from pipeline.release import promote
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.tags import COPIED_FROM_TAG, COPY_TAG_PREFIX, REVOKED_TAG
from tests._dates import shifted_now
from tests.release.conftest import POLICY_DIR, REGIONS, pipeline_ami, release, verifier_ok
from tests.validate.conftest import ami_tags

PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _promote(clients: AwsClients, ami: str, regions: tuple[str, ...]) -> promote.Promotion:
    return run_promote(
        PromoteRequest(ami=ami, regions=regions),
        release(),
        clients,
        shifted_now(),
        lambda _: None,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),
        known_regions=REGIONS,
    )


def _tag(clients: AwsClients, ami: str, tags: dict[str, str]) -> None:
    clients.ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


@pytest.mark.parametrize("impostor_name", ["impostor", "same-name"])
def test_forged_copy_tags_on_both_images_do_not_publish_an_impostor(
    clients: AwsClients, impostor_name: str
) -> None:
    """The impostor (never validated) says it is the copy, and the source says so too."""
    ami = pipeline_ami(clients, "same-name")
    eu = make_clients(region="eu-west-1")
    impostor = pipeline_ami(eu, impostor_name, tags={COPIED_FROM_TAG: f"us-east-1/{ami}"})
    _tag(clients, ami, {f"{COPY_TAG_PREFIX}eu-west-1": impostor})

    (region,) = _promote(clients, ami, ("eu-west-1",)).regions

    assert region.image_id not in (None, impostor) and region.copied
    assert eu.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == region.image_id


def test_a_genuine_copy_is_still_reused(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "reuse")
    first = _promote(clients, ami, ("eu-west-1",)).regions[0]
    again = _promote(clients, ami, ("eu-west-1",)).regions[0]
    assert (again.image_id, again.copied, again.updated) == (first.image_id, False, False)


def test_revoke_does_not_mark_an_impostor_named_by_forged_tags(clients: AwsClients) -> None:
    """Tags alone make an unrelated image "the copy": revoke must not deprecate it instead."""
    ami = pipeline_ami(clients, "source")
    eu = make_clients(region="eu-west-1")
    bystander = pipeline_ami(eu, "bystander", tags={COPIED_FROM_TAG: f"us-east-1/{ami}"})
    _tag(clients, ami, {f"{COPY_TAG_PREFIX}eu-west-1": bystander})
    lines: list[str] = []
    done = run_revoke(
        RevokeRequest(ami, "CVE-2026-0002"), release(), clients, shifted_now(), lines.append
    )
    assert done.newly_revoked == (f"us-east-1/{ami}",)
    assert REVOKED_TAG not in ami_tags(eu, bystander)


def test_revoke_finds_a_copy_whose_tags_were_removed(clients: AwsClients) -> None:
    """Removing the copy tags must not leave a revoked image published in another region."""
    ami = pipeline_ami(clients, "hidden-copy")
    eu = make_clients(region="eu-west-1")
    (away,) = _promote(clients, ami, ("eu-west-1",)).regions
    assert away.image_id and eu.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"] == away.image_id
    clients.ec2.delete_tags(Resources=[ami], Tags=[{"Key": f"{COPY_TAG_PREFIX}eu-west-1"}])
    eu.ec2.delete_tags(Resources=[away.image_id], Tags=[{"Key": COPIED_FROM_TAG}])

    done = run_revoke(
        RevokeRequest(ami, "CVE-2026-0003"),
        release(regions=["eu-west-1"]),
        clients,
        shifted_now(),
        lambda _: None,
    )

    assert f"eu-west-1/{away.image_id}" in done.newly_revoked
    assert ami_tags(eu, away.image_id)[REVOKED_TAG] == "true"
    assert [(c.region, c.revoked, c.restored) for c in done.changes] == [
        ("eu-west-1", away.image_id, None)
    ]
    assert promote.aws.get_parameter(eu, PARAM) is None


def _pem() -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def test_promote_refuses_an_offline_key_that_is_not_the_pinned_one(clients: AwsClients) -> None:
    from pipeline.errors import GateBlocked
    from pipeline.evidence.verify import key_fingerprint

    ami = pipeline_ami(clients, "pinned")
    ours, theirs = _pem(), _pem()
    pinned = key_fingerprint(ours)
    for pem, refused in ((theirs, True), (ours, False)):
        request = PromoteRequest(ami=ami, public_key_pem=pem, pinned_key=pinned)
        try:
            run_promote(
                request, release(), clients, shifted_now(), lambda _: None,
                policy_dir=POLICY_DIR, verify=verifier_ok(), known_regions=REGIONS,
            )  # fmt: skip
        except GateBlocked as exc:
            assert refused, exc.problems
            assert exc.exit_code == 3
            want = f"--ami {ami}: --public-key is {key_fingerprint(theirs)}, not the pinned"
            assert any(p.startswith(want) for p in exc.problems), exc.problems
        else:
            assert not refused, "promoted with a public key that is not the pinned one"


@pytest.mark.parametrize(("name_k8s", "refused"), [("1.33", True), ("1.32", False)])
def test_a_version_tag_changed_before_validation_cannot_pick_the_channel(
    clients: AwsClients, name_k8s: str, refused: bool
) -> None:
    """The adversary tagged a 1.33 build "1.32" before validate, so the record signs 1.32; the
    AMI's name (which no tag changes) still says 1.33: not published to the 1.32 channel."""
    from dataclasses import replace

    from pipeline.errors import GateBlocked
    from tests.release.conftest import passing_sections, verified

    ami = pipeline_ami(clients, f"eks-cis-al2023-x86_64-k8s{name_k8s}-l2-run-1", k8s="1.32")
    notes = {"kubernetesVersion": "1.32", "platform": "AMAZON_LINUX_2023"}
    signed = {"predicate": {"annotations": {**notes, "sections": passing_sections()}}}

    def verify(c: AwsClients, a: str) -> Verification:
        return replace(verified(a, region=c.region), statement=signed)

    try:
        run_promote(
            PromoteRequest(ami=ami), release(), clients, shifted_now(), lambda _: None,
            policy_dir=POLICY_DIR, verify=verify, known_regions=REGIONS,
        )  # fmt: skip
    except GateBlocked as exc:
        assert refused, exc.problems
        assert any("says Kubernetes 1.33, not 1.32" in p for p in exc.problems), exc.problems
        assert promote.aws.get_parameter(clients, PARAM) is None
    else:
        assert not refused, "published to the 1.32 channel"
        assert promote.aws.get_parameter(clients, PARAM) == ami
