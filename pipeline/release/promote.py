"""``invoke promote``: publish a verified AMI to a channel in one or more regions, shared with
accounts; refuse anything whose signed validation record does not hold up. Tags prove nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline import channels
from pipeline.aws import AwsClients, boundary, is_aws_endpoint, s3
from pipeline.aws import release as aws
from pipeline.aws.account import caller_account
from pipeline.aws.images import Image
from pipeline.catalog import Platform
from pipeline.errors import AwsError, ConfigError, GateBlocked
from pipeline.evidence import store
from pipeline.evidence.record import Verification
from pipeline.evidence.revocation import copy_description, is_copy_of, revocation
from pipeline.evidence.trust import (
    BUILT_NAME,
    K8S_TAG,
    policy_sha,
    refusals,
    signed_kubernetes_version,
    signed_platform,
)
from pipeline.evidence.verify import key_fingerprint, verify_ami
from pipeline.release import keys
from pipeline.tags import (
    CHANNEL_TAG_PREFIX,
    COPIED_FROM_TAG,
    COPIED_TAG_KEYS,
    COPY_TAG_PREFIX,
    MANAGED_TAG,
    MANAGED_VALUE,
    REVOKED_TAG,
    key_matches,
)

Echo = Callable[[str], None]
Verifier = Callable[[AwsClients, str], Verification]


@dataclass(frozen=True)
class PromoteRequest:
    """What ``invoke promote`` was asked (flags already split)."""

    ami: str
    channel: str | None = None
    regions: tuple[str, ...] = ()  # empty: the configured regions, else the home region
    accounts: tuple[str, ...] = ()
    dry_run: bool = False
    evidence_bucket: str | None = None
    public_key_pem: bytes | None = None
    signing_key: str | None = None  # the trusted KMS key (default: the one invoke setup made)
    pinned_key: str | None = None  # sha256:<hex> a --public-key must have (signing_key_sha256)


@dataclass(frozen=True)
class RegionOutcome:
    region: str
    image_id: str | None  # None in a dry run for a copy not made yet
    parameter: str
    copied: bool  # a new copy was (or, dry run, would be) made
    previous: str | None  # the channel's image before this promotion
    updated: bool  # the parameter was (or, dry run, would be) set to this image
    version: int | None  # the new parameter version (None when unchanged or in a dry run)
    shared_with: tuple[str, ...]  # accounts newly granted (launch or snapshot) here
    # accounts that, after sharing, EC2 does not show the image and its snapshots to
    unseen: tuple[str, ...] = ()


@dataclass(frozen=True)
class Promotion:
    ami: str
    channel: str
    regions: tuple[RegionOutcome, ...]
    dry_run: bool

    @property
    def changed(self) -> bool:
        return any(r.copied or r.updated or r.shared_with for r in self.regions)


def default_verifier(request: PromoteRequest) -> Verifier:
    """``pipeline.evidence.verify.verify_ami`` with the request's key, bucket and signing key."""

    def verify(clients: AwsClients, ami: str) -> Verification:
        return verify_ami(
            clients,
            ami,
            public_key_pem=request.public_key_pem,
            evidence_bucket=request.evidence_bucket,
            signing_key=request.signing_key,
        )

    return verify


def copy_tags(source: Mapping[str, str], home: str, ami: str) -> dict[str, str]:
    """The tags a regional copy carries, given at its creation: the source's name, provenance,
    ownership and validation tags (``COPIED_TAG_KEYS``, pointer tags included; never its
    release state, nor tags the pipeline does not write), plus its origin. The promote role may
    write these keys only when it creates the copy (policies/iam/promote.json)."""
    kept = {k: v for k, v in source.items() if key_matches(k, COPIED_TAG_KEYS)}
    return {**kept, MANAGED_TAG: MANAGED_VALUE, COPIED_FROM_TAG: f"{home}/{ami}"}


def channel_tags(channel: str, when: datetime, who: str, previous: str | None) -> dict[str, str]:
    """The promotion record on an image (tag values are at most 256 characters)."""
    base = f"{CHANNEL_TAG_PREFIX}{channel}:"
    return {
        f"{base}at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{base}by": who[:256],
        f"{base}previous": previous or "none",
    }


def history_note(
    image: str, home: str, ami: str, channel: str, when: datetime, who: str, previous: str | None
) -> str:
    """The parameter version's Description: the promotion record a revoke can read back."""
    return (
        f"promoted {image} (from {home}/{ami}) to {channel} at {when:%Y-%m-%dT%H:%M:%SZ} "
        f"by {who}; previous {previous or 'none'}"
    )


