"""``invoke revoke``: mark an AMI and its regional copies revoked, deprecate them, and roll every
channel that points at them back to its previous promoted image (or remove it). Idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.aws import AwsClients, boundary, is_aws_endpoint
from pipeline.aws import release as aws
from pipeline.aws.images import Image
from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.release import channels
from pipeline.tags import (
    COPIED_FROM_TAG,
    COPY_TAG_PREFIX,
    REVOKED_AT_TAG,
    REVOKED_BY_TAG,
    REVOKED_REASON_TAG,
    REVOKED_TAG,
)

Echo = Callable[[str], None]
_REASON = re.compile(r"^[^\x00-\x1f\x7f]{3,200}$")


@dataclass(frozen=True)
class RevokeRequest:
    ami: str
    reason: str
    channel: str | None = None  # None: every configured channel
    dry_run: bool = False


@dataclass(frozen=True)
class ChannelChange:
    region: str
    parameter: str
    revoked: str  # the image the channel pointed at
    restored: str | None  # the previous promoted image now current; None: parameter deleted


@dataclass(frozen=True)
class Revocation:
    ami: str
    newly_revoked: tuple[str, ...]  # "<region>/<ami-id>" marked revoked by this run
    changes: tuple[ChannelChange, ...]
    dry_run: bool = False


def check_reason(reason: str) -> str:
    text = (reason or "").strip()
    if not _REASON.fullmatch(text):
        raise ConfigError("--reason: give 3-200 printable characters saying why")
    return text


def revocation(clients: AwsClients, prefix: str, image: Image) -> str | None:
    """Why the AMI is revoked, or None: its revocation tag, or the record in SSM (either wins),
    for a regional copy also its source's record. Both are written by revoke; a removed tag
    alone does not un-revoke (ssm:GetParameter).
    """
    if image.tags.get(REVOKED_TAG, "").strip().lower() == "true":
        return image.tags.get(REVOKED_REASON_TAG) or "revoked"
    own = aws.get_parameter(clients, channels.revocation_parameter(prefix, image.id))
    if own is not None:
        return own
    # A regional copy is revoked with its source (recorded in the source's home region).
    region, _, source = image.tags.get(COPIED_FROM_TAG, "").partition("/")
    if channels.AMI_ID.fullmatch(source) and region in aws.known_regions():
        home = aws.in_region(clients, region)
        return aws.get_parameter(home, channels.revocation_parameter(prefix, source))
    return None


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
    history: Sequence[aws.ParameterVersion], revoked: set[str], usable: Callable[[str], bool]
) -> str | None:
    """The newest earlier value of the parameter that is not revoked and still usable."""
    seen: set[str] = set()
    for version in history:  # newest first
        value = version.value
        if value in revoked or value in seen:
            continue
        seen.add(value)
        if usable(value):
            return value
    return None


def run_revoke(
    request: RevokeRequest,
    release: channels.ReleaseSettings,
    clients: AwsClients,
    now: datetime,
    echo: Echo,
) -> Revocation:
    """Revoke the AMI (see the module doc). Calls ec2:DescribeImages, ec2:CreateTags,
    ec2:EnableImageDeprecation (real AWS only), ssm:GetParameter, GetParametersByPath,
    GetParameterHistory, PutParameter, DeleteParameter, sts:GetCallerIdentity. Raises
    ConfigError (exit 2), AwsError (exit 1).
    """
    ami = channels.check_ami(request.ami)
    reason = check_reason(request.reason)
    names = [release.channel(request.channel).name] if request.channel else sorted(release.channels)
    dry = request.dry_run
    verb = "would " if dry else ""
    prefix = release.parameter_prefix
    with boundary("revoke"):
        source = aws.owned_image(clients, ami)
        if source is None:
            raise ConfigError(f"--ami {ami}: no such AMI in {clients.region}")
        images = [(clients, source.image), *_copies(clients, source.image, echo, release.regions)]
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
        record = channels.revocation_parameter(prefix, ami)
        if aws.get_parameter(clients, record) is None:
            if not dry:
                text = f"{reason} (revoked {now:%Y-%m-%dT%H:%M:%SZ} by {who})"
                aws.put_parameter(clients, record, text, f"revocation of {ami}", image=False)
            echo(f"{clients.region}: {verb}record the revocation in {record}")
        changes = []
        note = f"revoked ({reason}) at {now:%Y-%m-%dT%H:%M:%SZ} by {who}"
        for rc in {rc.region: rc for rc, _ in images}.values():
            # Every channel parameter that points at a revoked image, found by its value (never
            # by name from the image's tags, which anyone who may tag could change).
            current = aws.parameters_under(rc, prefix)
            for name in sorted(current):
                if current[name] in revoked_ids and channel_of(prefix, name) in names:
                    changes.append(
                        _roll_back(rc, name, current[name], revoked_ids, release, note, dry, echo)
                    )
    if not newly and not changes:
        echo(f"{ami} is already revoked and no channel points at it: nothing to do")
    return Revocation(ami, tuple(newly), tuple(changes), dry)


def copy_description(origin: str, description: str | None) -> str:
    """What promote's CopyImage gives a regional copy as description (``origin``: region/ami)."""
    return f"Copy of {origin}: {description or ''}"


