"""Retention of pipeline-built AMIs (part of ``invoke reap``): deregister old unpromoted builds,
keep the newest N per platform/architecture/Kubernetes version; ``plan`` says what is protected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.aws import AwsClients, boundary
from pipeline.aws import release as aws
from pipeline.aws.images import Image
from pipeline.channels import ReleaseSettings, channel_of
from pipeline.errors import PipelineError
from pipeline.tags import (
    BUILD_RUN_TAG,
    CHANNEL_TAG_PREFIX,
    COPIED_FROM_TAG,
    COPY_TAG_PREFIX,
    MANAGED_TAG,
    MANAGED_VALUE,
    REVOKED_TAG,
)

Echo = Callable[[str], None]
GROUP_TAGS = ("cis-ami:platform", "cis-ami:architecture", "cis-ami:kubernetes-version")


@dataclass(frozen=True, slots=True)
class Decision:
    ami: str
    delete: bool
    why: str


@dataclass
class RetentionReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def is_pipeline_image(image: Image) -> bool:
    """Built by this pipeline: ``MANAGED_TAG`` exactly ``MANAGED_VALUE`` and a build run ID."""
    return image.tags.get(MANAGED_TAG) == MANAGED_VALUE and bool(image.tags.get(BUILD_RUN_TAG))


def _created(image: Image) -> datetime | None:
    try:
        return datetime.fromisoformat((image.creation_date or "").replace("Z", "+00:00"))
    except ValueError:
        return None


def _protected(image: Image, published: set[str], revoked: set[str]) -> str | None:
    if image.id in published:
        return "a channel's current image"
    if any(k.startswith((CHANNEL_TAG_PREFIX, COPY_TAG_PREFIX)) for k in image.tags):
        return "promoted"
    if COPIED_FROM_TAG in image.tags:
        return "a promoted regional copy"
    if REVOKED_TAG in image.tags or image.id in revoked:
        return "revoked (kept as evidence)"
    if image.state != "available":
        return f"state {image.state}"
    return None


def plan(
    images: Iterable[Image],
    *,
    now: datetime,
    max_age: timedelta,
    keep: int,
    published: Iterable[str] = (),
    revoked: Iterable[str] = (),
) -> list[Decision]:
    """Decide each image's fate (pure). Never touched: images without the pipeline's exact
    ownership tags, promoted images (a channel record tag, a regional copy, or any value in a
    channel parameter's history: ``published``), revoked images. Of the rest, per group the
    ``keep`` newest stay and those older than ``max_age`` go."""
    pub, rev = set(published), set(revoked)
    decisions: list[Decision] = []
    groups: dict[tuple[str, ...], list[Image]] = defaultdict(list)
    for image in images:
        if not is_pipeline_image(image):
            decisions.append(Decision(image.id, False, "not built by this pipeline"))
            continue
        why = _protected(image, pub, rev)
        if why:
            decisions.append(Decision(image.id, False, why))
            continue
        groups[tuple(image.tags.get(t, "?") for t in GROUP_TAGS)].append(image)
    for key, members in sorted(groups.items()):
        members.sort(key=lambda i: (i.creation_date or "", i.id), reverse=True)
        for rank, image in enumerate(members):
            created = _created(image)
            if rank < keep:
                decisions.append(
                    Decision(image.id, False, f"among the {keep} newest of {'/'.join(key)}")
                )
            elif created is None:
                decisions.append(Decision(image.id, False, "no creation date"))
            elif now - created <= max_age:
                decisions.append(Decision(image.id, False, f"younger than {max_age.days} days"))
            else:
                decisions.append(
                    Decision(
                        image.id,
                        True,
                        f"unpromoted, built {created:%Y-%m-%d}, older than {max_age.days} days",
                    )
                )
    return decisions


def _revoked_ids(parameters: Mapping[str, str], prefix: str) -> set[str]:
    base = f"{prefix}/revoked/"
    return {n.removeprefix(base) for n in parameters if n.startswith(base)}


def run_retention(
    clients: AwsClients,
    release: ReleaseSettings,
    now: datetime,
    echo: Echo,
    *,
    dry_run: bool = False,
) -> RetentionReport:
    """Apply ``plan`` to this account's pipeline AMIs in the clients' region.

    Calls ec2:DescribeImages, ssm:GetParametersByPath, ssm:GetParameterHistory,
    ec2:DeregisterImage, ec2:DeleteSnapshot.
    A failed deletion is reported in ``failures``; the others still go.
    """
    report = RetentionReport()
    with boundary("reap: AMI retention"):
        owned = aws.owned_images(
            clients,
            [
                {"Name": f"tag:{MANAGED_TAG}", "Values": [MANAGED_VALUE]},
                {"Name": "tag-key", "Values": [BUILD_RUN_TAG]},
            ],
        )
        parameters = aws.parameters_under(clients, release.parameter_prefix)
        # Ever promoted here: every value in every channel's history (tags can be removed).
        published = set(parameters.values())
        for name in parameters:
            if channel_of(release.parameter_prefix, name) is not None:
                published |= {v.value for v in aws.parameter_history(clients, name)}
    by_id = {o.image.id: o for o in owned}
    decisions = plan(
        [o.image for o in owned],
        now=now,
        max_age=timedelta(days=release.retention_days),
        keep=release.retention_keep,
        published=published,
        revoked=_revoked_ids(parameters, release.parameter_prefix),
    )
    verb = "would deregister" if dry_run else "deregistered"
    for decision in decisions:
        if not decision.delete:
            report.kept.append(decision.ami)
            continue
        target = by_id[decision.ami]
        snaps = ", ".join(target.snapshots) or "no snapshots"
        try:
            if not dry_run:
                with boundary(f"reap: deregister {decision.ami}"):
                    aws.deregister(clients, target)
        except PipelineError as exc:
            report.failures.append(f"AMI {decision.ami}: {exc}")
            echo(f"WARNING  deregistering {decision.ami} failed: {exc}")
            continue
        report.deleted.append(decision.ami)
        echo(
            f"{verb} AMI {decision.ami} and deleted {snaps}: {decision.why}"
            if not dry_run
            else f"{verb} AMI {decision.ami} ({snaps}): {decision.why}"
        )
    echo(summary(report, dry_run))
    return report


def summary(report: RetentionReport, dry_run: bool) -> str:
    verb = "would deregister" if dry_run else "deregistered"
    return f"AMI retention: {verb} {len(report.deleted)}, kept {len(report.kept)} pipeline AMI(s)"
