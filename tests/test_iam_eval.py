"""iam_eval: which actions a set of policy documents allows, decided as IAM does (no AWS at all)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from pipeline import iam_eval
from pipeline.iam_eval import CIS_SESSION_ACTIONS, SCAN_ROLE_ACTIONS, SSM_CORE_ACTIONS

CIS = "inspector2:StartCisSession"
SSM = "ssm:UpdateInstanceInformation"


def allow(action: Any, **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, **extra}]}


def deny(action: Any, **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": action, **extra}]}


CASES: list[tuple[str, list[Any], str, bool]] = [
    ("exact", [allow(CIS, Resource="*")], CIS, True),
    ("other action", [allow("inspector2:StopCisSession")], CIS, False),
    ("list of actions", [allow(["ec2:RunInstances", CIS])], CIS, True),
    ("service wildcard", [allow("inspector2:*")], CIS, True),
    ("infix wildcard", [allow("inspector2:*Cis*")], CIS, True),
    ("infix wildcard misses", [allow("inspector2:*Cis*")], "inspector2:ListFindings", False),
    ("question mark", [allow("inspector?:StartCisSession")], CIS, True),
    ("star", [allow("*")], SSM, True),
    ("case-insensitive", [allow("INSPECTOR2:startcissession")], CIS, True),
    ("no prefix match", [allow("inspector2:StartCis")], CIS, False),
    ("no regex meaning", [allow("inspector2:Start.isSession")], CIS, False),
    ("another service", [allow("inspector:*")], CIS, False),
    ("explicit deny wins", [allow("*"), deny("inspector2:*Cis*")], CIS, False),
    ("deny in the same document", [{"Statement": [
        {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"},
        {"Effect": "Deny", "Action": SSM, "Resource": "*"},
    ]}], SSM, False),
    ("deny of another action", [allow("ssm:*"), deny("ssm:SendCommand")], SSM, True),
    ("NotAction allow", [{"Statement": {"Effect": "Allow", "NotAction": "iam:*"}}], SSM, True),
    ("NotAction allow excludes", [{"Statement": {"Effect": "Allow", "NotAction": "ssm:*"}}],
     SSM, False),
    ("NotAction deny", [allow("*"), {"Statement": {"Effect": "Deny", "NotAction": "ssm:*"}}],
     CIS, False),
    ("resource is not evaluated", [allow(CIS, Resource="arn:aws:ec2:*:*:instance/*")], CIS, True),
    ("conditional allow counts", [allow(CIS, Condition={"Bool": {"aws:SecureTransport": "true"}})],
     CIS, True),
    ("conditional deny counts", [allow("*"), deny(CIS, Condition={"StringEquals": {"a": "b"}})],
     CIS, False),
    ("single statement object", [{"Statement": {"Effect": "Allow", "Action": CIS}}], CIS, True),
    ("bad effect grants nothing", [{"Statement": [{"Effect": "allow", "Action": CIS}]}],
     CIS, False),
    ("Action and NotAction is invalid", [{"Statement": [
        {"Effect": "Allow", "Action": CIS, "NotAction": "iam:*"}]}], CIS, False),
    ("garbage document", ["not json"], CIS, False),
    ("empty", [], CIS, False),
    ("json text", [json.dumps(allow(CIS))], CIS, True),
    ("url-encoded json (IAM's wire form)", [quote(json.dumps(allow(CIS)))], CIS, True),
]  # fmt: skip


@pytest.mark.parametrize(("name", "documents", "action", "want"), CASES, ids=[c[0] for c in CASES])
def test_allows(name: str, documents: list[Any], action: str, want: bool) -> None:
    assert iam_eval.allows(documents, action) is want


def test_decision_names_missing_denied_and_conditional_in_order() -> None:
    docs = [
        allow("ssm*:*", Resource="*"),
        allow("ec2messages:*", Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}}),
        allow("inspector2:*CisSession*"),
        deny("inspector2:StopCisSession"),
    ]
    decision = iam_eval.evaluate(docs, SCAN_ROLE_ACTIONS)
    assert decision.missing == ("inspector2:StopCisSession",)
    assert decision.denied == {"inspector2:StopCisSession"}
    assert decision.conditional == {a for a in SSM_CORE_ACTIONS if a.startswith("ec2messages:")}
    assert not decision.allows_all()


def test_the_aws_managed_policies_grant_exactly_their_part() -> None:
    """The documents of AmazonSSMManagedInstanceCore / AmazonInspector2ManagedCisPolicy as moto
    ships them (AWS's own): each grants its half of the scan role's actions, not the other."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data = json.loads(aws_managed_policies_data)
    ssm = data["AmazonSSMManagedInstanceCore"]["Document"]
    cis = data["AmazonInspector2ManagedCisPolicy"]["Document"]
    assert iam_eval.evaluate([ssm], SCAN_ROLE_ACTIONS).missing == CIS_SESSION_ACTIONS
    assert iam_eval.evaluate([cis], SCAN_ROLE_ACTIONS).missing == SSM_CORE_ACTIONS
    assert iam_eval.evaluate([ssm, cis], SCAN_ROLE_ACTIONS).allows_all()


# --- decide: one request (action, resource ARN, context) against whole statements ---------

AMI = "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0"
INSTANCE = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"
OBJECT = "arn:aws:s3:::evidence-bucket/111122223333/us-east-1/ami-1/run-1/verdict.json"
TAG = "ec2:CreateTags"
MANAGED = "aws:ResourceTag/cis-pipeline:managed"


def stmt(effect: str = "Allow", action: Any = TAG, resource: Any = "*", **extra: Any) -> Any:
    body = {"Effect": effect, **({"Action": action} if action else {}), **extra}
    if resource is not None:
        body["Resource"] = resource
    return {"Version": "2012-10-17", "Statement": [body]}


def ctx(**values: Any) -> dict[str, Any]:
    """Keyword names with ``__`` for ``:`` and ``_S_`` for ``/`` (aws__TagKeys)."""
    return {k.replace("__", ":").replace("_S_", "/"): v for k, v in values.items()}


def keys_only(*patterns: str, op: str = "ForAllValues:StringLike") -> dict[str, Any]:
    return {op: {"aws:TagKeys": list(patterns)}, "Null": {"aws:TagKeys": "false"}}


OWNED = {"StringEquals": {MANAGED: "true"}}
REQUESTS: list[tuple[str, Any, str, str, dict[str, Any], bool]] = [
    # name, policy, action, resource, context, allowed
    ("resource star", stmt(), TAG, AMI, {}, True),
    ("resource wildcard hits", stmt(resource="arn:aws:ec2:*::image/*"), TAG, AMI, {}, True),
    ("resource of another type", stmt(resource="arn:aws:ec2:*::image/*"), TAG, INSTANCE, {}, False),
    ("resource is case-sensitive", stmt(resource="arn:aws:ec2:*::IMAGE/*"), TAG, AMI, {}, False),
    ("resource ? is one character", stmt(resource="arn:aws:ec2:us-east-?::image/*"), TAG, AMI, {},
     True),
    ("resource list", stmt(resource=["arn:aws:s3:::x/*", "arn:aws:ec2:*::image/*"]), TAG, AMI, {},
     True),
    ("NotResource excludes", stmt(resource=None, NotResource="arn:aws:ec2:*::image/*"), TAG, AMI,
     {}, False),
    ("NotResource admits the rest", stmt(resource=None, NotResource="arn:aws:s3:::*"), TAG, AMI,
     {}, True),
    ("no Resource: IAM rejects it, grants nothing", stmt(resource=None), TAG, AMI, {}, False),
    ("Resource and NotResource: grants nothing",
     stmt(NotResource="arn:aws:s3:::*"), TAG, AMI, {}, False),
    ("action must match too", stmt(action="ec2:DeleteTags"), TAG, AMI, {}, False),
    ("NotAction excludes", stmt(action=None, NotAction="ec2:*"), TAG, AMI, {}, False),
    ("NotAction admits the rest", stmt(action=None, NotAction="s3:*"), TAG, AMI, {}, True),
    # policy variables
    ("variable resolved", stmt("Allow", "s3:PutObject", "arn:aws:s3:::*/${aws:PrincipalAccount}/*"),
     "s3:PutObject", OBJECT, ctx(aws__PrincipalAccount="111122223333"), True),
    ("variable of another account", stmt("Allow", "s3:PutObject",
     "arn:aws:s3:::*/${aws:PrincipalAccount}/*"), "s3:PutObject", OBJECT,
     ctx(aws__PrincipalAccount="999999999999"), False),
    ("variable missing: fails closed", stmt("Allow", "s3:PutObject",
     "arn:aws:s3:::*/${aws:PrincipalAccount}/*"), "s3:PutObject", OBJECT, {}, False),
    ("variable with a default", stmt("Allow", "s3:PutObject",
     "arn:aws:s3:::*/${aws:PrincipalAccount, '111122223333'}/*"), "s3:PutObject", OBJECT, {}, True),
    ("a variable's value is literal, not a wildcard", stmt("Allow", "s3:PutObject",
     "arn:aws:s3:::evidence-bucket/${aws:PrincipalAccount}/us-east-1/*"), "s3:PutObject", OBJECT,
     ctx(aws__PrincipalAccount="*"), False),
    ("${*} is a literal star", stmt("Allow", "s3:PutObject", "arn:aws:s3:::b/${*}"), "s3:PutObject",
     "arn:aws:s3:::b/anything", {}, False),
    # conditions: StringEquals / StringLike and missing keys
    ("StringEquals holds", stmt(Condition=OWNED), TAG, AMI, ctx(**{MANAGED: "true"}), True),
    ("StringEquals is case-sensitive", stmt(Condition=OWNED), TAG, AMI, ctx(**{MANAGED: "TRUE"}),
     False),
    ("StringEquals missing key", stmt(Condition=OWNED), TAG, AMI, {}, False),
    ("condition key names are case-insensitive", stmt(Condition=OWNED), TAG, AMI,
     {MANAGED.upper(): "true"}, True),
    ("StringEquals list is OR", stmt(Condition={"StringEquals": {"ec2:CreateAction": [
     "RunInstances", "CopyImage"]}}), TAG, AMI, ctx(ec2__CreateAction="CopyImage"), True),
    ("two keys are AND", stmt(Condition={"StringEquals": {"ec2:CreateAction": "CopyImage",
     MANAGED: "true"}}), TAG, AMI, ctx(ec2__CreateAction="CopyImage"), False),
    ("StringLike", stmt(Condition={"StringLike": {"aws:userid": "AROA*:ci-*"}}), TAG, AMI,
     ctx(aws__userid="AROAX:ci-42"), True),
    ("StringEqualsIgnoreCase", stmt(Condition={"StringEqualsIgnoreCase": {MANAGED: "TRUE"}}), TAG,
     AMI, ctx(**{MANAGED: "true"}), True),
    ("StringNotEquals with the key missing holds", stmt(Condition={"StringNotEquals": {
     MANAGED: "true"}}), TAG, AMI, {}, True),
    ("StringNotEquals of a listed value", stmt(Condition={"StringNotEquals": {MANAGED: [
     "true", "yes"]}}), TAG, AMI, ctx(**{MANAGED: "yes"}), False),
    ("StringEqualsIfExists, key missing", stmt(Condition={"StringEqualsIfExists": {
     MANAGED: "true"}}), TAG, AMI, {}, True),
    ("StringEqualsIfExists, key differs", stmt(Condition={"StringEqualsIfExists": {
     MANAGED: "true"}}), TAG, AMI, ctx(**{MANAGED: "false"}), False),
    # set operators on aws:TagKeys
    ("ForAllValues: every key matches", stmt(Condition=keys_only("cis:*")), TAG, AMI,
     ctx(aws__TagKeys=["cis:verdict", "cis:run-id"]), True),
    ("ForAllValues: one key outside", stmt(Condition=keys_only("cis:*")), TAG, AMI,
     ctx(aws__TagKeys=["cis:verdict", "cis-release:channel:stable:at"]), False),
    ("ForAllValues without keys holds, Null refuses it", stmt(action=[TAG, "ec2:DeleteTags"],
     Condition=keys_only("cis:*")), "ec2:DeleteTags", AMI, {}, False),
    ("ForAllValues without keys alone holds (vacuously)", stmt(action="ec2:DeleteTags", Condition={
     "ForAllValues:StringLike": {"aws:TagKeys": ["cis:*"]}}), "ec2:DeleteTags", AMI, {}, True),
    ("ForAllValues:StringEquals is exact", stmt(Condition=keys_only(
     "cis-pipeline:heartbeat", op="ForAllValues:StringEquals")), TAG, AMI,
     ctx(aws__TagKeys=["cis-pipeline:heartbeat"]), True),
    ("ForAllValues on a single-valued key", stmt(Condition={"ForAllValues:StringLike": {
     "ec2:CreateAction": ["Copy*"]}}), TAG, AMI, ctx(ec2__CreateAction="CopyImage"), True),
    ("ForAnyValue: one key suffices", stmt(Condition={"ForAnyValue:StringEquals": {
     "aws:TagKeys": ["cis:verdict"]}}), TAG, AMI, ctx(aws__TagKeys=["Name", "cis:verdict"]), True),
    ("ForAnyValue: no key, no match", stmt(Condition={"ForAnyValue:StringEquals": {
     "aws:TagKeys": ["cis:verdict"]}}), TAG, AMI, {}, False),
    ("ForAllValues:StringNotLike", stmt(Condition={"ForAllValues:StringNotLike": {
     "aws:TagKeys": ["cis:*"]}}), TAG, AMI, ctx(aws__TagKeys=["Name", "cis:verdict"]), False),
    ("a set under a single-valued operator: fails closed", stmt(Condition={"StringLike": {
     "aws:TagKeys": "cis:*"}}), TAG, AMI, ctx(aws__TagKeys=["cis:verdict"]), False),
    # Null, Bool, Arn, Numeric
    ("Null false: present", stmt(Condition={"Null": {"aws:TagKeys": "false"}}), TAG, AMI,
     ctx(aws__TagKeys=["a"]), True),
    ("Null true: absent", stmt(Condition={"Null": {"aws:TagKeys": "true"}}), TAG, AMI, {}, True),
    ("Null true: present", stmt(Condition={"Null": {"aws:TagKeys": "true"}}), TAG, AMI,
     ctx(aws__TagKeys=["a"]), False),
    ("Bool", stmt(Condition={"Bool": {"aws:SecureTransport": "true"}}), TAG, AMI,
     ctx(aws__SecureTransport="true"), True),
    ("Bool as a JSON boolean", stmt(Condition={"Bool": {"aws:SecureTransport": False}}), TAG, AMI,
     ctx(aws__SecureTransport="true"), False),
    ("ArnLike matches part by part", stmt(Condition={"ArnLike": {"iam:PolicyARN":
     "arn:aws:iam::aws:policy/Amazon*"}}), TAG, AMI,
     ctx(iam__PolicyARN="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"), True),
    ("ArnLike: a star stays in its part", stmt(Condition={"ArnLike": {"aws:SourceArn":
     "arn:aws:*:us-east-1:*:*"}}), TAG, AMI, ctx(aws__SourceArn="arn:aws:ec2::us-east-1:x"), False),
    ("ArnEquals of another ARN", stmt(Condition={"ArnEquals": {"iam:PolicyARN":
     "arn:aws:iam::aws:policy/A"}}), TAG, AMI, ctx(iam__PolicyARN="arn:aws:iam::aws:policy/B"),
     False),
    ("NumericLessThan", stmt(Condition={"NumericLessThan": {"s3:max-keys": "10"}}), TAG, AMI,
     {"s3:max-keys": "5"}, True),
    ("NumericGreaterThan", stmt(Condition={"NumericGreaterThan": {"s3:max-keys": "10"}}), TAG,
     AMI, {"s3:max-keys": "5"}, False),
    ("Numeric of a non-number fails closed", stmt(Condition={"NumericLessThan": {
     "s3:max-keys": "10"}}), TAG, AMI, {"s3:max-keys": "many"}, False),
    ("NumericLessThanEquals", stmt(Condition={"NumericLessThanEquals": {"ec2:VolumeSize": 100}}),
     TAG, AMI, ctx(ec2__VolumeSize="100"), True),
    # fail closed
    ("unknown operator in an Allow grants nothing", stmt(Condition={"StringSoundsLike": {
     MANAGED: "true"}}), TAG, AMI, ctx(**{MANAGED: "true"}), False),
    ("unknown qualifier", stmt(Condition={"ForSomeValues:StringLike": {"aws:TagKeys": "*"}}), TAG,
     AMI, ctx(aws__TagKeys=["a"]), False),
    ("malformed condition block", stmt(Condition={"StringEquals": "x"}), TAG, AMI, {}, False),
    ("date operators are not modelled", stmt(Condition={"DateLessThan": {
     "aws:CurrentTime": "2030-01-01T00:00:00Z"}}), TAG, AMI,
     ctx(aws__CurrentTime="2026-01-01T00:00:00Z"), False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "policy", "action", "resource", "context", "want"),
    REQUESTS,
    ids=[r[0] for r in REQUESTS],
)
def test_decide(
    name: str, policy: Any, action: str, resource: str, context: dict[str, Any], want: bool
) -> None:
    decision = iam_eval.decide([policy], iam_eval.Request(action, resource, context))
    assert decision.allowed is want
    assert decision.effect is (iam_eval.Effect.ALLOW if want else iam_eval.Effect.IMPLICIT_DENY)


def test_a_deny_wins_and_an_undecidable_deny_denies() -> None:
    allow = stmt()["Statement"][0] | {"Sid": "Tags"}
    deny = {"Sid": "NoCis", "Effect": "Deny", "Action": TAG, "Resource": "*"}
    policy = {"Statement": [allow, deny | {"Condition": keys_only("cis:*")}]}
    request = iam_eval.Request(TAG, AMI, ctx(aws__TagKeys=["cis:verdict"]))
    decision = iam_eval.decide([policy], request)
    assert (decision.effect, decision.allowed_by, decision.denied_by) == (
        iam_eval.Effect.EXPLICIT_DENY,
        ("Tags",),
        ("NoCis",),
    )
    other = iam_eval.Request(TAG, AMI, ctx(aws__TagKeys=["Name"]))
    assert iam_eval.decide([policy], other).allowed
    # A Deny whose condition cannot be evaluated is taken to apply; an Allow, not to.
    unknown = deny | {"Condition": {"StringSoundsLike": {"aws:TagKeys": "x"}}}
    decision = iam_eval.decide([{"Statement": [allow, unknown]}], other)
    assert (decision.effect, decision.undecided) == (iam_eval.Effect.EXPLICIT_DENY, ("NoCis",))
    # ... unless another of its conditions surely fails: then it applies in no reading.
    both = unknown | {"Condition": {**unknown["Condition"], "StringEquals": {MANAGED: "true"}}}
    assert iam_eval.decide([{"Statement": [allow, both]}], other).allowed


def test_statements_without_a_sid_are_named_by_position() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, stmt()[
        "Statement"][0]]}  # fmt: skip
    assert iam_eval.decide([policy], iam_eval.Request(TAG, AMI)).allowed_by == ("#1",)


