"""EC2's tag authorization, as a real account would apply it, under one job policy (scenario
``iam: {ec2_policy: FILE}``): the local AWS otherwise enforces no IAM, so a build policy that
cannot tag what Packer creates (a network interface, a copy's snapshots) passed here and failed
on AWS (issue 21).

Judged, with ``pipeline.iam_eval.decide``: each create call that EC2 tags on create
(RunInstances, CreateSecurityGroup, CreateKeyPair, CreateImage, CopyImage), on every resource
type it creates, with the tags its TagSpecifications give that type in the request (and
ec2:CreateTags with ``ec2:CreateAction`` for each tagged type); and ec2:CreateTags of existing
resources, with the tags they carry (``aws:ResourceTag``). A refusal is EC2's
``UnauthorizedOperation``. Other calls, other services: not judged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pipeline.errors import ConfigError
from pipeline.iam_eval import Request, decide, tag_context

ROOT = Path(__file__).resolve().parents[2]
# What each create call makes (the ARN types IAM authorizes the call and its tags on).
CREATES: Mapping[str, tuple[str, ...]] = {
    "RunInstances": ("instance", "network-interface", "volume"),
    "CreateSecurityGroup": ("security-group",),
    "CreateKeyPair": ("key-pair",),
    "CreateImage": ("image", "snapshot"),
    "CopyImage": ("image", "snapshot"),
}
_PREFIXES = {
    "i-": "instance",
    "eni-": "network-interface",
    "vol-": "volume",
    "sg-": "security-group",
    "key-": "key-pair",
    "ami-": "image",
    "snap-": "snapshot",
}
_SPEC = re.compile(r"TagSpecification\.(\d+)\.(ResourceType|Tag\.(\d+)\.(Key|Value))")
_TAG = re.compile(r"Tag\.(\d+)\.(Key|Value)")
_RESOURCE = re.compile(r"ResourceId\.\d+")


@cache
def load(path: str) -> dict[str, Any]:
    """The policy document (a path relative to the repository, or absolute)."""
    file = Path(path) if Path(path).is_absolute() else ROOT / path
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"scenario iam.ec2_policy {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"scenario iam.ec2_policy {path}: $: not a policy document")
    return doc


def _arn(kind: str, resource_id: str, region: str, account: str) -> str:
    owner = "" if kind in ("image", "snapshot") else account
    return f"arn:aws:ec2:{region}:{owner}:{kind}/{resource_id}"


def _tag_specs(form: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """{resource type: tags} of a create call's TagSpecification.N members."""
    kinds: dict[str, str] = {}
    pairs: dict[tuple[str, str], dict[str, str]] = {}
    for name, value in form.items():
        found = _SPEC.fullmatch(name)
        if found is None:
            continue
        if found.group(2) == "ResourceType":
            kinds[found.group(1)] = value
        else:
            pairs.setdefault((found.group(1), found.group(3)), {})[found.group(4)] = value
    out: dict[str, dict[str, str]] = {}
    for (spec, _), pair in sorted(pairs.items()):
        if spec in kinds and "Key" in pair:
            out.setdefault(kinds[spec], {})[pair["Key"]] = pair.get("Value", "")
    for kind in kinds.values():
        out.setdefault(kind, {})
    return out


def requests(
    operation: str,
    form: Mapping[str, str],
    region: str,
    account: str,
    resource_tags: Callable[[str], Mapping[str, str]],
) -> list[Request]:
    """The IAM requests EC2 authorizes for one call (see the module's docstring)."""
    out: list[Request] = []
    if operation in CREATES:
        given = _tag_specs(form)
        every = {k: v for tags in given.values() for k, v in tags.items()}
        for kind in CREATES[operation]:
            arn = _arn(kind, "*", region, account)
            out.append(Request(f"ec2:{operation}", arn, tag_context(every)))
            if given.get(kind):
                context = tag_context(given[kind], create_action=operation)
                out.append(Request("ec2:CreateTags", arn, context))
    elif operation == "CreateTags":
        tags: dict[str, dict[str, str]] = {}
        for name, value in form.items():
            found = _TAG.fullmatch(name)
            if found:
                tags.setdefault(found.group(1), {})[found.group(2)] = value
        sent = {t["Key"]: t.get("Value", "") for _, t in sorted(tags.items()) if "Key" in t}
        for name, resource_id in sorted(form.items()):
            if not _RESOURCE.fullmatch(name):
                continue
            kind = next((k for p, k in _PREFIXES.items() if resource_id.startswith(p)), "unknown")
            context = tag_context(sent, resource_tags=resource_tags(resource_id))
            out.append(Request("ec2:CreateTags", _arn(kind, resource_id, region, account), context))
    return out


def refusal(
    policy_path: str | None,
    operation: str | None,
    body: bytes,
    region: str,
    account: str,
    resource_tags: Callable[[str], Mapping[str, str]],
) -> str | None:
    """EC2's UnauthorizedOperation message for this call under the policy, or None."""
    if policy_path is None or operation not in (*CREATES, "CreateTags"):
        return None
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    policy = [load(policy_path)]
    for request in requests(operation, form, region, account, resource_tags):
        if not decide(policy, request).allowed:
            return (
                f"You are not authorized to perform this operation. User is not authorized to "
                f"perform: {request.action} on resource: {request.resource} (local AWS: "
                f"{policy_path})"
            )
    return None
