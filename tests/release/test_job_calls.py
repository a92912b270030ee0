"""Every AWS operation a job's real run calls is an action its IAM policy grants (the local AWS
enforces no IAM, so a missing grant would only show on a real account)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pipeline.aws import AwsClients, iam_policy, make_clients
from pipeline.localaws import LocalAws
from pipeline.reap import run_reap
from pipeline.release.promote import PromoteRequest, run_promote
from tests.release.conftest import POLICY_DIR, REGIONS, pipeline_ami, release, verifier_ok

# Operations whose IAM action has another name.
_ACTION = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
}


def _actions(calls: Iterable[str]) -> set[str]:
    return {_ACTION.get(c, c) for c in calls}


def _ungranted(job: str, calls: Iterable[str]) -> set[str]:
    granted = iam_policy.granted_actions(iam_policy.load_policy(job))
    return {a for a in _actions(calls) if a not in granted}


def test_reap_after_a_promotion_calls_only_what_the_reap_policy_grants(
    aws: LocalAws, clients: AwsClients
) -> None:
    ami = pipeline_ami(clients, "promoted", tags={"cis:verdict": "PASS"})
    run_promote(
        PromoteRequest(ami=ami, channel="stable", regions=("us-east-1",)),
        release(), clients, datetime.now(UTC), lambda _: None,
        policy_dir=POLICY_DIR, verify=verifier_ok(), known_regions=REGIONS,
    )  # fmt: skip
    pipeline_ami(clients, "old-unpromoted")  # retention reads the channels' history to keep it
    reaper = make_clients(region="us-east-1")
    report = run_reap(reaper, datetime.now(UTC), lambda _: None, retention=release())
    assert report.failures == []
    called = set(reaper.calls.counts)
    assert "ssm:GetParameterHistory" in called  # the promoted channel's history was read
    assert _ungranted("reap", called) == set()
