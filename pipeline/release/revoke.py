"""``invoke revoke``: mark an AMI and its regional copies revoked, deprecate them, and roll every
channel that points at them back to its previous promoted image whose signed validation record
still verifies (or remove it). Idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipeline import channels
from pipeline.aws import AwsClients, boundary, is_aws_endpoint, s3
from pipeline.aws import release as aws
from pipeline.aws.account import caller_account
from pipeline.aws.images import Image
from pipeline.errors import AwsError, ConfigError
from pipeline.evidence import store, trust
from pipeline.evidence.record import Verification
from pipeline.evidence.revocation import is_copy_of, revocation
from pipeline.evidence.verify import verify_ami
from pipeline.tags import (
    COPIED_FROM_TAG,
    COPY_TAG_PREFIX,
    REVOKED_AT_TAG,
    REVOKED_BY_TAG,
    REVOKED_REASON_TAG,
    REVOKED_TAG,
)

Echo = Callable[[str], None]
Verifier = Callable[[AwsClients, str], Verification]
_REASON = re.compile(r"^[^\x00-\x1f\x7f]{3,200}$")


@dataclass(frozen=True)
class RevokeRequest:
    ami: str
    reason: str
    channel: str | None = None  # None: every configured channel
    dry_run: bool = False
    # Roll back to an image whose record is older than max_age_days or made under another
    # exceptions policy (never to one whose record does not verify); the reasons are printed.
    allow_stale_rollback: bool = False
    evidence_bucket: str | None = None
    signing_key: str | None = None  # the trusted KMS key (default: the one invoke setup made)


@dataclass(frozen=True)
class ChannelChange:
    region: str
    parameter: str
    revoked: str  # the image the channel pointed at
    restored: str | None  # the previous promoted image now current; None: parameter deleted
    skipped: tuple[str, ...] = ()  # "<ami>: <reason>" for each earlier image not rolled back to
    relaxed: tuple[str, ...] = ()  # what --allow-stale-rollback let through for ``restored``


@dataclass(frozen=True)
class Revocation:
    ami: str
    newly_revoked: tuple[str, ...]  # "<region>/<ami-id>" marked revoked by this run
    changes: tuple[ChannelChange, ...]
    dry_run: bool = False
    unshared: tuple[str, ...] = ()  # "<region>/<image or snapshot>: <account>" taken away


def check_reason(reason: str) -> str:
    text = (reason or "").strip()
    if not _REASON.fullmatch(text):
        raise ConfigError("--reason: give 3-200 printable characters saying why")
    return text


def deprecation_time(now: datetime) -> datetime:
    """The earliest deprecation time EC2 accepts: not in the past, whole minutes (it rounds
    seconds), so two minutes ahead, truncated. https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableImageDeprecation.html"""
    return (now + timedelta(minutes=2)).replace(second=0, microsecond=0)


def revocation_tags(reason: str, when: datetime, who: str) -> dict[str, str]:
    return {
        REVOKED_TAG: "true",
        REVOKED_REASON_TAG: reason,
        REVOKED_AT_TAG: when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        REVOKED_BY_TAG: who[:256],
    }


def rollback_target(
    history: Sequence[aws.ParameterVersion],
    revoked: set[str],
    usable: Callable[[str], Sequence[str]],
) -> tuple[str | None, list[tuple[str, tuple[str, ...]]]]:
    """The newest earlier value of the parameter that is not revoked and that ``usable`` finds
    no reason against, and each newer value skipped with its reasons (newest first)."""
    seen: set[str] = set()
    skipped: list[tuple[str, tuple[str, ...]]] = []
    for version in history:  # newest first
        value = version.value
        if value in seen:
            continue
        seen.add(value)
        if value in revoked:
            continue  # the images being revoked now
        reasons = tuple(usable(value))
        if not reasons:
            return value, skipped
        skipped.append((value, reasons))
    return None, skipped


def default_verifier(request: RevokeRequest) -> Verifier:
    """``pipeline.evidence.verify.verify_ami`` with the request's bucket and signing key."""

    def verify(clients: AwsClients, ami: str) -> Verification:
        return verify_ami(
            clients, ami, evidence_bucket=request.evidence_bucket, signing_key=request.signing_key
        )

    return verify


