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
