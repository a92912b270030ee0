"""Promote's key preflight and its consumer-side check: before anything is copied or shared,
every KMS key involved (the source image's snapshots', each existing copy's, the key each new
copy would get) is read and judged (``pipeline.kms_policy``); after sharing, each account's
view of each image is checked. A key AWS refuses to share, or one a target account cannot use,
is refused here rather than half-way through the promotion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline import channels
from pipeline.aws import AwsClients, image_keys
from pipeline.aws import release as aws
from pipeline.kms_policy import KeyFacts, is_aws_ebs_key, key_problems, key_region

Echo = Callable[[str], None]
SETUP_HINT = "run `invoke setup --image-keys` or set pipeline.release.kms_keys"


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """What the preflight found: the keys read (ARN -> facts) and the problems."""

    keys: dict[str, KeyFacts]
    problems: tuple[str, ...]


class _Reader:
    """Reads each key once per region."""

    def __init__(self) -> None:
        self.keys: dict[str, KeyFacts] = {}
        self._seen: dict[tuple[str, str], KeyFacts | None] = {}

    def read(self, clients: AwsClients, key: str) -> KeyFacts | None:
        slot = (clients.region, key)
        if slot not in self._seen:
            facts = image_keys.read_key(clients, key)
            self._seen[slot] = facts
            if facts is not None:
                self.keys[facts.arn] = facts
        return self._seen[slot]


def preflight(
    home: AwsClients,
    source: aws.OwnedImage,
    targets: Sequence[tuple[str, aws.OwnedImage | None]],
    accounts: Sequence[str],
    release: channels.ReleaseSettings,
) -> KeyPlan:
    """Judge every key of a promotion of ``source`` to ``targets`` (region, existing image or
    None for a copy to make) shared with ``accounts``; reads only (kms:DescribeKey,
    kms:GetKeyPolicy, kms:ListGrants, ec2:DescribeSnapshots). Problems are one line each."""
    reader = _Reader()
    problems: list[str] = []
    shared_home = any(region == home.region for region, _ in targets)
    problems += [
        f"{p}; then build the image again (build encrypts with pipeline.release.kms_keys)"
        if "AWS-managed" in p
        else p
        for p in _image_problems(
            reader, home, source, accounts if shared_home else (), "the source image"
        )
    ]
    for region, image in targets:
        if region == home.region:
            continue
        rc = aws.in_region(home, region)
        if image is not None:
            problems += _image_problems(reader, rc, image, accounts, "the copy")
        else:
            problems += _new_copy_problems(reader, rc, accounts, release)
    return KeyPlan(reader.keys, tuple(dict.fromkeys(problems)))


def _image_problems(
    reader: _Reader,
    clients: AwsClients,
    image: aws.OwnedImage,
    accounts: Sequence[str],
    what: str,
) -> list[str]:
    found: list[str] = []
    for snap in image_keys.snapshot_keys(clients, image.snapshots):
        if snap.key is None:
            continue  # unencrypted: shared as it is, no key involved
        label = f"{clients.region}: {what} {image.image.id}"
        facts = reader.read(clients, snap.key)
        if facts is None:
            found.append(f"{label}: key {snap.key} not found in {clients.region}")
            continue
        found += key_problems(facts, region=clients.region, accounts=accounts, what=label)
    return found


def _new_copy_problems(
    reader: _Reader,
    rc: AwsClients,
    accounts: Sequence[str],
    release: channels.ReleaseSettings,
) -> list[str]:
    region = rc.region
    label = f"{region}: the copy to make"
    key = release.kms_keys.get(region)
    if is_aws_ebs_key(key):
        if not accounts:
            return []  # the account's default EBS key encrypts a copy nobody else launches
        return [
            f"{label}: no customer-managed key for {region} (pipeline.release.kms_keys."
            f"{region}), so it would be encrypted with the account's default EBS key, which "
            f"AWS refuses to share: {SETUP_HINT}.{region}"
        ]
    assert key is not None
    where = key_region(key)
    if where is not None and where != region:
        return [
            f"{label}: key {key} (pipeline.release.kms_keys.{region}) is in {where}: EC2 "
            f"copies into {region} only with a key of {region}"
        ]
    facts = reader.read(rc, key)
    if facts is None:
        return [f"{label}: key {key} (pipeline.release.kms_keys.{region}) not found: {SETUP_HINT}"]
    return key_problems(facts, region=region, accounts=accounts, what=label)


def consumer_view(
    rc: AwsClients, image: aws.OwnedImage, accounts: Sequence[str], echo: Echo
) -> tuple[str, ...]:
    """After sharing: for each account, whether EC2 lists the image among those it may launch
    (DescribeImages ExecutableUsers) and lets it create volumes from every snapshot
    (DescribeSnapshotAttribute). One line per account; the accounts that fail."""
    failed: list[str] = []
    for account in accounts:
        missing: list[str] = []
        if not image_keys.executable_by(rc, image.image.id, account):
            missing.append("launch permission")
        for snapshot in image.snapshots:
            if account not in aws.volume_permissions(rc, snapshot):
                missing.append(f"create-volume permission on {snapshot}")
        if missing:
            failed.append(account)
            echo(f"{rc.region}: {account} does NOT see {image.image.id}: no {', '.join(missing)}")
        else:
            count = len(image.snapshots)
            echo(
                f"{rc.region}: {account} sees {image.image.id} (launch permission) and its "
                f"{count} snapshot(s) (create-volume permission); its key admits {account}"
            )
    return tuple(failed)