def run_revoke(
    request: RevokeRequest,
    release: channels.ReleaseSettings,
    clients: AwsClients,
    now: datetime,
    echo: Echo,
    *,
    policy_dir: Path | None = None,
    verify: Verifier | None = None,
) -> Revocation:
    """Revoke the AMI (see the module doc). A channel is rolled back only to an earlier image
    ``promote`` would publish there now (its record, or for a regional copy its source's record,
    verifies; see ``rollback_refusals``); ``policy_dir`` holds the current exceptions policies
    (None: there are none, so only ``allow_stale_rollback`` can roll back).

    Calls ec2:DescribeImages, ec2:CreateTags, ec2:EnableImageDeprecation (real AWS only),
    ec2:Describe/ModifyImageAttribute, ec2:Describe/ModifySnapshotAttribute (the shares),
    ssm:GetParameter, GetParametersByPath, GetParameterHistory, PutParameter, DeleteParameter,
    sts:GetCallerIdentity, s3:ListBucket (the release history) and what the verifier calls
    (s3:GetObject, s3:ListBucket, kms:DescribeKey, kms:Verify). Raises ConfigError (exit 2),
    AwsError (exit 1).
    """
    ami = channels.check_ami(request.ami)
    reason = check_reason(request.reason)
    # --channel narrows revoke to one configured channel; else every parameter under the prefix
    # whose value is a revoked image is taken back, configured channel or not (one removed from
    # invoke.yaml since the promotion still serves the image).
    only = release.channel(request.channel).name if request.channel else None
    dry = request.dry_run
    verb = "would " if dry else ""
    prefix = release.parameter_prefix
    judge = Judge(
        release, verify or default_verifier(request), policy_dir, now, request.allow_stale_rollback
    )
    with boundary("revoke"):
        source = aws.owned_image(clients, ami)
        if source is None:
            raise ConfigError(f"--ami {ami}: no such AMI in {clients.region}")
        images = [
            (clients, source.image),
            *_copies(clients, source.image, echo, release.regions, request.evidence_bucket),
        ]
        revoked_ids = {img.id for _, img in images}
        who = aws.caller_arn(clients)
        newly: list[str] = []
        for rc, img in images:
            if img.tags.get(REVOKED_TAG) == "true":
                continue
            newly.append(f"{rc.region}/{img.id}")
            echo(f"{rc.region}: {verb}mark {img.id} revoked ({reason}) and deprecate it")
            if dry:
                continue
            aws.tag(rc, [img.id], revocation_tags(reason, now, who))
            if is_aws_endpoint(rc.endpoint_url):
                aws.enable_deprecation(rc, img.id, deprecation_time(now))
            else:  # moto does not implement EnableImageDeprecation; the tags carry the time
                echo(f"{rc.region}: local AWS: deprecation time recorded in tags only")
        unshared = [line for rc, img in images for line in _unshare(rc, img, dry, echo)]
        record = channels.revocation_parameter(prefix, ami)
        if aws.get_parameter(clients, record) is None:
            if not dry:
                text = f"{reason} (revoked {now:%Y-%m-%dT%H:%M:%SZ} by {who})"
                aws.put_parameter(clients, record, text, f"revocation of {ami}", image=False)
            echo(f"{clients.region}: {verb}record the revocation in {record}")
        changes = []
        note = f"revoked ({reason}) at {now:%Y-%m-%dT%H:%M:%SZ} by {who}"
        for rc in {rc.region: rc for rc, _ in images}.values():
            # Every parameter under the prefix that points at a revoked image, found by its
            # value (never by name from the image's tags, which anyone who may tag could change).
            current = aws.parameters_under(rc, prefix)
            for name in sorted(current):
                if current[name] in revoked_ids and only in (
                    None,
                    channels.channel_of(prefix, name),
                ):
                    changes.append(
                        _roll_back(rc, name, current[name], revoked_ids, judge, note, dry, echo)
                    )
    if not newly and not changes and not unshared:
        echo(f"{ami} is already revoked and no channel points at it: nothing to do")
    return Revocation(ami, tuple(newly), tuple(changes), dry, tuple(unshared))


def _unshare(rc: AwsClients, image: Image, dry: bool, echo: Echo) -> list[str]:
    """Take away every launch permission on the image and create-volume permission on its
    snapshots (what promote's ``--accounts`` granted); nothing left to take: nothing done."""
    verb = "would take" if dry else "took"
    done: list[str] = []
    owners = aws.launch_permissions(rc, image.id)
    if owners and not dry:
        aws.remove_launch_permission(rc, image.id, owners)
    done += [f"{rc.region}/{image.id}: {account}" for account in sorted(owners)]
    for snapshot in image.snapshot_ids:
        users = aws.volume_permissions(rc, snapshot)
        if users and not dry:
            aws.remove_volume_permission(rc, snapshot, users)
        done += [f"{rc.region}/{snapshot}: {account}" for account in sorted(users)]
    for line in done:
        echo(f"{verb} away the share {line}")
    return done


