"""Which IAM actions a set of identity-policy documents allows: the part of IAM's evaluation the
scan role check needs (Allow/Deny, Action/NotAction with wildcards, explicit Deny wins), pure.

Decisions where IAM needs facts we do not have (documented in pipeline/localaws/README.md):
``Resource``/``NotResource`` are not evaluated (every statement applies to some resource, and
the actions the scan needs are granted on ``*``); a ``Condition`` is assumed to hold, for Allow
(the action is granted, reported in ``Decision.conditional``) and for Deny (fail closed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote

# What the SSM agent needs to register and take commands (from AmazonSSMManagedInstanceCore).
SSM_CORE_ACTIONS: tuple[str, ...] = (
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:GetMessages",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:SendReply",
)
# What Inspector's CIS plugin on the instance needs (AmazonInspector2ManagedCisPolicy).
CIS_SESSION_ACTIONS: tuple[str, ...] = (
    "inspector2:StartCisSession",
    "inspector2:SendCisSessionHealth",
    "inspector2:SendCisSessionTelemetry",
    "inspector2:StopCisSession",
)
SCAN_ROLE_ACTIONS: tuple[str, ...] = SSM_CORE_ACTIONS + CIS_SESSION_ACTIONS

PolicyDocument = Mapping[str, Any] | str


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on each action asked about."""

    allowed: frozenset[str]  # allowed and not explicitly denied
    denied: frozenset[str]  # explicitly denied (whatever else allows them)
    conditional: frozenset[str]  # allowed, but only by statements with a Condition
    missing: tuple[str, ...]  # asked about and not allowed, in the order asked

    def allows_all(self) -> bool:
        return not self.missing


@dataclass(frozen=True, slots=True)
class _Statement:
    effect: str  # Allow | Deny
    patterns: tuple[str, ...]
    negated: bool  # NotAction
    conditional: bool

    def covers(self, action: str) -> bool:
        hit = any(_pattern(p).fullmatch(action) for p in self.patterns)
        return hit != self.negated


def parse_document(document: PolicyDocument) -> Mapping[str, Any]:
    """A policy document as a mapping: IAM returns it URL-encoded JSON, botocore usually decodes
    it. Anything unreadable is an empty document (it grants nothing)."""
    if isinstance(document, Mapping):
        return document
    for text in (document, unquote(document)):
        try:
            value = json.loads(text)
        except ValueError:
            continue
        return value if isinstance(value, Mapping) else {}
    return {}


def evaluate(documents: Iterable[PolicyDocument], actions: Iterable[str]) -> Decision:
    """Decide each of ``actions`` against all statements of ``documents`` (any order)."""
    statements = [s for doc in documents for s in _statements(parse_document(doc))]
    allowed: set[str] = set()
    denied: set[str] = set()
    conditional: set[str] = set()
    missing: list[str] = []
    for action in dict.fromkeys(actions):
        allows = [s for s in statements if s.effect == "Allow" and s.covers(action)]
        if any(s.effect == "Deny" and s.covers(action) for s in statements):
            denied.add(action)
        elif allows:
            allowed.add(action)
            if all(s.conditional for s in allows):
                conditional.add(action)
        if action not in allowed:
            missing.append(action)
    return Decision(frozenset(allowed), frozenset(denied), frozenset(conditional), tuple(missing))


def allows(documents: Iterable[PolicyDocument], action: str) -> bool:
    """True when ``documents`` allow ``action`` (and nothing denies it)."""
    return evaluate(documents, [action]).allows_all()


def _statements(document: Mapping[str, Any]) -> list[_Statement]:
    raw = document.get("Statement", [])
    items = [raw] if isinstance(raw, Mapping) else raw if isinstance(raw, list) else []
    found = []
    for item in items:
        statement = _statement(item) if isinstance(item, Mapping) else None
        if statement is not None:
            found.append(statement)
    return found


def _statement(item: Mapping[str, Any]) -> _Statement | None:
    """One statement, or None if IAM would reject it (it then grants and denies nothing)."""
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny") or ("Action" in item) == ("NotAction" in item):
        return None
    negated = "NotAction" in item
    value = item["NotAction" if negated else "Action"]
    patterns = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if not patterns or not all(isinstance(p, str) for p in patterns):
        return None
    return _Statement(str(effect), tuple(patterns), negated, bool(item.get("Condition")))


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    """IAM's action wildcards: ``*`` any run, ``?`` one character; case-insensitive, anchored."""
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
