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


def copy_description(origin: str, description: str | None) -> str:
    """What promote's CopyImage gives a regional copy as description (``origin``: region/ami)."""
    return f"Copy of {origin}: {description or ''}"


def is_copy_of(candidate: Image, source: Image, origin: str) -> bool:
    """Whether ``candidate`` has the name and description promote's CopyImage gave a copy of
    ``source`` (``origin`` = ``<region>/<ami>``): attributes ec2:CreateTags cannot change."""
    return candidate.name == (source.name or source.id) and (
        candidate.description or ""
    ).startswith(copy_description(origin, None))
