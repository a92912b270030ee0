"""``invoke channels``: what each release channel serves, per region: the image in its SSM
parameter, whether it is verified now by the rules promote and a rollback apply (its signed
record, or for a regional copy its source's, through ``verify_ami``; not revoked; the
parameter's platform, architecture and version; the record's age and policy digest), and the
parameter's history (newest first). Reads only; exit 0 whatever it finds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline import channels
from pipeline.aws import AwsClients
from pipeline.aws import release as aws
from pipeline.evidence.record import Verification
from pipeline.evidence.verify import verify_ami
from pipeline.release.revoke import Judge

Verifier = Callable[[AwsClients, str], Verification]


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    image: str
    note: str  # the version's description: who promoted or rolled back what, when


@dataclass(frozen=True, slots=True)
class ChannelImage:
    region: str
    channel: str
    platform: str
    arch: str
    k8s_version: str
    parameter: str
    image: str
    verified: bool
    reasons: tuple[str, ...]  # why the record does not verify (empty when verified)
    history: tuple[Version, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def channel_status(
    settings: channels.ReleaseSettings,
    home: AwsClients,
    *,
    now: datetime,
    channel: str | None = None,
    verifier: Verifier = verify_ami,
    policy_dir: Path | None = None,
) -> list[ChannelImage]:
    """Every channel parameter under the prefix, in the home region and each configured region,
    sorted by region, channel, platform, architecture and version."""
    if channel is not None:
        settings.channel(channel)
    judge = Judge(settings, verifier, policy_dir, now, allow_stale=False)
    regions = list(dict.fromkeys((home.region, *settings.regions)))
    found: list[ChannelImage] = []
    for region in regions:
        rc = home if region == home.region else aws.in_region(home, region)
        under = aws.parameters_under(rc, settings.parameter_prefix)
        for p in channels.published(under, settings.parameter_prefix, channel):
            refused, stale = judge.reasons(rc, p.parameter, p.image)
            history = tuple(
                Version(v.version, v.value, v.description)
                for v in aws.parameter_history(rc, p.parameter)
            )
            found.append(
                ChannelImage(
                    region,
                    p.channel,
                    p.platform,
                    p.arch,
                    p.k8s_version,
                    p.parameter,
                    p.image,
                    not (refused or stale),
                    (*refused, *stale),
                    history,
                )
            )
    return sorted(found, key=lambda c: (c.region, c.channel, c.platform, c.arch, c.k8s_version))


def status_lines(images: Sequence[ChannelImage], history: int = 5) -> list[str]:
    """The text report: one line per channel image, its newest ``history`` versions under it."""
    if not images:
        return ["no channel parameters found"]
    lines = []
    for c in images:
        state = "verified" if c.verified else f"NOT VERIFIED ({'; '.join(c.reasons)})"
        lines.append(
            f"{c.region}  {c.channel:<10} {c.platform}/{c.arch}/{c.k8s_version}  {c.image}  {state}"
        )
        for v in c.history[:history]:
            lines.append(f"    v{v.version}  {v.image}  {v.note}")
        if len(c.history) > history:
            lines.append(f"    … {len(c.history) - history} older version(s) (--json lists all)")
    return lines
