"""Every AWS call a job's real run makes is one its IAM policy allows, on the resources it
names, with the conditions it supplies (tests._job_requests): the local AWS enforces no IAM."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.localaws import LocalAws
from pipeline.reap import run_reap
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.setup import SetupSettings, run_setup
from tests._job_requests import CallRecorder, denied
from tests.release.conftest import POLICY_DIR, REGIONS, pipeline_ami, release, verifier_ok


def test_reap_after_a_promotion_calls_only_what_the_reap_policy_allows(
    aws: LocalAws, clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = pipeline_ami(clients, "promoted", tags={"cis:verdict": "PASS"})
    run_promote(
        PromoteRequest(ami=ami, channel="stable", regions=("us-east-1",)),
        release(), clients, datetime.now(UTC), lambda _: None,
        policy_dir=POLICY_DIR, verify=verifier_ok(), known_regions=REGIONS,
    )  # fmt: skip
    pipeline_ami(clients, "old-unpromoted")  # retention reads the channels' history to keep it
    recorder = CallRecorder(aws.account_id)
    with recorder.installed(monkeypatch):
        report = run_reap(
            make_clients(region="us-east-1"), datetime.now(UTC), lambda _: None, retention=release()
        )
    assert report.failures == []
    assert "ssm:GetParameterHistory" in {r.action for r in recorder.requests}
    assert denied("reap", recorder.requests) == []


def test_setup_with_profiles_calls_only_what_the_setup_policy_allows(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first setup creates the test-instance and the Packer profiles (issue 21: the Packer
    role was outside setup.json)."""
    recorder = CallRecorder(aws.account_id)
    with recorder.installed(monkeypatch):
        run_setup(SetupSettings(manage_instance_profile=True), make_clients(), lambda _: None)
    made = {
        r.resource.rsplit("/", 1)[-1] for r in recorder.requests if r.action == "iam:CreateRole"
    }
    assert made == {"eks-cis-ami-pipeline-scan", "eks-cis-ami-pipeline-packer"}
    refused = denied("setup", recorder.requests)
    assert [f"{r.action} {r.resource} {dict(r.context)}" for r in refused] == []
