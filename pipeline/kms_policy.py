"""The KMS keys of shared images (pure): the key policy ``invoke setup`` gives the image key, and
whether a key (its metadata, key policy and grants, as read) lets a consumer account launch an
image whose snapshots it encrypts, with the statement that would fix it when not.

What a consumer needs, as AWS documents for sharing encrypted AMIs and snapshots:
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html and
https://docs.aws.amazon.com/ebs/latest/userguide/share-kms-key.html
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# What EBS does with the key on the consumer's behalf when the consumer launches the image.
CONSUMER_ACTIONS: tuple[str, ...] = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
)
# The actions written into a fixing statement (ReEncrypt* covers ReEncryptFrom and ReEncryptTo).
STATEMENT_ACTIONS: tuple[str, ...] = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncrypt*",
)
CONSUMER_SID = "EbsUseByReleaseAccounts"
IMAGE_KEY_ALIAS = "alias/eks-cis-ami-pipeline-images"
AWS_EBS_ALIAS = "alias/aws/ebs"
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):([0-9]{12}):(key|alias)/(.+)$")
_PRINCIPAL_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iam::([0-9]{12}):")
# Condition keys the evaluation knows the value of, for a consumer launching through EC2.
_KNOWN_KEYS = frozenset(
    {
        "kms:calleraccount",
        "kms:viaservice",
        "kms:grantisforawsresource",
        "aws:principalaccount",
    }
)


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """A KMS key as read (DescribeKey, GetKeyPolicy, ListGrants)."""

    arn: str
    manager: str  # CUSTOMER or AWS
    state: str  # Enabled, Disabled, PendingDeletion, PendingImport, ...
    spec: str = "SYMMETRIC_DEFAULT"
    usage: str = "ENCRYPT_DECRYPT"
    policy: Mapping[str, Any] | None = None
    # (grantee principal, operations) of each grant
    grants: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)

    @property
    def region(self) -> str | None:
        return key_region(self.arn)


def key_region(key: str) -> str | None:
    """The region of a key or alias ARN; None for a key ID or ``alias/...`` (the caller's)."""
    found = _KEY_ARN.match(key)
    return found.group(1) if found else None


def is_aws_ebs_key(key: str | None) -> bool:
    """Whether ``key`` names the AWS-managed EBS key (or no key: the account default)."""
    return not key or key == AWS_EBS_ALIAS or key.endswith(":alias/aws/ebs")


def consumer_statement(accounts: Sequence[str], region: str) -> dict[str, Any]:
    """The key-policy statement that lets ``accounts`` use the key through EC2 in ``region``
    only (``kms:ViaService``, ``kms:CallerAccount``): what EBS needs to launch a shared image."""
    listed: str | list[str] = accounts[0] if len(accounts) == 1 else sorted(accounts)
    principals: str | list[str] = (
        f"arn:aws:iam::{accounts[0]}:root"
        if len(accounts) == 1
        else [f"arn:aws:iam::{a}:root" for a in sorted(accounts)]
    )
    return {
        "Sid": CONSUMER_SID,
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": list(STATEMENT_ACTIONS),
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:ViaService": f"ec2.{region}.amazonaws.com",
                "kms:CallerAccount": listed,
            }
        },
    }


def image_key_policy(owner: str, accounts: Sequence[str], region: str) -> dict[str, Any]:
    """The image key's policy: the owner account administers it (KMS's default statement),
    the release accounts use it through EC2 in its region (``consumer_statement``)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OwnerAccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{owner}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if accounts:
        statements.append(consumer_statement(accounts, region))
    return {"Version": "2012-10-17", "Id": "eks-cis-ami-pipeline-images", "Statement": statements}


def fix_text(account: str, region: str) -> str:
    """One-line JSON of the statement that admits ``account`` (for a refusal line: no Sid, the
    account ID as the principal, which KMS stores as its root ARN)."""
    statement = consumer_statement([account], region)
    statement.pop("Sid")
    statement["Principal"] = {"AWS": account}
    return json.dumps(statement, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _principal_matches(principal: Any, account: str) -> bool:
    """Whether a statement's Principal covers the account (its root, any of its principals,
    or everyone)."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    for item in _as_list(principal.get("AWS")):
        text = str(item)
        if text in {"*", account}:
            return True
        found = _PRINCIPAL_ACCOUNT.match(text)
        if found and found.group(1) == account:
            return True
    return False


def _action_matches(actions: Any, wanted: str) -> bool:
    return any(fnmatch.fnmatchcase(wanted.lower(), str(a).lower()) for a in _as_list(actions))


def _context(account: str, region: str, action: str) -> dict[str, list[str]]:
    values = {
        "kms:calleraccount": [account],
        "aws:principalaccount": [account],
        "kms:viaservice": [f"ec2.{region}.amazonaws.com"],
    }
    if action == "kms:CreateGrant":
        values["kms:grantisforawsresource"] = ["true"]
    return values