def test_tag_context_is_what_aws_sends_for_a_tagging_request() -> None:
    assert iam_eval.tag_context(
        {"cis:verdict": "PASS"},
        resource_tags={"cis-pipeline:managed": "true"},
        create_action="CopyImage",
        extra={"aws:PrincipalAccount": "111122223333"},
    ) == {
        "aws:PrincipalAccount": "111122223333",
        "aws:TagKeys": ("cis:verdict",),
        "aws:RequestTag/cis:verdict": "PASS",
        "aws:ResourceTag/cis-pipeline:managed": "true",
        "ec2:CreateAction": "CopyImage",
    }
    assert iam_eval.tag_context(tag_keys=[]) == {}  # DeleteTags naming no key: aws:TagKeys absent


def test_evaluate_still_ignores_resources_and_conditions_for_the_scan_role_check() -> None:
    """The instance-profile check asks "granted at all?": decide's stricter reading of Resource
    and Condition does not change it."""
    docs = [stmt("Allow", CIS, "arn:aws:ec2:*:*:instance/*", Condition=OWNED)]
    assert iam_eval.allows(docs, CIS)
    assert iam_eval.evaluate(docs, [CIS]).conditional == {CIS}
    assert not iam_eval.decide(docs, iam_eval.Request(CIS, "*")).allowed
