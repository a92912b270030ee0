"""AMI retention in invoke reap: only old, unpromoted pipeline AMIs go (with their snapshots);
promoted, revoked and foreign images stay; the newest N per group stay; --dry-run only says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from pipeline.aws import AwsClients
from pipeline.aws.images import Image
from pipeline.localaws import LocalAws
from pipeline.reap import run_reap
from pipeline.reap.retention import plan
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.tags import BUILD_RUN_TAG, MANAGED_TAG
from tests._dates import shifted_now
from tests.release.conftest import POLICY_DIR, REGIONS, pipeline_ami, release, verifier_ok

NOW = datetime(2026, 12, 31, tzinfo=UTC)
OURS = {
    MANAGED_TAG: "true",
    BUILD_RUN_TAG: "run-1",
    "cis-ami:platform": "AMAZON_LINUX_2023",
    "cis-ami:architecture": "x86_64",
    "cis-ami:kubernetes-version": "1.33",
}


def _image(ami: str, days_old: int, **tags: str) -> Image:
    created = (NOW - timedelta(days=days_old)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    merged = {k.replace("__", ":"): v for k, v in {**OURS, **tags}.items()}
    return Image(
        id=ami,
        region="us-east-1",
        state="available",
        name=ami,
        architecture="x86_64",
        platform=None,
        creation_date=created,
        tags=MappingProxyType({k: v for k, v in merged.items() if v != "-"}),
    )


@pytest.mark.parametrize(
    ("images", "keep", "deleted"),
    [
        # the newest `keep` stay whatever their age; older than 14 days go
        ([("a", 40), ("b", 30), ("c", 20), ("d", 10)], 1, {"a", "b", "c"}),
        ([("a", 40), ("b", 30), ("c", 20), ("d", 10)], 2, {"a", "b"}),
        ([("a", 40), ("b", 30)], 2, set()),
        ([("a", 40), ("b", 13)], 0, {"a"}),
    ],
    ids=["keep-1", "keep-2", "keep-all", "keep-0-young-stays"],
)
def test_plan_keeps_newest_and_young(
    images: list[tuple[str, int]], keep: int, deleted: set[str]
) -> None:
    # Ages are ordered newest last in the list; plan sorts them itself.
    got = plan(
        [_image(f"ami-{n}", days) for n, days in images],
        now=NOW,
        max_age=timedelta(days=14),
        keep=keep,
    )
    assert {d.ami for d in got if d.delete} == {f"ami-{n}" for n in deleted}


def test_plan_never_touches_foreign_promoted_or_revoked() -> None:
    images = [
        _image("ami-foreign", 90, **{MANAGED_TAG: "-"}),
        _image("ami-case", 90, **{MANAGED_TAG: "True"}),  # exact match only
        _image("ami-norun", 90, **{BUILD_RUN_TAG: "-"}),
        _image("ami-channel", 90, **{"cis-release__channel__stable__at": "x"}),
        _image("ami-copy", 90, **{"cis-release__copied-from": "us-east-1/ami-x"}),
        _image("ami-revoked", 90, **{"cis-release__revoked": "true"}),
        _image("ami-published", 90),
        _image("ami-recorded-revoked", 90),
        _image("ami-old", 90),
    ]
    got = plan(
        images,
        now=NOW,
        max_age=timedelta(days=14),
        keep=0,
        published=["ami-published"],
        revoked=["ami-recorded-revoked"],
    )
    assert [d.ami for d in got if d.delete] == ["ami-old"]


def test_reap_deregisters_old_unpromoted_amis_and_their_snapshots(
    aws: LocalAws, clients: AwsClients
) -> None:
    old = pipeline_ami(clients, "old-build")
    promoted = pipeline_ami(clients, "promoted-build")
    revoked = pipeline_ami(clients, "revoked-build")
    foreign = pipeline_ami(clients, "foreign", tags={MANAGED_TAG: "yes"})
    settings = release(retention={"max_age_days": 14, "keep": 0})
    run_promote(
        PromoteRequest(ami=promoted),
        settings,
        clients,
        shifted_now(),
        print,
        policy_dir=POLICY_DIR,
        verify=verifier_ok(),
        known_regions=REGIONS,
    )
    run_revoke(
        RevokeRequest(ami=revoked, reason="bad kernel"), settings, clients, shifted_now(), print
    )
    # Superseded and stripped of its channel tags: the channel's history still protects it.
    superseded = pipeline_ami(clients, "superseded-build")
    for ami in (superseded, promoted):
        run_promote(
            PromoteRequest(ami=ami),
            settings,
            clients,
            shifted_now(),
            print,
            policy_dir=POLICY_DIR,
            verify=verifier_ok(),
            known_regions=REGIONS,
        )
    stripped = [
        {"Key": t["Key"]}
        for t in clients.ec2.describe_images(ImageIds=[superseded])["Images"][0]["Tags"]
        if t["Key"].startswith("cis-release:")
    ]
    clients.ec2.delete_tags(Resources=[superseded], Tags=stripped)
    snapshots = [
        m["Ebs"]["SnapshotId"]
        for m in clients.ec2.describe_images(ImageIds=[old])["Images"][0]["BlockDeviceMappings"]
    ]
    later = shifted_now() + timedelta(days=30)

    lines: list[str] = []
    run_reap(clients, later, lines.append, dry_run=True, retention=settings)
    assert any(f"would deregister AMI {old}" in line for line in lines), lines
    assert clients.ec2.describe_images(ImageIds=[old])["Images"]

    lines.clear()
    report = run_reap(clients, later, lines.append, retention=settings)
    assert report.failures == []
    left = {
        i["ImageId"]
        for i in clients.ec2.describe_images(
            ImageIds=[old, promoted, revoked, foreign, superseded]
        )["Images"]
    }
    assert left == {promoted, revoked, foreign, superseded}
    live = clients.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert not set(snapshots) & {s["SnapshotId"] for s in live}