def run_promote(
    request: PromoteRequest,
    release: channels.ReleaseSettings,
    clients: AwsClients,
    now: datetime,
    echo: Echo,
    *,
    policy_dir: Path,
    verify: Verifier | None = None,
    known_regions: Sequence[str] | None = None,
) -> Promotion:
    """Verify the AMI's signed record, then copy, share and publish it (see the module doc).

    Calls ec2:DescribeImages, ec2:CopyImage, ec2:CreateTags, ec2:Describe/ModifyImageAttribute,
    ec2:Describe/ModifySnapshotAttribute, ssm:GetParameter, ssm:PutParameter,
    ssm:DeleteParameter (undoing a write a revoke overtook), s3:PutObject (the release history),
    sts:GetCallerIdentity and whatever the verifier calls. Raises ConfigError (exit 2) for bad
    input, GateBlocked (exit 3) with every reason for a refusal, AwsError (exit 1).
    """
    ami = channels.check_ami(request.ami)
    channel = release.channel(request.channel)
    home = clients.region
    regions = channels.split_regions(
        request.regions or release.regions or (home,),
        known_regions if known_regions is not None else aws.known_regions(),
    )
    accounts = channels.split_accounts(request.accounts or release.accounts)
    verify = verify or default_verifier(request)
    with boundary("promote"):
        source = aws.owned_image(clients, ami)
        if source is None:
            raise ConfigError(f"--ami {ami}: no such AMI in {home}")
        image = source.image
        tagged_k8s = image.tags.get(K8S_TAG, "")
        arch = image.architecture or ""  # EC2's own answer (and bound by the record's subject)
        verification = verify(clients, ami)
        platform = signed_platform(verification) or image.platform
        signed_k8s = signed_kubernetes_version(verification)
        k8s = signed_k8s or tagged_k8s  # the channel path uses what the record signed
        problems = refusals(
            verification,
            ami=ami,
            region=home,
            now=now,
            max_age_days=release.max_age_days,
            policy_sha=policy_sha(policy_dir, platform),
            min_level=channel.min_level,
            real_endpoint=is_aws_endpoint(clients.endpoint_url),
            revoked=revocation(clients, release.parameter_prefix, image),
        )
        problems += _pin_refusals(request)
        if not isinstance(platform, Platform) or not channels.K8S_VERSION.fullmatch(k8s):
            problems.append("not built by this pipeline: no platform or Kubernetes version")
        elif image.platform is not None and image.platform is not platform:
            problems.append(
                f"platform tag {image.platform.value} disagrees with the record ({platform.value})"
            )
        named = BUILT_NAME.match(image.name or "")  # the name no tag can change
        if named and named.group(1) != k8s:
            problems.append(
                f"the AMI's name {image.name} says Kubernetes {named.group(1)}, not {k8s}: its "
                "version tag was changed before validation"
            )
        if signed_k8s and tagged_k8s != signed_k8s:
            problems.append(
                f"Kubernetes version tag {tagged_k8s or '(none)'} disagrees with the record "
                f"({signed_k8s})"
            )
        if problems:
            raise GateBlocked(
                f"--ami {ami}: not promoted", problems=[f"--ami {ami}: {p}" for p in problems]
            )
        assert isinstance(platform, Platform)
        when = f"{verification.time_verified:%Y-%m-%dT%H:%M:%SZ}"
        echo(f"{ami}: record {verification.record_uri} verified ({verification.level}, {when})")
        name = channels.parameter_name(release.parameter_prefix, platform, arch, k8s, channel.name)
        who = aws.caller_arn(clients)
        step = _Step(request, release, source, channel.name, name, who, now, echo)
        # Every key involved, before anything is copied or shared (dry run too).
        targets = [(r, step.existing(clients, aws.in_region(clients, r))) for r in regions]
        plan = keys.preflight(clients, source, targets, accounts, release)
        if plan.problems:
            raise GateBlocked(f"--ami {ami}: not promoted", problems=plan.problems)
        if plan.keys:
            echo(f"{ami}: {len(plan.keys)} KMS key(s) checked: {', '.join(sorted(plan.keys))}")
        outcomes = [step.region(clients, r, accounts) for r in regions]
    unseen = [f"{o.region}: {', '.join(o.unseen)}" for o in outcomes if o.unseen]
    if unseen:
        raise AwsError(f"{ami}: shared, but EC2 does not show it to {'; '.join(unseen)}")
    result = Promotion(ami, channel.name, tuple(outcomes), request.dry_run)
    if not result.changed:
        echo(f"{ami} is already the {channel.name} image in {', '.join(regions)}: nothing to do")
    return result


def _pin_refusals(request: PromoteRequest) -> list[str]:
    """An offline ``--public-key`` must be the pinned signing key (whoever hands over the PEM
    otherwise decides what verifies)."""
    if request.public_key_pem is None or request.pinned_key is None:
        return []
    try:
        got = key_fingerprint(request.public_key_pem)
    except (ValueError, TypeError):
        return ["--public-key: not a PEM public key"]
    if got == request.pinned_key:
        return []
    return [f"--public-key is {got}, not the pinned signing key {request.pinned_key}"]


