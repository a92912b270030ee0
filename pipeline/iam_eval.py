"""IAM's evaluation of identity-policy documents, pure: which actions they allow at all
(``evaluate``: the scan role check) and whether they allow one request (``decide``).

``evaluate`` answers "is this action granted somewhere": Allow/Deny, Action/NotAction with
wildcards, explicit Deny wins; ``Resource``/``NotResource`` are not evaluated (every statement
applies to some resource, and the actions the scan needs are granted on ``*``), and a
``Condition`` is assumed to hold, for Allow (reported in ``Decision.conditional``) and for Deny
(fail closed). Documented in pipeline/localaws/README.md.

``decide`` answers one request: an action on one resource ARN with its request context (the
condition keys AWS would supply: ``aws:TagKeys``, ``aws:RequestTag/K``, ``aws:ResourceTag/K``,
``ec2:CreateAction``, ``aws:PrincipalAccount``...). It evaluates Action/NotAction,
Resource/NotResource (wildcards, policy variables such as ``${aws:PrincipalAccount}``) and the
Condition operators below, with their ``IfExists`` forms and the ``ForAllValues:`` /
``ForAnyValue:`` set qualifiers. Anything it cannot decide (an unknown operator, a malformed
block, an unresolved policy variable, a multivalued key under a single-valued operator, a
statement IAM would reject) fails closed: such an Allow grants nothing, such a Deny denies.
Permissions boundaries, SCPs, session and resource policies are not modelled.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
# A condition key's value in a request: one string, or a set of them (aws:TagKeys).
ContextValue = str | Sequence[str]


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
class Request:
    """One authorization question: ``action`` on the resource ARN ``resource`` (``*`` for
    actions without one), with the request context (condition key -> value; a ``str`` is a
    single value, a sequence of them a multivalued key such as ``aws:TagKeys``)."""

    action: str
    resource: str = "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)


class Effect(enum.Enum):
    ALLOW = "Allow"
    IMPLICIT_DENY = "ImplicitDeny"  # no statement allows it
    EXPLICIT_DENY = "ExplicitDeny"  # a Deny statement applies (or may: fail closed)


@dataclass(frozen=True, slots=True)
class RequestDecision:
    """The verdict on one request, naming the statements (Sid, else ``#<index>``) behind it."""

    request: Request
    effect: Effect
    allowed_by: tuple[str, ...]  # Allow statements that apply
    denied_by: tuple[str, ...]  # Deny statements that apply or may apply
    undecided: tuple[str, ...]  # statements that could not be decided (each failed closed)

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


@dataclass(frozen=True, slots=True)
class _Statement:
    effect: str  # Allow | Deny
    patterns: tuple[str, ...]
    negated: bool  # NotAction
    conditional: bool
    name: str = ""
    resources: tuple[str, ...] | None = None  # None: no (valid) Resource/NotResource element
    not_resource: bool = False
    condition: Any = None

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


def decide(documents: Iterable[PolicyDocument], request: Request) -> RequestDecision:
    """Decide ``request`` against all statements of ``documents``: an explicit (or undecidable)
    Deny wins, else an Allow that surely applies allows, else it is implicitly denied."""
    statements = [s for doc in documents for s in _statements(parse_document(doc))]
    context = _Context(request.context)
    allowed_by: list[str] = []
    denied_by: list[str] = []
    undecided: list[str] = []
    for statement in statements:
        if not statement.covers(request.action):
            continue
        applies = _and(
            _resource_matches(statement, request.resource, context), _holds(statement, context)
        )
        if applies is None:
            undecided.append(statement.name)
        if statement.effect == "Deny" and applies is not False:
            denied_by.append(statement.name)
        elif statement.effect == "Allow" and applies is True:
            allowed_by.append(statement.name)
    effect = (
        Effect.EXPLICIT_DENY if denied_by else Effect.ALLOW if allowed_by else Effect.IMPLICIT_DENY
    )
    return RequestDecision(request, effect, tuple(allowed_by), tuple(denied_by), tuple(undecided))


def tag_context(
    request_tags: Mapping[str, str] | None = None,
    *,
    tag_keys: Iterable[str] | None = None,
    resource_tags: Mapping[str, str] | None = None,
    create_action: str | None = None,
    extra: Mapping[str, ContextValue] | None = None,
) -> dict[str, ContextValue]:
    """A tagging request's context as AWS builds it: ``aws:TagKeys`` (the keys sent; ``tag_keys``
    when only keys are, as DeleteTags), ``aws:RequestTag/K`` per tag sent, ``aws:ResourceTag/K``
    per tag the resource has, ``ec2:CreateAction`` for tags sent with the call creating the
    resource (tag on create), and ``extra`` keys (``aws:PrincipalAccount``...)."""
    keys = tuple(tag_keys if tag_keys is not None else (request_tags or {}))
    out: dict[str, ContextValue] = dict(extra or {})
    if keys:
        out["aws:TagKeys"] = keys
    out.update({f"aws:RequestTag/{k}": v for k, v in (request_tags or {}).items()})
    out.update({f"aws:ResourceTag/{k}": v for k, v in (resource_tags or {}).items()})
    if create_action:
        out["ec2:CreateAction"] = create_action
    return out


# --- parsing -------------------------------------------------------------------------------


def _statements(document: Mapping[str, Any]) -> list[_Statement]:
    raw = document.get("Statement", [])
    items = [raw] if isinstance(raw, Mapping) else raw if isinstance(raw, list) else []
    found = []
    for index, item in enumerate(items):
        statement = _statement(item, index) if isinstance(item, Mapping) else None
        if statement is not None:
            found.append(statement)
    return found


def _strings(value: Any) -> tuple[str, ...] | None:
    """A string or a non-empty list of strings as a tuple; None for anything else."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if not items or not all(isinstance(p, str) for p in items):
        return None
    return tuple(items)


def _statement(item: Mapping[str, Any], index: int = 0) -> _Statement | None:
    """One statement, or None if IAM would reject it (it then grants and denies nothing).

    A statement without a valid ``Resource``/``NotResource`` is kept for ``evaluate`` (which
    ignores resources) and fails closed in ``decide``."""
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny") or ("Action" in item) == ("NotAction" in item):
        return None
    negated = "NotAction" in item
    patterns = _strings(item["NotAction" if negated else "Action"])
    if patterns is None:
        return None
    not_resource = "NotResource" in item
    resources = None
    if ("Resource" in item) != not_resource:
        resources = _strings(item["NotResource" if not_resource else "Resource"])
    sid = item.get("Sid")
    return _Statement(
        effect=str(effect),
        patterns=patterns,
        negated=negated,
        conditional=bool(item.get("Condition")),
        name=sid if isinstance(sid, str) and sid else f"#{index}",
        resources=resources,
        not_resource=not_resource,
        condition=item.get("Condition"),
    )


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    """IAM's action wildcards: ``*`` any run, ``?`` one character; case-insensitive, anchored."""
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


# --- the request context and policy variables ----------------------------------------------


class _Context:
    """Condition keys are case-insensitive; values are kept as given."""

    def __init__(self, values: Mapping[str, ContextValue]) -> None:
        self._values = {k.lower(): v for k, v in values.items()}

    def get(self, key: str) -> ContextValue | None:
        """The key's value; None when it is absent (an empty set counts as absent)."""
        value = self._values.get(key.lower())
        if value is None or (not isinstance(value, str) and not value):
            return None
        return value

    def single(self, key: str) -> str | None:
        value = self.get(key)
        return value if isinstance(value, str) else None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}  # ${*} ${?} ${$}: the literal character


