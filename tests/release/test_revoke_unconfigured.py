"""Issue 20 #6: a channel removed from invoke.yaml after a promotion still serves the image;
revoke finds every parameter under the prefix whose value is the image or one of its copies
(ssm:GetParametersByPath, recursive), in every region where they exist, configured or not."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.aws import AwsClients, make_clients
from pipeline.aws import release as aws
from pipeline.release.promote import PromoteRequest
from pipeline.release.revoke import RevokeRequest, run_revoke
from tests.release.conftest import pipeline_ami, promote, release

CANDIDATE = "/eks-cis-ami/al2023/x86_64/1.32/candidate/image-id"
STABLE = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"


def _promote(clients: AwsClients, ami: str, channel: str) -> None:
    promote(clients, PromoteRequest(ami=ami, channel=channel, regions=("us-east-1", "eu-west-1")))


def test_a_channel_no_longer_configured_is_taken_back_in_every_region(
    clients: AwsClients,
) -> None:
    ami = pipeline_ami(clients, "unconfigured")
    _promote(clients, ami, "candidate")
    _promote(clients, ami, "stable")
    eu = make_clients(region="eu-west-1")
    copy = aws.get_parameter(eu, CANDIDATE)
    assert copy is not None and copy != ami
    # Not a channel of the scheme, but under the prefix and pointing at the copy.
    aws.put_parameter(eu, "/eks-cis-ami/legacy/eu/image-id", copy, "hand-made")
    now_only_stable = release(channels={"stable": {}})
    lines: list[str] = []

    done = run_revoke(
        RevokeRequest(ami, "CVE-2026-0040"),
        now_only_stable,
        clients,
        datetime.now(UTC),
        lines.append,
    )

    changed = {(c.region, c.parameter): c for c in done.changes}
    assert set(changed) == {
        ("us-east-1", CANDIDATE),
        ("us-east-1", STABLE),
        ("eu-west-1", CANDIDATE),
        ("eu-west-1", STABLE),
        ("eu-west-1", "/eks-cis-ami/legacy/eu/image-id"),
    }
    for rc in (clients, eu):
        assert aws.get_parameter(rc, CANDIDATE) is None
        assert aws.get_parameter(rc, STABLE) is None
    assert aws.get_parameter(eu, "/eks-cis-ami/legacy/eu/image-id") is None
    assert all(c.restored is None for c in done.changes)


def test_channel_narrows_revoke_to_that_channel(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "narrowed")
    _promote(clients, ami, "candidate")
    _promote(clients, ami, "stable")
    done = run_revoke(
        RevokeRequest(ami, "CVE-2026-0041", channel="stable"),
        release(),
        clients,
        datetime.now(UTC),
        lambda _: None,
    )
    assert {c.parameter for c in done.changes} == {STABLE}
    assert aws.get_parameter(clients, CANDIDATE) == ami