def is_copy_of(candidate: Image, source: Image, origin: str) -> bool:
    """Whether ``candidate`` has the name and description promote's CopyImage gave a copy of
    ``source`` (``origin`` = ``<region>/<ami>``): attributes ec2:CreateTags cannot change."""
    return candidate.name == (source.name or source.id) and (
        candidate.description or ""
    ).startswith(copy_description(origin, None))


def _copies(
    home: AwsClients, source: Image, echo: Echo, regions: Sequence[str] = ()
) -> list[tuple[AwsClients, Image]]:
    """The regional copies of ``source``: those its tags record, each confirmed by its own
    back-pointer tag and by the name and description CopyImage gave it, and, in the release
    regions, every image with that name and description whatever its tags say (tags can be
    removed to hide a copy from revoke)."""
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
        if (
            copy is None
            or copy.image.tags.get(COPIED_FROM_TAG) != origin
            or copy.copied_from(home.region, source.id) is False
            or not is_copy_of(copy.image, source, origin)
        ):
            echo(f"WARNING  {region}/{copy_id} is not a copy of {origin}: left alone")
            continue
        found[(region, copy.image.id)] = (rc, copy.image)
    for region in sorted(set(regions) - {home.region}):
        rc = aws.in_region(home, region)
        named = source.name or source.id
        for copy in aws.owned_images(rc, [{"Name": "name", "Values": [named]}]):
            if copy.copied_from(home.region, source.id) is not False and is_copy_of(
                copy.image, source, origin
            ):
                found.setdefault((region, copy.image.id), (rc, copy.image))
    return list(found.values())


def channel_of(prefix: str, name: str) -> str | None:
    """The channel of a parameter named by the scheme under ``prefix``, else None (pure)."""
    parts = name.removeprefix(prefix + "/").split("/")
    if not name.startswith(prefix + "/") or len(parts) != 5 or parts[4] != channels.LEAF:
        return None
    platform, arch, k8s, channel = parts[:4]
    known = {p.short for p in Platform}
    ok = (
        platform in known
        and arch in channels.ARCHS
        and channels.K8S_VERSION.fullmatch(k8s)
        and channels.CHANNEL.fullmatch(channel)
    )
    return channel if ok else None


def _roll_back(
    rc: AwsClients,
    name: str,
    current: str,
    revoked: set[str],
    release: channels.ReleaseSettings,
    note: str,
    dry: bool,
    echo: Echo,
) -> ChannelChange:
    def usable(candidate: str) -> bool:
        owned = aws.owned_image(rc, candidate)
        return bool(
            owned
            and owned.image.available
            and revocation(rc, release.parameter_prefix, owned.image) is None
        )

    target = rollback_target(aws.parameter_history(rc, name), revoked, usable)
    verb = "would " if dry else ""
    if target is None:
        echo(f"{rc.region}: {verb}delete {name} (no earlier promoted image to return to)")
        if not dry:
            aws.delete_parameter(rc, name)
    else:
        echo(f"{rc.region}: {verb}point {name} back to {target} (was {current})")
        if not dry:
            aws.put_parameter(rc, name, target, f"rolled back from {current}: {note}")
            aws.wait_parameter(rc, name, target, echo=echo)
    return ChannelChange(rc.region, name, current, target)
