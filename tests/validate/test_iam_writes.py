"""What a real ``invoke validate`` (and the nightly chain's drift record after it) writes,
recorded call by call as the IAM requests AWS would authorize (the local AWS enforces no IAM):
every one is allowed by policies/iam/validate.json, and the run does write what the policy is
scoped for (so the check is not vacuous)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import evidence_keys
from pipeline.aws import AwsClients, iam_policy
from pipeline.gate import Outcome
from pipeline.iam_eval import decide
from pipeline.localaws import LocalAws
from pipeline.orchestration.nightly import record_and_compare
from pipeline.tags import (
    CIS_TAG_PREFIX,
    DRIFT_COUNTS_TAG,
    DRIFT_FAILED_TAG,
    HEARTBEAT_TAG,
    MANAGED_TAG,
    key_matches,
)
from pipeline.validate import Runtime, run_validate
from tests._iam_requests import Recorder
from tests.release.conftest import release
from tests.validate.conftest import make_ami, settings


def test_every_tag_and_object_a_run_writes_is_allowed_by_the_validate_policy(
    aws: LocalAws,
    clients: AwsClients,
    runtime: Callable[..., Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ami = make_ami(clients, "al2023", "x86_64")
    earlier = {"cis:scan-arn": "old", MANAGED_TAG: "true"}  # a pipeline AMI validated before
    clients.ec2.create_tags(
        Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in earlier.items()]
    )
    account = clients.sts.get_caller_identity()["Account"]
    recorder = Recorder(account)
    with recorder.installed(monkeypatch):
        verdict = run_validate(settings(tmp_path, ami), clients, runtime())
        record_and_compare(verdict, clients, release(), tmp_path / "out", lambda _: None)
    assert verdict.verdict is Outcome.PASS

    policy = [iam_policy.load_policy("validate")]
    denied = [r for r in recorder.of() if not decide(policy, r).allowed]
    assert denied == []

    # What the policy is scoped for, all seen: tags on creation (instance, volume, group), the
    # verdict's cis: keys written and stale ones deleted on the AMI, the evidence objects.
    created = {r.resource.rsplit(":", 1)[-1] for r in recorder.of("RunInstances")}
    created |= {r.resource.rsplit(":", 1)[-1] for r in recorder.of("CreateSecurityGroup")}
    assert created == {"instance/new", "volume/new", "security-group/new"}
    on_ami = [r for r in recorder.of("CreateTags", "DeleteTags") if ami in r.resource]
    assert {r.action for r in on_ami} == {"ec2:CreateTags", "ec2:DeleteTags"}
    drift = (DRIFT_COUNTS_TAG, DRIFT_FAILED_TAG)
    assert [r for r in on_ami if r.context["aws:TagKeys"] == drift]  # the nightly's record
    for request in on_ami:
        keys = request.context["aws:TagKeys"]
        assert keys == drift or all(k.startswith(CIS_TAG_PREFIX) for k in keys)
    later = [r for r in recorder.of("CreateTags") if ami not in r.resource]
    assert all(r.context["aws:TagKeys"] == (HEARTBEAT_TAG,) for r in later), later
    assert all(r.context[f"aws:ResourceTag/{MANAGED_TAG}"] == "true" for r in later)

    keys = [r.resource.split("/", 1)[1] for r in recorder.of("PutObject")]
    prefix = evidence_keys.run_prefix(account, clients.region, ami, verdict.context["run_id"])
    assert keys and all(k.startswith(prefix) for k in keys)
    names = {k.removeprefix(prefix) for k in keys}
    assert all(key_matches(n, evidence_keys.RUN_OBJECTS) for n in names), names
    assert {evidence_keys.ENVELOPE, "verdict.json", evidence_keys.CATALOGUE} <= names
