"""The key-policy check (pure): crafted key policies and grants in tests/cases/kms_policy/
(a wildcard principal, a condition excluding the account, a grant instead of a statement...),
each refusal of a key, and that the printed fix is a statement that admits the account."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.kms_policy import (
    KeyFacts,
    admission,
    consumer_statement,
    fix_text,
    image_key_policy,
    is_aws_ebs_key,
    key_problems,
    key_region,
    open_to_everyone,
)

CASES = Path(__file__).resolve().parents[1] / "cases" / "kms_policy"
OWNER = "123456789012"
ARN = f"arn:aws:kms:eu-west-1:{OWNER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
A, B = "111122223333", "444455556666"


def _facts(case: dict[str, Any]) -> KeyFacts:
    grants = tuple((str(g), tuple(ops)) for g, ops in case["grants"])
    return KeyFacts(ARN, "CUSTOMER", "Enabled", policy=case["policy"], grants=grants)


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_key_policy_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    facts = _facts(case)
    why = admission(facts, case["account"], case["region"])
    got = {"admits": why is None, "open": open_to_everyone(facts)}
    want = {"admits": case["admits"], "open": case["open"]}
    assert got == want, f"GOT {got} ({why}) WANT {want}"
    if case["why"]:
        assert why is not None and case["why"] in why, why


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_the_printed_fix_admits_the_account(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    facts = _facts(case)
    problems = key_problems(facts, region="eu-west-1", accounts=[A], what="eu-west-1: x")
    if case["admits"]:
        assert problems == []
        return
    (line,) = problems
    if "Deny statement" in line:
        return  # no added Allow beats a Deny: the line says which statement to remove
    statement = json.loads(line.split("add: ", 1)[1])
    fixed = {**case["policy"], "Statement": [*case["policy"]["Statement"], statement]}
    assert admission(replace(facts, policy=fixed), A, "eu-west-1") is None


def test_setup_policy_admits_each_release_account_and_no_other() -> None:
    policy = image_key_policy(OWNER, [A, B], "eu-west-1")
    facts = KeyFacts(ARN, "CUSTOMER", "Enabled", policy=policy)
    assert admission(facts, A, "eu-west-1") is None
    assert admission(facts, B, "eu-west-1") is None
    assert admission(facts, "999999999999", "eu-west-1") is not None
    assert admission(facts, A, "us-east-1") is not None  # kms:ViaService ec2.eu-west-1 only
    assert not open_to_everyone(facts)
    condition = consumer_statement([A], "eu-west-1")["Condition"]["StringEquals"]
    assert condition == {"kms:ViaService": "ec2.eu-west-1.amazonaws.com", "kms:CallerAccount": A}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"manager": "AWS"}, "is AWS-managed (alias/aws/ebs): AWS refuses to share"),
        ({"state": "Disabled"}, "is Disabled: `aws kms enable-key"),
        ({"state": "PendingDeletion"}, "is pending deletion"),
        ({"arn": ARN.replace("eu-west-1", "us-east-1")}, "is in us-east-1, not eu-west-1"),
        ({"spec": "RSA_2048", "usage": "SIGN_VERIFY"}, "not SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT"),
        ({"policy": {"Statement": []}}, f"does not admit {A}"),
    ],
    ids=["aws-managed", "disabled", "pending-deletion", "other-region", "asymmetric", "policy"],
)
def test_each_key_refusal(change: dict[str, Any], needle: str) -> None:
    good = KeyFacts(ARN, "CUSTOMER", "Enabled", policy=image_key_policy(OWNER, [A], "eu-west-1"))
    problems = key_problems(replace(good, **change), region="eu-west-1", accounts=[A], what="x")
    assert len(problems) == 1 and needle in problems[0], problems
    assert len(problems[0]) <= 450  # fits one output line (errors.MAX_LINE_CHARS) with context


def test_an_aws_managed_key_is_fine_when_nothing_is_shared() -> None:
    facts = KeyFacts(ARN, "AWS", "Enabled")
    assert key_problems(facts, region="eu-west-1", accounts=[], what="x") == []


def test_key_names() -> None:
    assert key_region(ARN) == "eu-west-1"
    assert key_region("alias/x") is None and key_region("1234abcd") is None
    assert is_aws_ebs_key(None) and is_aws_ebs_key("alias/aws/ebs")
    assert is_aws_ebs_key("arn:aws:kms:eu-west-1:123456789012:alias/aws/ebs")
    assert not is_aws_ebs_key(ARN)
    assert json.loads(fix_text(A, "eu-west-1"))["Principal"] == {"AWS": A}
