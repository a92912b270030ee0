"""Issue 20 #8: shares stay. Revoke takes away the launch permissions and the snapshots'
create-volume permissions promote granted (``--accounts``), on the image and its copies;
``--dry-run`` only says so; a second run has nothing to take. (The local AWS does not
implement EnableImageDeprecation: there the deprecation time is in the revocation tags.)"""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.aws import AwsClients, make_clients
from pipeline.aws import release as aws
from pipeline.release.promote import PromoteRequest
from pipeline.release.revoke import RevokeRequest, run_revoke
from tests.release.conftest import (
    ACCOUNT,
    image_keys,
    pipeline_ami,
    promote,
    release,
)

OTHER = "444455556666"


def _shares(rc: AwsClients, ami: str) -> dict[str, set[str]]:
    image = aws.owned_image(rc, ami)
    assert image is not None and image.snapshots
    return {
        ami: aws.launch_permissions(rc, ami),
        **{s: aws.volume_permissions(rc, s) for s in image.snapshots},
    }


def test_revoke_takes_away_every_share_promote_granted(clients: AwsClients) -> None:
    ami = pipeline_ami(clients, "shared")
    done = promote(
        clients,
        PromoteRequest(ami=ami, regions=("us-east-1", "eu-west-1"), accounts=(ACCOUNT, OTHER)),
        image_keys(clients, ("eu-west-1",), (ACCOUNT, OTHER)),
    )
    eu = make_clients(region="eu-west-1")
    copy = done.regions[1].image_id
    assert copy is not None
    granted = {**_shares(clients, ami), **_shares(eu, copy)}
    assert granted and all(users == {ACCOUNT, OTHER} for users in granted.values()), granted

    lines: list[str] = []
    dry = run_revoke(
        RevokeRequest(ami, "CVE-2026-0050", dry_run=True),
        release(),
        clients,
        datetime.now(UTC),
        lines.append,
    )
    assert {**_shares(clients, ami), **_shares(eu, copy)} == granted  # nothing changed
    assert len(dry.unshared) == 2 * len(granted)
    assert f"would take away the share us-east-1/{ami}: {OTHER}" in lines

    done_revoke = run_revoke(
        RevokeRequest(ami, "CVE-2026-0050"), release(), clients, datetime.now(UTC), lines.append
    )
    assert sorted(done_revoke.unshared) == sorted(dry.unshared)
    assert f"eu-west-1/{copy}: {ACCOUNT}" in done_revoke.unshared
    left = {**_shares(clients, ami), **_shares(eu, copy)}
    assert set(left) == set(granted) and all(not users for users in left.values()), left

    again = run_revoke(
        RevokeRequest(ami, "CVE-2026-0050"), release(), clients, datetime.now(UTC), lines.append
    )
    assert again.unshared == () and again.newly_revoked == ()