@dataclass(frozen=True)
class _Step:
    """Promotion of one verified AMI, region by region."""

    request: PromoteRequest
    release: channels.ReleaseSettings
    source: aws.OwnedImage
    channel: str
    parameter: str
    who: str
    now: datetime
    echo: Echo

    @property
    def ami(self) -> str:
        return self.source.image.id

    def region(self, home: AwsClients, region: str, accounts: Sequence[str]) -> RegionOutcome:
        dry = self.request.dry_run
        rc = aws.in_region(home, region)
        say = f"{'would ' if dry else ''}"
        target, copied = self._target(home, rc)
        if target is None:  # dry run, copy not made yet
            self.echo(f"{region}: would copy {self.ami} (encrypted), share, set {self.parameter}")
            current = aws.get_parameter(rc, self.parameter)
            return RegionOutcome(
                region, None, self.parameter, True, current, True, None, tuple(accounts)
            )
        self._refuse_if_revoked(home, rc, target.image, "after the copy")
        shared = self._share(rc, target, accounts)
        unseen = () if dry else keys.consumer_view(rc, target, accounts, self.echo)
        current = aws.get_parameter(rc, self.parameter)
        version = None
        updated = current != target.image.id
        if updated:
            note = history_note(
                target.image.id, home.region, self.ami, self.channel, self.now, self.who, current
            )
            if not dry:
                self._refuse_if_revoked(home, rc, target.image, f"before setting {self.parameter}")
                version = aws.put_parameter(rc, self.parameter, target.image.id, note)
                aws.wait_parameter(rc, self.parameter, target.image.id, echo=self.echo)
                self._undo_if_revoked(home, rc, target.image, current)
                aws.tag(
                    rc,
                    [target.image.id],
                    channel_tags(self.channel, self.now, self.who, current),
                )
            self.echo(
                f"{region}: {say}set {self.parameter} = {target.image.id} "
                f"(was {current or 'unset'}){f', version {version}' if version else ''}"
            )
        else:
            self.echo(f"{region}: {self.parameter} already {target.image.id}")
        return RegionOutcome(
            region, target.image.id, self.parameter, copied, current, updated, version, shared,
            unseen,
        )  # fmt: skip

    def _record_copy(self, home: AwsClients, region: str, copy_id: str) -> None:
        """Record the copy in the evidence store's release history (write-once, before it is
        published: a copy that cannot be recorded is not published), where revoke finds it
        when its tags are removed."""
        account = caller_account(home)
        bucket = self.request.evidence_bucket or store.default_bucket(account, home.region)
        key = store.release_key(account, home.region, self.ami, region, copy_id)
        body = json.dumps(
            {"source": f"{home.region}/{self.ami}", "copy": f"{region}/{copy_id}", "by": self.who}
        ).encode()
        s3.put_new_object(home, bucket, key, body, account, "application/json")
        self.echo(f"{region}: copy {copy_id} recorded in s3://{bucket}/{key}")

    def _refuse_if_revoked(self, home: AwsClients, rc: AwsClients, image: Image, when: str) -> None:
        """GateBlocked (exit 3) when ``invoke revoke`` revoked the source (or this copy) since
        it was verified: the revocation record in SSM is re-read, the tags may be stale."""
        prefix = self.release.parameter_prefix
        why = revocation(home, prefix, self.source.image)
        why = why or (revocation(rc, prefix, image) if image.id != self.ami else None)
        if why is not None:
            raise GateBlocked(
                f"--ami {self.ami}: not promoted",
                problems=[f"--ami {self.ami}: revoked while being promoted ({when}): {why}"],
            )

    def _undo_if_revoked(
        self, home: AwsClients, rc: AwsClients, image: Image, previous: str | None
    ) -> None:
        """A revoke that recorded the revocation between the check and the write may have read
        the parameters before this write: read the record again and, if it is there, put the
        previous value back (or delete the parameter) and refuse. Revoke records first and
        reads the parameters after; promote writes first and reads the record after: one of
        the two always sees the other."""
        try:
            self._refuse_if_revoked(home, rc, image, f"after setting {self.parameter}")
        except GateBlocked:
            if previous is None:
                aws.delete_parameter(rc, self.parameter)
            else:
                note = f"promotion of {image.id} undone: revoked while being promoted"
                aws.put_parameter(rc, self.parameter, previous, note)
            self.echo(f"{rc.region}: {self.parameter} put back to {previous or '(deleted)'}")
            raise

    def existing(self, home: AwsClients, rc: AwsClients) -> aws.OwnedImage | None:
        """The image already in ``rc``'s region: the source at home, else the newest copy."""
        if rc.region == home.region:
            return self.source
        origin = f"{home.region}/{self.ami}"
        copies = [
            c
            for c in aws.owned_images(rc, [{"Name": f"tag:{COPIED_FROM_TAG}", "Values": [origin]}])
            if c.image.state in {"available", "pending"}
            and REVOKED_TAG not in c.image.tags
            # Only EC2's own record of the copy's source (SourceImageId) makes an image the
            # copy: tags, name and description are anyone's with ec2:RegisterImage/CreateTags.
            and is_copy_of(c.image, origin)
        ]
        return sorted(copies, key=lambda c: c.image.creation_date or "")[-1] if copies else None

    def _target(self, home: AwsClients, rc: AwsClients) -> tuple[aws.OwnedImage | None, bool]:
        """The image to publish in ``rc``'s region: the source, an existing copy or a new one."""
        if rc.region == home.region:
            return self.source, False
        origin = f"{home.region}/{self.ami}"
        copy = self.existing(home, rc)
        if copy is not None:
            aws.wait_available(rc, [copy.image.id], echo=self.echo)
            self.echo(f"{rc.region}: copy {copy.image.id} of {self.ami} exists")
            return aws.owned_image(rc, copy.image.id) or copy, False
        if self.request.dry_run:
            return None, True
        image = self.source.image
        wanted = copy_tags(image.tags, home.region, self.ami)
        copy_id = aws.copy_image(
            rc,
            source_ami=self.ami,
            source_region=home.region,
            name=image.name or self.ami,
            description=copy_description(origin, image.description),
            kms_key_id=self.release.kms_keys.get(rc.region),
            client_token=f"promote-{self.ami}-{rc.region}",
            tags=wanted,
        )
        self.echo(f"{rc.region}: copying {self.ami} as {copy_id} (encrypted); waiting")
        self._record_copy(home, rc.region, copy_id)
        aws.wait_available(rc, [copy_id], echo=self.echo)
        aws.tag(home, [self.ami], {f"{COPY_TAG_PREFIX}{rc.region}": copy_id})
        made = aws.owned_image(rc, copy_id)
        if made is None:
            raise ConfigError(f"{rc.region}: copy {copy_id} of {self.ami} vanished")
        missing = {k: v for k, v in wanted.items() if made.image.tags.get(k) != v}
        if missing and is_aws_endpoint(rc.endpoint_url):
            # The promote role may write these keys (cis:* among them) only at creation.
            raise AwsError(
                f"{rc.region}: copy {copy_id} of {self.ami} lacks tags given at its creation: "
                f"{', '.join(sorted(missing))}"
            )
        if missing:  # the local AWS (moto) drops the tags given to CopyImage
            aws.tag(rc, [copy_id, *made.snapshots], missing)
            made = aws.owned_image(rc, copy_id) or made
        return made, True

    def _share(
        self, rc: AwsClients, target: aws.OwnedImage, accounts: Sequence[str]
    ) -> tuple[str, ...]:
        """Grant launch and snapshot create-volume permission; the accounts newly granted."""
        if not accounts:
            return ()
        ami = target.image.id
        new: set[str] = set()
        launch = set(accounts) - aws.launch_permissions(rc, ami)
        if launch and not self.request.dry_run:
            aws.add_launch_permission(rc, ami, launch)
        new |= launch
        for snapshot in target.snapshots:
            volume = set(accounts) - aws.volume_permissions(rc, snapshot)
            if volume and not self.request.dry_run:
                aws.add_volume_permission(rc, snapshot, volume)
            new |= volume
        verb = "would share" if self.request.dry_run else "shared"
        for account in sorted(new):
            self.echo(f"{rc.region}: {verb} {ami} and its snapshots with {account}")
        return tuple(sorted(new))


def release_config(pipeline_config: Mapping[str, object]) -> channels.ReleaseSettings:
    """``ReleaseSettings`` from the ``pipeline`` section of invoke.yaml (regions checked against
    botocore's list); the default minimum level of a channel is the project's build level."""
    section = pipeline_config.get("release") or {}
    if not isinstance(section, Mapping):
        raise ConfigError("invoke.yaml: $.pipeline.release: expected a mapping")
    level = channels.level_of(pipeline_config.get("level", 2))
    return channels.release_settings(section, build_level=level, known_regions=aws.known_regions())


def read_public_key(path: str | None) -> bytes | None:
    """The PEM bytes of ``--public-key``; ConfigError naming the flag when unreadable."""
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--public-key {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN PUBLIC KEY-----" not in data:
        raise ConfigError(f"--public-key {path}: not a PEM public key")
    return data
