"""Is an AMI revoked, and is an image really a regional copy of another: what verify, promote
and revoke all ask before trusting an image (reads tags and the SSM revocation record)."""

from __future__ import annotations

from pipeline import channels
from pipeline.aws import AwsClients
from pipeline.aws import release as aws
from pipeline.aws.images import Image
from pipeline.tags import COPIED_FROM_TAG, REVOKED_REASON_TAG, REVOKED_TAG


def revocation(clients: AwsClients, prefix: str, image: Image) -> str | None:
    """Why the AMI is revoked, or None: its revocation tag, or the record in SSM (either wins),
    for a regional copy also its source's record. Both are written by revoke; a removed tag
    alone does not un-revoke (ssm:GetParameter). The source is the one EC2 names
    (``SourceImageId``, which no tag changes), and the one the ``cis-release:copied-from`` tag
    names too (a tag can only add a revocation here, never remove one).
    """
    if image.tags.get(REVOKED_TAG, "").strip().lower() == "true":
        return image.tags.get(REVOKED_REASON_TAG) or "revoked"
    own = aws.get_parameter(clients, channels.revocation_parameter(prefix, image.id))
    if own is not None:
        return own
    region, _, source = image.tags.get(COPIED_FROM_TAG, "").partition("/")
    sources = [image.source] if image.source is not None else []
    sources.append((region, source))
    for region, source in dict.fromkeys(sources):
        if channels.AMI_ID.fullmatch(source) and region in aws.known_regions():
            home = aws.in_region(clients, region)
            why = aws.get_parameter(home, channels.revocation_parameter(prefix, source))
            if why is not None:
                return why
    return None


def copy_description(origin: str, description: str | None) -> str:
    """What promote's CopyImage gives a regional copy as description (``origin``: region/ami)."""
    return f"Copy of {origin}: {description or ''}"


def is_copy_of(candidate: Image, origin: str) -> bool:
    """Whether EC2 says ``candidate`` was copied from ``origin`` (``<region>/<ami>``): its
    ``SourceImageRegion``/``SourceImageId``. A name, a ``Copy of …`` description and a
    ``cis-release:copied-from`` tag are what anyone with ec2:RegisterImage + ec2:CreateTags can
    give any image; an image EC2 names no source for is not a copy."""
    region, _, ami = origin.partition("/")
    return candidate.source == (region, ami)
