"""``invoke setup --image-keys``: one customer-managed symmetric KMS key per release region for
the images' snapshots, whose key policy lets the release accounts use it through EC2, recorded
in ``pipeline.release.kms_keys``; idempotent, ``dry_run`` plans. A key the user brought
(configured, not the pipeline's alias) is only checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.aws import AwsClients, boundary, image_keys
from pipeline.aws.account import caller_account
from pipeline.aws.release import in_region
from pipeline.errors import GateBlocked
from pipeline.kms_policy import (
    CONSUMER_SID,
    IMAGE_KEY_ALIAS,
    KeyFacts,
    consumer_statement,
    image_key_policy,
    is_aws_ebs_key,
    key_problems,
)
from pipeline.tags import MANAGED_TAG, MANAGED_VALUE, PIPELINE_TAG

TAGS = {MANAGED_TAG: MANAGED_VALUE, PIPELINE_TAG: "eks-cis-ami-pipeline"}
Echo = Callable[[str], None]


@dataclass(frozen=True)
class ImageKeys:
    """What ``run_image_keys`` did (or, dry run, would do)."""

    keys: Mapping[str, str]  # region -> the pipeline's key ARN (not a brought key; absent: a
    # key a dry run would create)
    changes: tuple[str, ...]
    dry_run: bool

    def unrecorded(self, configured: Mapping[str, str]) -> dict[str, str]:
        """The keys ``pipeline.release.kms_keys`` does not name yet."""
        return {r: k for r, k in self.keys.items() if configured.get(r) != k}


def run_image_keys(
    home: AwsClients,
    regions: Sequence[str],
    accounts: Sequence[str],
    configured: Mapping[str, str],
    *,
    dry_run: bool = False,
    echo: Echo = print,
) -> ImageKeys:
    """Make or check the image key of each of ``regions`` for ``accounts``.

    Calls sts:GetCallerIdentity, kms:DescribeKey, kms:GetKeyPolicy, kms:ListGrants and, unless
    ``dry_run``, kms:CreateKey, kms:CreateAlias, kms:TagResource, kms:PutKeyPolicy (only on the
    pipeline's own key). Raises GateBlocked (exit 3), one line per problem, when a brought key
    (or the pipeline's, after its policy is fixed) cannot serve."""
    with boundary("setup --image-keys"):
        owner = caller_account(home)
        keys: dict[str, str] = {}
        changes: list[str] = []
        problems: list[str] = []
        for region in regions:
            rc = in_region(home, region)
            ours = image_keys.read_key(rc, IMAGE_KEY_ALIAS)
            brought = configured.get(region)
            if _brought(brought, ours):
                assert brought is not None
                facts = image_keys.read_key(rc, brought)
                what = f"{region}: pipeline.release.kms_keys.{region}"
                if facts is None:
                    problems.append(f"{what}: key {brought} not found in {region}")
                    continue
                problems += key_problems(facts, region=region, accounts=accounts, what=what)
                echo(f"setup: {region}: checked your key {facts.arn} for {_who(accounts)}")
                continue
            arn, change = _pipeline_key(rc, ours, owner, accounts, dry_run)
            if arn is not None:
                keys[region] = arn
            if change:
                changes.append(change)
        verb = "plan" if dry_run else "done"
        for change in changes:
            echo(f"setup: {verb}: {change}")
        if problems:
            raise GateBlocked("setup --image-keys: refused", problems=problems)
        if not changes:
            echo(f"setup: image keys: nothing to change in {', '.join(regions)}")
    return ImageKeys(keys, tuple(changes), dry_run)


def _who(accounts: Sequence[str]) -> str:
    return ", ".join(accounts) if accounts else "no release account (pipeline.release.accounts)"


def _brought(configured: str | None, ours: KeyFacts | None) -> bool:
    """Whether the configured key is one the user brought (not the pipeline's alias or key)."""
    if not configured or is_aws_ebs_key(configured) or configured.endswith(IMAGE_KEY_ALIAS):
        return False
    return ours is None or configured not in {ours.arn, ours.arn.rsplit("/", 1)[-1]}


def _pipeline_key(
    rc: AwsClients, facts: KeyFacts | None, owner: str, accounts: Sequence[str], dry_run: bool
) -> tuple[str | None, str | None]:
    """The pipeline's key of ``rc``'s region (made, or its policy fixed, when needed)."""
    region = rc.region
    if facts is None:
        change = f"{region}: create KMS key {IMAGE_KEY_ALIAS} admitting {_who(accounts)}"
        if dry_run:
            return None, change
        policy = image_key_policy(owner, accounts, region)
        return image_keys.create_image_key(rc, IMAGE_KEY_ALIAS, policy, TAGS), change
    statements = list((facts.policy or {}).get("Statement") or [])
    ours = [s for s in statements if isinstance(s, Mapping) and s.get("Sid") == CONSUMER_SID]
    wanted = [consumer_statement(accounts, region)] if accounts else []
    if ours == wanted:  # the release accounts exactly, none that left them
        left = key_problems(facts, region=region, accounts=accounts, what=region)
        if left:
            raise GateBlocked("setup --image-keys: refused", problems=left)
        return facts.arn, None
    others = [s for s in statements if s not in ours]
    policy = {**(facts.policy or {}), "Statement": [*others, *wanted]}
    if not dry_run:
        image_keys.put_key_policy(rc, facts.arn, policy)
        fixed = image_keys.read_key(rc, facts.arn)
        left = key_problems(fixed or facts, region=region, accounts=accounts, what=region)
        if left:
            raise GateBlocked("setup --image-keys: refused", problems=left)
    return facts.arn, f"{region}: key policy of {facts.arn}: admit {_who(accounts)}"


_KMS_LINE = re.compile(r"^(?P<indent>[ ]+)kms_keys:")


def record_in_yaml(text: str, keys: Mapping[str, str]) -> str | None:
    """``text`` (invoke.yaml) with ``pipeline.release.kms_keys`` set to ``keys`` merged into
    what it names; None when the file has no ``kms_keys:`` line under ``release:`` to rewrite
    (the caller prints what to add). Comments and the rest of the file are kept."""
    lines = text.splitlines(keepends=True)
    release_at = next(
        (i for i, line in enumerate(lines) if re.match(r"^[ ]+release:\s*(#.*)?$", line)), None
    )
    if release_at is None:
        return None
    for i in range(release_at + 1, len(lines)):
        found = _KMS_LINE.match(lines[i])
        if not found:
            continue
        indent = found.group("indent")
        end = i + 1
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip(" ")) > len(indent)
        ):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1  # blank lines before the next setting stay
        before = _current(text)
        if before is None:
            return None
        merged = {**before, **keys}
        block = [f"{indent}kms_keys:  # region -> key ARN (`invoke setup --image-keys`)\n"]
        block += [f"{indent}  {r}: {merged[r]}\n" for r in sorted(merged)]
        changed = "".join(lines[:i] + block + lines[end:])
        return changed if _current(changed) == merged else None
    return None


def _current(text: str) -> dict[str, str] | None:
    try:
        data: Any = yaml.safe_load(text) or {}
        found = ((data.get("pipeline") or {}).get("release") or {}).get("kms_keys") or {}
    except (yaml.YAMLError, AttributeError):
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else None