def _parts(template: str, context: _Context) -> list[tuple[bool, str]] | None:
    """``template`` as (literal, text) parts with its policy variables resolved: a variable's
    value and ``${*}`` are literal text, the rest keeps its wildcards. None when a variable has
    no single value in the request and no default (``${aws:username, 'none'}``)."""
    parts: list[tuple[bool, str]] = []
    at = 0
    for found in _VARIABLE.finditer(template):
        parts.append((False, template[at : found.start()]))
        at = found.end()
        inner = found.group(1).strip()
        if inner in _SPECIAL:
            parts.append((True, _SPECIAL[inner]))
            continue
        name, comma, default = inner.partition(",")
        value = context.single(name.strip())
        if value is None and comma:
            default = default.strip()
            quoted = len(default) >= 2 and default[0] == default[-1] == "'"
            value = default[1:-1] if quoted else None
        if value is None:
            return None
        parts.append((True, value))
    parts.append((False, template[at:]))
    return parts


def _like(template: str, context: _Context, *, wildcards: bool = True) -> re.Pattern[str] | None:
    """A case-sensitive anchored pattern for ``template`` (None: unresolved variable)."""
    parts = _parts(template, context)
    if parts is None:
        return None
    out = []
    for literal, text in parts:
        if literal or not wildcards:
            out.append(re.escape(text))
        else:
            out.append(
                "".join("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in text)
            )
    return re.compile("".join(out), re.DOTALL)


# --- three-valued logic: True, False, None (cannot tell) ------------------------------------


def _and(*values: bool | None) -> bool | None:
    return False if False in values else None if None in values else True


def _or(values: Iterable[bool | None]) -> bool | None:
    seen = list(values)
    return True if True in seen else None if None in seen else False


def _resource_matches(statement: _Statement, resource: str, context: _Context) -> bool | None:
    if statement.resources is None:
        return None  # IAM would reject the statement: fail closed
    hits = []
    for template in statement.resources:
        pattern = _like(template, context)
        hits.append(None if pattern is None else bool(pattern.fullmatch(resource)))
    hit = _or(hits)
    return hit if not statement.not_resource or hit is None else not hit


# --- conditions ----------------------------------------------------------------------------

Matcher = Callable[[str, str, _Context], bool | None]  # (request value, policy value) -> match


def _string(value: str, expected: str, context: _Context) -> bool | None:
    parts = _parts(expected, context)
    return None if parts is None else value == "".join(text for _, text in parts)


def _string_ignore_case(value: str, expected: str, context: _Context) -> bool | None:
    parts = _parts(expected, context)
    return None if parts is None else value.lower() == "".join(t for _, t in parts).lower()


def _string_like(value: str, expected: str, context: _Context) -> bool | None:
    pattern = _like(expected, context)
    return None if pattern is None else bool(pattern.fullmatch(value))


def _arn_like(value: str, expected: str, context: _Context) -> bool | None:
    """Each of the six colon-separated parts matched on its own (IAM's ArnLike/ArnEquals)."""
    got, want = value.split(":", 5), expected.split(":", 5)
    if len(want) != 6:
        return _string_like(value, expected, context)
    if len(got) != 6:
        return False
    return _and(*(_string_like(g, w, context) for g, w in zip(got, want, strict=True)))


def _bool(value: str, expected: str, _context: _Context) -> bool | None:
    if expected.lower() not in ("true", "false"):
        return None
    return value.lower() == expected.lower()


def _numeric(compare: Callable[[float, float], bool]) -> Matcher:
    def match(value: str, expected: str, _context: _Context) -> bool | None:
        try:
            return compare(float(value), float(expected))
        except ValueError:
            return None

    return match


# operator -> (matcher, negated): a negated operator holds when no policy value matches.
_OPERATORS: dict[str, tuple[Matcher, bool]] = {
    "StringEquals": (_string, False),
    "StringNotEquals": (_string, True),
    "StringEqualsIgnoreCase": (_string_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
}
_QUALIFIERS = ("ForAllValues:", "ForAnyValue:")


def _policy_values(value: Any) -> tuple[str, ...] | None:
    """A condition's value(s) as strings (JSON booleans and numbers as IAM reads them)."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (int, float, str)):
            out.append(str(item))
        else:
            return None
    return tuple(out) if out else None


def _holds(statement: _Statement, context: _Context) -> bool | None:
    """The statement's Condition: every operator block, every key in it (AND)."""
    condition = statement.condition
    if condition is None:
        return True
    if not isinstance(condition, Mapping):
        return None
    results: list[bool | None] = []
    for operator, block in condition.items():
        if not isinstance(operator, str) or not isinstance(block, Mapping) or not block:
            return None
        for key, value in block.items():
            expected = _policy_values(value)
            if not isinstance(key, str) or expected is None:
                return None
            results.append(_condition(operator, key, expected, context))
    return _and(*results)


def _condition(
    operator: str, key: str, expected: tuple[str, ...], context: _Context
) -> bool | None:
    qualifier = next((q for q in _QUALIFIERS if operator.startswith(q)), "")
    base = operator[len(qualifier) :]
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    value = context.get(key)
    if base == "Null":
        if qualifier or if_exists or not all(e.lower() in ("true", "false") for e in expected):
            return None
        return _or((value is None) == (e.lower() == "true") for e in expected)
    if base not in _OPERATORS:
        return None  # unknown operator: fail closed
    matcher, negated = _OPERATORS[base]
    if value is None:
        if qualifier:
            return qualifier == "ForAllValues:"  # vacuously true for all; false for any
        return True if if_exists else negated

    def one(item: str) -> bool | None:
        hit = _or(matcher(item, e, context) for e in expected)
        return hit if hit is None or not negated else not hit

    if not qualifier:
        return one(value) if isinstance(value, str) else None  # a set needs a qualifier
    items = [value] if isinstance(value, str) else list(value)
    if qualifier == "ForAllValues:":
        return _and(*(one(item) for item in items))
    return _or(one(item) for item in items)