def _recorded(home: AwsClients, ami: str, bucket: str | None) -> list[tuple[str, str]]:
    """(region, copy ID) of each copy promote recorded in the evidence store's release history
    (``store.releases_prefix``); keys that name no region and AMI are ignored."""
    account = caller_account(home)
    prefix = store.releases_prefix(account, home.region, ami)
    bucket = bucket or store.default_bucket(account, home.region)
    found = []
    for key in s3.list_keys(home, bucket, prefix, account):
        region, _, name = key.removeprefix(prefix).partition("/")
        copy_id = name.removesuffix(".json")
        if region in aws.known_regions() and channels.AMI_ID.fullmatch(copy_id):
            found.append((region, copy_id))
    return found


def _copies(
    home: AwsClients,
    source: Image,
    echo: Echo,
    regions: Sequence[str] = (),
    bucket: str | None = None,
) -> list[tuple[AwsClients, Image]]:
    """The regional copies of ``source``: those its tags and the evidence store's release
    history (promote's, ``bucket``) record and, in the release regions,
    every image with its name whatever its tags say (tags can be removed to hide a copy from
    revoke), each confirmed by EC2's own record of what it was copied from."""
    found: dict[tuple[str, str], tuple[AwsClients, Image]] = {}
    origin = f"{home.region}/{source.id}"
    for key, copy_id in sorted(source.tags.items()):
        if not key.startswith(COPY_TAG_PREFIX):
            continue
        region = key.removeprefix(COPY_TAG_PREFIX)
        if region not in aws.known_regions() or not channels.AMI_ID.fullmatch(copy_id):
            echo(f"WARNING  ignoring tag {key}={copy_id}: not a region and AMI ID")
            continue
        rc = aws.in_region(home, region)
        copy = aws.owned_image(rc, copy_id)
        if copy is None or not is_copy_of(copy.image, origin):
            echo(f"WARNING  {region}/{copy_id} is not a copy of {origin}: left alone")
            continue
        found[(region, copy.image.id)] = (rc, copy.image)
    for region, copy_id in _recorded(home, source.id, bucket):
        rc = aws.in_region(home, region)
        copy = aws.owned_image(rc, copy_id)
        if copy is not None and is_copy_of(copy.image, origin):
            found.setdefault((region, copy.image.id), (rc, copy.image))
    for region in sorted(set(regions) - {home.region}):
        rc = aws.in_region(home, region)
        named = source.name or source.id
        for copy in aws.owned_images(rc, [{"Name": "name", "Values": [named]}]):
            if is_copy_of(copy.image, origin):
                found.setdefault((region, copy.image.id), (rc, copy.image))
    return list(found.values())


@dataclass(frozen=True)
class Judge:
    """Whether an earlier value of a channel parameter may be published again."""

    release: channels.ReleaseSettings
    verify: Verifier
    policy_dir: Path | None
    now: datetime
    allow_stale: bool

    def reasons(self, rc: AwsClients, name: str, candidate: str) -> tuple[list[str], list[str]]:
        """(why ``candidate`` may never be rolled back to, why its record is out of date: the
        reasons ``--allow-stale-rollback`` relaxes)."""
        prefix = self.release.parameter_prefix
        path = channels.parameter_path(prefix, name)
        if path is None:
            return ["not a channel parameter of the naming scheme"], []
        platform_short, arch, k8s, channel_name = path
        if not channels.AMI_ID.fullmatch(candidate):
            return [f"{candidate!r} is not an AMI ID"], []
        owned = aws.owned_image(rc, candidate)
        if owned is None:
            return ["no such image of this account in the region"], []
        image = owned.image
        if not image.available:
            return [f"image is {image.state}, not available"], []
        out: list[str] = []
        revoked = revocation(rc, prefix, image)
        if revoked is not None:
            out.append(f"revoked: {revoked}")
        subject_rc, subject = rc, image
        origin = image.tags.get(COPIED_FROM_TAG)
        if origin is not None:  # a regional copy: its source's record speaks for it
            found = self._source(rc, owned, origin)
            if isinstance(found, str):
                return [*out, found], []
            subject_rc, subject = found
        try:
            verification = self.verify(subject_rc, subject.id)
        except AwsError as exc:  # fail closed: an unreadable record does not verify
            return [*out, f"its record could not be read: {exc}"], []
        if channel_name not in self.release.channels:  # its min_level is unknown: none fits
            return [*out, f"channel {channel_name} is not configured in invoke.yaml"], []
        channel = self.release.channel(channel_name)
        out += trust.trust_refusals(
            verification,
            ami=subject.id,
            region=subject_rc.region,
            now=self.now,
            min_level=channel.min_level,
            real_endpoint=is_aws_endpoint(rc.endpoint_url),
            revoked=None if revoked is not None else revocation(subject_rc, prefix, subject),
        )
        out += _path_refusals(verification, subject, image, (platform_short, arch, k8s))
        platform = trust.signed_platform(verification) or subject.platform
        stale = trust.freshness_refusals(
            verification,
            now=self.now,
            max_age_days=self.release.max_age_days,
            policy_sha=trust.policy_sha(self.policy_dir, platform)
            if self.policy_dir is not None
            else None,
        )
        return out, stale

    def _source(
        self, rc: AwsClients, copy: aws.OwnedImage, origin: str
    ) -> tuple[AwsClients, Image] | str:
        """The source image a regional copy was made from, with clients in its region, or why
        the copy is not a genuine copy of what its ``cis-release:copied-from`` tag names."""
        region, _, ami = origin.partition("/")
        if region not in aws.known_regions() or not channels.AMI_ID.fullmatch(ami):
            return f"tag {COPIED_FROM_TAG}={origin} does not name a region and an AMI"
        if region == rc.region:
            return f"tag {COPIED_FROM_TAG}={origin} names its own region"
        home = aws.in_region(rc, region)
        source = aws.owned_image(home, ami)
        if source is None:
            return f"its source {origin} is not an image of this account"
        if not is_copy_of(copy.image, origin):
            return f"not a copy of {origin}: EC2 names {_named(copy.image)} as its source"
        return home, source.image


