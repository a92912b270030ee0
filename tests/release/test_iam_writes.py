"""What real ``invoke promote`` and ``revoke`` runs, build's own tagging, ``setup`` and ``reap``
write, recorded call by call as the IAM requests AWS would authorize (the local AWS enforces no
IAM): every one is allowed by the job's policy, and each writes what its policy is scoped for
(setup and reap: no tag and no evidence at all)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.aws import AwsClients, iam_policy
from pipeline.build import tag_builds
from pipeline.catalog import Platform
from pipeline.errors import AwsError
from pipeline.evidence.verify import Verification
from pipeline.iam_eval import decide
from pipeline.localaws import LocalAws
from pipeline.packer import AmiBuild, Arch
from pipeline.reap import run_reap
from pipeline.release import promote
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.setup import SetupSettings, run_setup
from pipeline.tags import (
    ATTESTATION_TAG,
    COPIED_FROM_TAG,
    FINGERPRINT_TAG,
    MANAGED_TAG,
    RELEASE_TAG_PREFIX,
)
from tests._iam_requests import Recorder
from tests.release.conftest import (
    POLICY_DIR,
    REGIONS,
    pipeline_ami,
    release,
    verified,
    verifier_ok,
)

NOW = datetime.now(UTC)  # verifier_ok() records are verified now
VALIDATED = {"cis:verdict": "PASS", ATTESTATION_TAG: "s3://bucket/key", "team": "platform"}


def _denied(recorder: Recorder, job: str) -> list[object]:
    policy = [iam_policy.load_policy(job)]
    return [r for r in recorder.of() if not decide(policy, r).allowed]


def test_promote_and_revoke_write_only_what_the_promote_policy_allows(
    aws: LocalAws, clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = pipeline_ami(clients, "iam-writes", tags=VALIDATED)
    recorder = Recorder(clients.sts.get_caller_identity()["Account"])
    quiet, settings = (lambda _: None), release()
    with recorder.installed(monkeypatch):
        request = PromoteRequest(ami=ami, channel="stable", regions=("us-east-1", "eu-west-1"))
        run_promote(
            request, settings, clients, NOW, quiet,
            policy_dir=POLICY_DIR, verify=verifier_ok(), known_regions=REGIONS,
        )  # fmt: skip
        revocation = RevokeRequest(ami=ami, reason="CVE-2026-0001")
        run_revoke(revocation, settings, clients, NOW, quiet, policy_dir=POLICY_DIR,
                   verify=verifier_ok())  # fmt: skip
    assert _denied(recorder, "promote") == []

    # The copy got its source's tags (the cis: pointer among them) when CopyImage made it, and
    # nothing else: every later tag write on an existing image is a cis-release: key.
    on_create = [r for r in recorder.of("CopyImage") if r.action == "ec2:CreateTags"]
    assert {r.resource.rsplit(":", 1)[-1] for r in on_create} == {"image/new", "snapshot/new"}
    for r in on_create:
        sent = r.context["aws:TagKeys"]
        assert {"cis:verdict", ATTESTATION_TAG, COPIED_FROM_TAG, MANAGED_TAG} <= set(sent)
        assert "team" not in sent  # tags the pipeline does not write stay on the source
    later = recorder.of("CreateTags")
    assert later and all(
        all(k.startswith(RELEASE_TAG_PREFIX) for k in r.context["aws:TagKeys"]) for r in later
    )
    assert not recorder.of("DeleteTags")
    # its only objects: the release history of the copy it made (under the source's prefix)
    written = [r.resource for r in recorder.of("PutObject")]
    assert written and all("/releases/eu-west-1/ami-" in arn for arn in written), written


def test_build_tags_its_amis_only_as_the_build_policy_allows(
    aws: LocalAws, clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = pipeline_ami(clients, "built")
    built = AmiBuild(
        ami_id=ami, region=clients.region, platform=Platform.AMAZON_LINUX_2023,
        arch=Arch.X86_64, k8s_version="1.32", level=2, source_ami="ami-0fedcba9876543210",
        run_id="run-built", image_name="eks-cis-al2023", git_commit="abc", local=True,
        packer_run_uuid="u", build_time=0,
    )  # fmt: skip
    recorder = Recorder(clients.sts.get_caller_identity()["Account"])
    with recorder.installed(monkeypatch):
        tag_builds(clients, [built], policy_dir=POLICY_DIR, out=lambda _: None)
    (request,) = recorder.of()
    assert request.context["aws:TagKeys"] == (FINGERPRINT_TAG, MANAGED_TAG)
    assert _denied(recorder, "build") == []


def test_setup_and_reap_write_no_tag_and_no_evidence(
    aws: LocalAws, clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline_ami(clients, "old-unpromoted")  # retention's candidate
    recorder = Recorder(clients.sts.get_caller_identity()["Account"])
    with recorder.installed(monkeypatch):
        run_setup(SetupSettings(manage_instance_profile=True), clients, lambda _: None)
        report = run_reap(clients, datetime.now(UTC), lambda _: None, retention=release())
    assert recorder.of() == []
    assert report.failures == []


def test_on_aws_a_copy_without_the_tags_given_at_creation_is_an_error(
    aws: LocalAws, clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promote role may write cis: keys only as CopyImage creates the copy: where the copy
    lacks them afterwards (as on the local AWS, here taken for AWS), promote stops; it never
    writes them with CreateTags."""
    ami = pipeline_ami(clients, "dropped", tags=VALIDATED)
    monkeypatch.setattr(promote, "is_aws_endpoint", lambda _url: True)

    def not_local(rc: AwsClients, ami: str) -> Verification:
        return verified(ami, region=rc.region, local=False)

    request = PromoteRequest(ami=ami, channel="stable", regions=("us-east-1", "eu-west-1"))
    with pytest.raises(AwsError, match=r"eu-west-1: copy ami-\w+ of .* lacks tags given at its "
                       r"creation: .*cis:attestation.*cis:verdict"):  # fmt: skip
        run_promote(
            request, release(), clients, NOW, lambda _: None,
            policy_dir=POLICY_DIR, verify=not_local, known_regions=REGIONS,
        )  # fmt: skip
