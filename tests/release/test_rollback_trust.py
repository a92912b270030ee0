"""A rollback on revoke is a re-publication: it chooses only an earlier image whose signed
validation record still verifies (for a regional copy: a genuine copy whose source's record
verifies), on the local AWS with records ``invoke validate`` really wrote."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.aws import AwsClients, make_clients
from pipeline.evidence import store
from pipeline.localaws import LocalAws
from pipeline.release.promote import PromoteRequest, run_promote
from pipeline.release.revoke import ChannelChange, Revocation, RevokeRequest, run_revoke
from pipeline.tags import COPIED_FROM_TAG, COPY_TAG_PREFIX
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests.release.conftest import POLICY_DIR, REGIONS, pipeline_ami, release, verified
from tests.validate.conftest import FakeTime, ami_tags, settings

PARAM = "/eks-cis-ami/al2023/x86_64/1.32/stable/image-id"
TWO = ("us-east-1", "eu-west-1")


def _validated(aws: LocalAws, clients: AwsClients, tmp_path: Path, *names: str) -> list[str]:
    """Pipeline AMIs validated in one run: each has a signed, verifiable PASSED record."""
    amis = [pipeline_ami(clients, name) for name in names]
    fake = FakeTime(aws)
    lines: list[str] = []
    verdict = run_validate(
        settings(tmp_path, *amis),
        clients,
        Runtime(now=shifted_now, echo=lines.append, sleep=fake.sleep, clock=fake.clock),
    )
    assert verdict.verdict.value == "PASS", lines[-20:]
    return amis


def _promote(clients: AwsClients, ami: str, regions: tuple[str, ...] = ()) -> None:
    run_promote(
        PromoteRequest(ami=ami, regions=regions),
        release(),
        clients,
        shifted_now(),
        print,
        policy_dir=POLICY_DIR,
        known_regions=REGIONS,
    )


def _publish(rc: AwsClients, ami: str) -> None:
    """What someone with ssm:PutParameter alone can do: write any image into the history."""
    rc.ssm.put_parameter(
        Name=PARAM, Value=ami, Type="String", DataType="aws:ec2:image", Overwrite=True
    )


def _revoke(
    clients: AwsClients,
    ami: str,
    lines: list[str],
    *,
    now: datetime | None = None,
    **kw: object,
) -> Revocation:
    return run_revoke(
        RevokeRequest(ami=ami, reason="CVE-2026-0042 in the kernel", **kw),  # type: ignore[arg-type]
        release(),
        clients,
        now or shifted_now(),
        lines.append,
        policy_dir=POLICY_DIR,
    )


def _current(rc: AwsClients) -> str | None:
    try:
        return str(rc.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"])
    except rc.ssm.exceptions.ParameterNotFound:
        return None


def _delete_record(clients: AwsClients, ami: str) -> None:
    """Remove the AMI's signed record from the evidence store (s3:DeleteObject)."""
    location = store.parse_s3_uri(ami_tags(clients, ami)[store.ATTESTATION_TAG])
    assert location is not None
    bucket, key = location
    clients.s3.delete_object(Bucket=bucket, Key=key)


def _skipped(change: ChannelChange, ami: str) -> str:
    return " | ".join(line for line in change.skipped if line.startswith(f"{ami}: "))