def _named(image: Image) -> str:
    return "/".join(image.source) if image.source else "no image"


def _path_refusals(
    verification: Verification, subject: Image, image: Image, path: tuple[str, str, str]
) -> list[str]:
    """Why the image does not belong under the channel parameter's platform, architecture and
    Kubernetes version, judged as promote judges them: what the record signed, else the tags
    (records made before it signed them), EC2's architecture and the name no tag can change."""
    platform_short, arch, k8s = path
    out: list[str] = []
    signed_k8s = trust.signed_kubernetes_version(verification)
    tagged_k8s = subject.tags.get(trust.K8S_TAG, "")
    platform = trust.signed_platform(verification) or subject.platform
    if platform is None or platform.short != platform_short:
        got = platform.short if platform else "no platform"
        out.append(f"platform {got} is not the channel's {platform_short}")
    elif subject.platform is not None and subject.platform is not platform:
        out.append(f"platform tag {subject.platform.value} disagrees with the record")
    if (signed_k8s or tagged_k8s) != k8s:
        out.append(f"Kubernetes version {signed_k8s or tagged_k8s or 'none'} is not the channel's")
    if signed_k8s and tagged_k8s != signed_k8s:
        out.append(f"Kubernetes version tag {tagged_k8s or '(none)'} disagrees with the record")
    named = trust.BUILT_NAME.match(subject.name or "")
    if named and named.group(1) != k8s:
        out.append(f"the AMI's name {subject.name} says Kubernetes {named.group(1)}, not {k8s}")
    if image.architecture != arch:
        out.append(f"architecture {image.architecture} is not the channel's {arch}")
    return out


def _roll_back(
    rc: AwsClients,
    name: str,
    current: str,
    revoked: set[str],
    judge: Judge,
    note: str,
    dry: bool,
    echo: Echo,
) -> ChannelChange:
    relaxed: dict[str, list[str]] = {}
    hints: dict[str, str] = {}

    def usable(candidate: str) -> list[str]:
        refused, stale = judge.reasons(rc, name, candidate)
        if judge.allow_stale:
            relaxed[candidate] = stale
            return refused
        if stale and not refused:
            hints[candidate] = " (--allow-stale-rollback would accept it)"
        return refused + stale

    target, skipped = rollback_target(aws.parameter_history(rc, name), revoked, usable)
    verb = "would " if dry else ""
    lines = tuple(f"{ami}: {why}" for ami, reasons in skipped for why in reasons)
    for ami, reasons in skipped:
        hint = hints.get(ami, "")
        echo(f"{rc.region}: {name}: not rolling back to {ami}{hint}: " + "; ".join(reasons))
    if target is None:
        echo(f"{rc.region}: {verb}delete {name} (no earlier image in its history qualifies)")
        if not dry:
            aws.delete_parameter(rc, name)
        return ChannelChange(rc.region, name, current, None, lines)
    stale = tuple(relaxed.get(target, ()))
    for why in stale:
        echo(f"{rc.region}: WARNING  {target} rolled back to with --allow-stale-rollback: {why}")
    echo(f"{rc.region}: {verb}point {name} back to {target} (was {current})")
    if not dry:
        extra = " (stale record accepted: --allow-stale-rollback)" if stale else ""
        aws.put_parameter(rc, name, target, f"rolled back from {current}: {note}{extra}")
        aws.wait_parameter(rc, name, target, echo=echo)
    return ChannelChange(rc.region, name, current, target, lines, stale)