def _test(operator: str, wanted: list[str], have: list[str] | None) -> bool | None:
    """One condition operator against the request's values; None when it cannot be judged."""
    op = operator
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    qualifier, _, op = op.rpartition(":")
    if have is None:
        return True if if_exists else op.startswith("StringNot")
    if op in {"StringEquals", "StringEqualsIgnoreCase", "Bool"}:
        fold = op != "StringEquals"
        hits = [
            any((h.lower() if fold else h) == (w.lower() if fold else w) for w in wanted)
            for h in have
        ]
    elif op == "StringLike":
        hits = [any(fnmatch.fnmatchcase(h, w) for w in wanted) for h in have]
    elif op == "StringNotEquals":
        hits = [all(h != w for w in wanted) for h in have]
    elif op == "StringNotLike":
        hits = [all(not fnmatch.fnmatchcase(h, w) for w in wanted) for h in have]
    else:
        return None
    return all(hits) if qualifier == "ForAllValues" else any(hits)


def _conditions_hold(condition: Any, context: Mapping[str, list[str]]) -> bool | None:
    """All of a statement's conditions, for this request: True, False, or None (a condition
    the check cannot judge: an operator or key it does not know)."""
    if not condition:
        return True
    if not isinstance(condition, Mapping):
        return None
    verdict: bool | None = True
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            return None
        for key, wanted in tests.items():
            name = str(key).lower()
            if name not in _KNOWN_KEYS:
                return None
            ok = _test(str(operator), [str(w) for w in _as_list(wanted)], context.get(name))
            if ok is None:
                return None
            if not ok:
                verdict = False
    return verdict


def admission(facts: KeyFacts, account: str, region: str) -> str | None:
    """Why the key does not let ``account`` use it through EC2 in ``region`` (None: it does).

    Each action EBS needs (``CONSUMER_ACTIONS``) must be allowed to the account by a key-policy
    statement (Principal the account, one of its principals or ``*``; every condition holding
    for a call from that account through ec2.<region>) or a grant to a principal of that
    account, and denied by no statement. A statement whose condition the check cannot judge,
    or a NotPrincipal/NotAction statement, counts as not allowing (fail closed)."""
    statements = _as_list((facts.policy or {}).get("Statement"))
    missing: list[str] = []
    for action in CONSUMER_ACTIONS:
        context = _context(account, region, action)
        allowed = False
        for st in statements:
            if not isinstance(st, Mapping) or "NotPrincipal" in st or "NotAction" in st:
                continue
            if not _principal_matches(st.get("Principal"), account):
                continue
            if not _action_matches(st.get("Action"), action):
                continue
            holds = _conditions_hold(st.get("Condition"), context)
            if st.get("Effect") == "Deny" and holds is not False:
                return f"a Deny statement ({st.get('Sid') or 'no Sid'}) covers {action}"
            if st.get("Effect") == "Allow" and holds:
                allowed = True
        if not allowed and not _granted(facts.grants, account, action):
            missing.append(action)
    if len(missing) == len(CONSUMER_ACTIONS):
        return "no statement or grant for it"
    if missing:
        return f"nothing allows {', '.join(missing)}"
    return None


def _granted(grants: Iterable[tuple[str, Sequence[str]]], account: str, action: str) -> bool:
    operation = action.removeprefix("kms:")
    for grantee, operations in grants:
        found = _PRINCIPAL_ACCOUNT.match(grantee)
        mine = grantee == account or (found is not None and found.group(1) == account)
        if mine and operation in operations:
            return True
    return False


def open_to_everyone(facts: KeyFacts) -> bool:
    """Whether an Allow statement with Principal ``*`` has no condition at all (any account)."""
    for st in _as_list((facts.policy or {}).get("Statement")):
        if not isinstance(st, Mapping) or st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        everyone = principal == "*" or (
            isinstance(principal, Mapping)
            and "*" in [str(p) for p in _as_list(principal.get("AWS"))]
        )
        if everyone and not st.get("Condition"):
            return True
    return False


def key_problems(facts: KeyFacts, *, region: str, accounts: Sequence[str], what: str) -> list[str]:
    """Why ``facts`` cannot encrypt ``what`` (e.g. ``the copy in eu-west-1``) for sharing with
    ``accounts`` in ``region``: one line per problem, each saying how to fix it."""
    found: list[str] = []
    name = f"{what}: key {facts.arn}"
    if facts.manager != "CUSTOMER":
        if not accounts:
            return found  # an AWS-managed key encrypts a copy that is not shared well enough
        found.append(
            f"{name} is AWS-managed ({AWS_EBS_ALIAS}): AWS refuses to share snapshots it "
            "encrypts; run `invoke setup --image-keys` or set pipeline.release.kms_keys."
            f"{region} to a customer-managed key"
        )
        return found
    if facts.state == "PendingDeletion":
        found.append(f"{name} is pending deletion: `aws kms cancel-key-deletion` or another key")
    elif facts.state != "Enabled":
        found.append(f"{name} is {facts.state}: `aws kms enable-key --key-id {facts.arn}`")
    if facts.region is not None and facts.region != region:
        found.append(
            f"{name} is in {facts.region}, not {region}: set pipeline.release.kms_keys.{region} "
            f"to a key of {region}"
        )
    if facts.spec != "SYMMETRIC_DEFAULT" or facts.usage != "ENCRYPT_DECRYPT":
        found.append(f"{name} is {facts.spec}/{facts.usage}, not SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT")
    for account in accounts:
        why = admission(facts, account, region)
        if why is not None:
            found.append(
                f"{name} does not admit {account} ({why}); add: {fix_text(account, region)}"
            )
    return found