def test_rollback_skips_images_whose_record_does_not_verify(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    old, tampered, bad = _validated(aws, clients, tmp_path, "old", "tampered", "bad")
    never = pipeline_ami(clients, "never-validated")
    _promote(clients, old)
    _promote(clients, tampered)
    _publish(clients, never)  # in the history without ever being validated or promoted
    _promote(clients, bad)
    _delete_record(clients, tampered)

    lines: list[str] = []
    done = _revoke(clients, bad, lines)

    assert _current(clients) == old
    (change,) = done.changes
    assert (change.revoked, change.restored) == (bad, old)
    assert "does not verify" in _skipped(change, never)
    assert "does not exist" in _skipped(change, tampered), change.skipped
    assert not _skipped(change, old)
    assert any(f"not rolling back to {never}" in line for line in lines), lines
    assert any(f"point {PARAM} back to {old}" in line for line in lines), lines


def test_a_genuine_copy_is_rolled_back_to_and_an_impostor_copy_is_not(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    old, bad = _validated(aws, clients, tmp_path, "old-copy", "bad-copy")
    eu = make_clients(region="eu-west-1")
    _promote(clients, old, TWO)
    old_eu = ami_tags(clients, old)[f"{COPY_TAG_PREFIX}eu-west-1"]
    # An unrelated eu-west-1 image wearing the genuine copy's tags, pointer tags included.
    impostor = pipeline_ami(eu, "impostor")
    forged = {k: v for k, v in ami_tags(eu, old_eu).items() if not k.startswith("aws:")}
    eu.ec2.create_tags(
        Resources=[impostor], Tags=[{"Key": k, "Value": v} for k, v in forged.items()]
    )
    assert ami_tags(eu, impostor)[COPIED_FROM_TAG] == f"us-east-1/{old}"
    _publish(eu, impostor)
    _promote(clients, bad, TWO)
    bad_eu = _current(eu)
    assert bad_eu not in (None, old_eu, impostor)

    lines: list[str] = []
    done = _revoke(clients, bad, lines)

    assert _current(clients) == old
    assert _current(eu) == old_eu
    by_region = {c.region: c for c in done.changes}
    assert by_region["eu-west-1"].restored == old_eu
    assert f"not a copy of us-east-1/{old}" in _skipped(by_region["eu-west-1"], impostor)


def test_a_copy_of_an_image_whose_record_fails_is_skipped(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    old, tampered, bad = _validated(aws, clients, tmp_path, "old-3", "tampered-3", "bad-3")
    eu = make_clients(region="eu-west-1")
    for ami in (old, tampered, bad):
        _promote(clients, ami, TWO)
    old_eu = ami_tags(clients, old)[f"{COPY_TAG_PREFIX}eu-west-1"]
    tampered_eu = ami_tags(clients, tampered)[f"{COPY_TAG_PREFIX}eu-west-1"]
    _delete_record(clients, tampered)  # the source's record, in the source's region

    done = _revoke(clients, bad, [])

    by_region = {c.region: c for c in done.changes}
    assert _current(eu) == old_eu
    assert "does not verify" in _skipped(by_region["eu-west-1"], tampered_eu)
    assert _current(clients) == old


def test_no_earlier_image_qualifies_deletes_the_channel_with_reasons(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    tampered, bad = _validated(aws, clients, tmp_path, "tampered-4", "bad-4")
    never = pipeline_ami(clients, "never-4")
    _publish(clients, never)
    _promote(clients, tampered)
    _promote(clients, bad)
    _delete_record(clients, tampered)

    puts, deletes = aws.count("PutParameter"), aws.count("DeleteParameter")
    dry: list[str] = []
    planned = _revoke(clients, bad, dry, dry_run=True)
    assert (aws.count("PutParameter"), aws.count("DeleteParameter")) == (puts, deletes)
    assert _current(clients) == bad
    assert [c.restored for c in planned.changes] == [None]
    assert any(f"would delete {PARAM}" in line for line in dry), dry

    lines: list[str] = []
    done = _revoke(clients, bad, lines)
    assert _current(clients) is None
    (change,) = done.changes
    assert change.restored is None
    assert _skipped(change, tampered) and _skipped(change, never)
    assert any(f"not rolling back to {tampered}" in line for line in lines), lines
    assert any(f"delete {PARAM}" in line for line in lines), lines

    # Idempotent: nothing points at the revoked image any more.
    again = _revoke(clients, bad, [])
    assert again.changes == () and again.newly_revoked == ()


def test_a_stale_record_needs_allow_stale_rollback_which_relaxes_nothing_else(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    old, tampered, bad = _validated(aws, clients, tmp_path, "old-5", "tampered-5", "bad-5")
    for ami in (old, tampered, bad):
        _promote(clients, ami)
    _delete_record(clients, tampered)
    later = shifted_now() + timedelta(days=45)  # past max_age_days (30)

    dry: list[str] = []
    planned = _revoke(clients, bad, dry, now=later, dry_run=True)
    (change,) = planned.changes
    assert change.restored is None
    assert "more than 30 days ago" in _skipped(change, old)
    assert any(
        f"not rolling back to {old} (--allow-stale-rollback would accept it)" in line
        for line in dry
    ), dry
    assert _current(clients) == bad

    lines: list[str] = []
    done = _revoke(clients, bad, lines, now=later, allow_stale_rollback=True)
    (change,) = done.changes
    assert _current(clients) == old
    assert change.restored == old
    assert any("more than 30 days ago" in why for why in change.relaxed)
    assert "does not verify" in _skipped(change, tampered)  # the flag relaxes only age/policy
    assert any("WARNING" in line and old in line for line in lines), lines
    history = clients.ssm.get_parameter_history(Name=PARAM)["Parameters"]
    assert "--allow-stale-rollback" in history[-1]["Description"]


@pytest.mark.parametrize(
    ("channel", "level", "rolled_back"),
    [("stable", "LEVEL_1", False), ("candidate", "LEVEL_1", True), ("stable", None, False)],
)
def test_the_record_must_reach_the_channels_level(
    aws: LocalAws, clients: AwsClients, channel: str, level: str | None, rolled_back: bool
) -> None:
    name = PARAM.replace("/stable/", f"/{channel}/")
    old, bad = pipeline_ami(clients, f"old-{channel}"), pipeline_ami(clients, f"bad-{channel}")
    for ami in (old, bad):
        clients.ssm.put_parameter(
            Name=name, Value=ami, Type="String", DataType="aws:ec2:image", Overwrite=True
        )
    done = run_revoke(
        RevokeRequest(ami=bad, reason="level check"),
        release(),
        clients,
        shifted_now(),
        print,
        policy_dir=POLICY_DIR,
        verify=lambda rc, ami: verified(ami, region=rc.region, level=level),
    )
    (change,) = done.changes
    assert change.restored == (old if rolled_back else None)
    if not rolled_back:
        assert "the channel requires LEVEL_2" in _skipped(change, old)
