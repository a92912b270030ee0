"""The least-privilege IAM of ``policies/iam/``: per job, the grants equal what the code declares;
the scoping rules hold (tags, PassRole, no escalation); parliament finds nothing; the trust
policies are as narrow as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import iam_policy
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
IAM_DIR = ROOT / "policies" / "iam"
JOBS = sorted(iam_policy.JOBS)
MANAGED = "cis-pipeline:managed"
# Actions that escalate or that only an administrator needs: never in any job policy.
ESCALATION = {
    "iam:AttachRolePolicy",
    "iam:PutRolePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:AttachUserPolicy",
    "iam:PutUserPolicy",
    "iam:CreateAccessKey",
    "iam:CreateUser",
}
PROMOTION = {"ssm:PutParameter", "ec2:ModifyImageAttribute"}


def statements(job: str) -> list[dict[str, Any]]:
    return list(iam_policy.load_policy(job, IAM_DIR)["Statement"])


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def resources_of(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


@pytest.mark.parametrize("job", JOBS)
def test_policy_grants_exactly_what_the_job_declares(job: str) -> None:
    granted = iam_policy.granted_actions(iam_policy.load_policy(job, IAM_DIR))
    declared = iam_policy.job_actions(job)
    assert not declared - granted, (
        f"{job}.json lacks declared actions: {sorted(declared - granted)}"
    )
    assert not granted - declared, f"{job}.json grants undeclared: {sorted(granted - declared)}"


def test_every_declared_action_belongs_to_a_job_and_every_assigned_one_is_declared() -> None:
    assert iam_policy.unassigned() == {}, "give these declared actions a job in iam_policy.JOBS"
    assert iam_policy.undeclared() == {}, "declare these in the module's IAM_ACTIONS"


def test_one_file_per_job_and_nothing_else_unexplained() -> None:
    files = {p.stem for p in IAM_DIR.glob("*.json")}
    assert set(JOBS) <= files
    assert files - set(JOBS) == {"github-oidc-trust", "test-instance-role", "packer-instance-role"}


@pytest.mark.parametrize("job", JOBS)
def test_statements_are_well_formed_allow_only(job: str) -> None:
    doc = iam_policy.load_policy(job, IAM_DIR)
    assert doc["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids))
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        assert set(st) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert all(re.fullmatch(r"[a-z0-9]+:[A-Z][A-Za-z0-9]+\*?", a) for a in actions_of(st))


@pytest.mark.parametrize("job", JOBS)
def test_no_escalation_outside_setup_and_no_wildcard_actions(job: str) -> None:
    granted = iam_policy.granted_actions(iam_policy.load_policy(job, IAM_DIR))
    assert not [a for a in granted if a.endswith(":*") or a == "*"]
    allowed_escalation = {"iam:AttachRolePolicy"} if job == "setup" else set()
    assert granted & ESCALATION <= allowed_escalation
    if job != "setup":
        assert not [a for a in granted if a.startswith("iam:Create")], job


@pytest.mark.parametrize("job", JOBS)
def test_promotion_actions_only_in_promote(job: str) -> None:
    granted = iam_policy.granted_actions(iam_policy.load_policy(job, IAM_DIR))
    if job not in ("promote", "build"):
        assert not granted & PROMOTION, job
    if job == "build":
        # Packer's ModifyImageAttribute (imds_support) is limited to the account's own images.
        for st in statements("build"):
            if "ec2:ModifyImageAttribute" in actions_of(st):
                assert st["Condition"] == {"StringEquals": {"ec2:Owner": "*"}} or st[
                    "Condition"
                ].get("StringEquals", {}).get("aws:ResourceTag/" + MANAGED)
        assert "ssm:PutParameter" not in granted


def test_setup_attaches_only_the_two_managed_policies_to_the_scan_role() -> None:
    (attach,) = [s for s in statements("setup") if "iam:AttachRolePolicy" in actions_of(s)]
    assert resources_of(attach) == ["arn:aws:iam::*:role/eks-cis-ami-pipeline-scan"]
    assert sorted(attach["Condition"]["ArnEquals"]["iam:PolicyARN"]) == [
        "arn:aws:iam::aws:policy/AmazonInspector2ManagedCisPolicy",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ]


@pytest.mark.parametrize("job", JOBS)
def test_pass_role_only_for_our_roles_and_only_to_ec2(job: str) -> None:
    for st in statements(job):
        if "iam:PassRole" in actions_of(st):
            assert actions_of(st) == ["iam:PassRole"]
            assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
            assert set(resources_of(st)) <= {
                "arn:aws:iam::*:role/eks-cis-ami-pipeline-scan",
                "arn:aws:iam::*:role/eks-cis-ami-pipeline-packer",
            }


DESTRUCTIVE = re.compile(
    r"ec2:(Terminate|Delete(?!Tags)|Deregister|Stop|Modify|Authorize|EnableImage)|inspector2:Delete"
)


@pytest.mark.parametrize("job", JOBS)
def test_destructive_actions_only_on_resources_tagged_as_ours(job: str) -> None:
    for st in statements(job):
        hits = [a for a in actions_of(st) if DESTRUCTIVE.match(a)]
        if not hits or hits == ["ec2:ModifyImageAttribute"] and job == "promote":
            continue
        cond = st.get("Condition", {}).get("StringEquals", {})
        owned = cond.get(f"aws:ResourceTag/{MANAGED}") == "true"
        own_account = cond.get("ec2:Owner") == "*"
        assert owned or own_account, (job, st["Sid"], hits)


@pytest.mark.parametrize("job", JOBS)
def test_creations_require_the_ownership_tag(job: str) -> None:
    """RunInstances' instance/volume, CreateSecurityGroup's group, CreateKeyPair, inspector2
    configurations: only with cis-pipeline:managed=true in the request."""
    for st in statements(job):
        acts = set(actions_of(st))
        new = [r for r in resources_of(st) if re.search(r":(instance|volume|key-pair)/", r)]
        creating = acts & {"ec2:RunInstances", "ec2:CreateKeyPair"} and new
        creating = creating or (
            acts & {"ec2:CreateSecurityGroup"}
            and any("security-group/" in r for r in new + resources_of(st))
        )
        creating = creating or "inspector2:CreateCisScanConfiguration" in acts
        if creating:
            cond = st.get("Condition", {}).get("StringEquals", {})
            assert (
                cond.get(f"aws:RequestTag/{MANAGED}") == "true"
                or cond.get(f"aws:ResourceTag/{MANAGED}") == "true"
            ), (job, st["Sid"])


@pytest.mark.parametrize("job", JOBS)
def test_create_tags_cannot_adopt_foreign_resources(job: str) -> None:
    """CreateTags on existing resources needs the ownership tag already there, or only at
    creation (ec2:CreateAction), or only ``cis:*`` keys (a verdict on a stock AMI), so no role
    can tag someone else's resource as ours; DeleteTags must name its keys (else it deletes
    every tag)."""
    for st in statements(job):
        acts = actions_of(st)
        if "ec2:CreateTags" not in acts and "ec2:DeleteTags" not in acts:
            continue
        cond = st.get("Condition", {})
        eq = cond.get("StringEquals", {})
        cis_keys_only = cond.get("ForAllValues:StringLike") == {
            "aws:TagKeys": ["cis:*"]
        } and cond.get("Null") == {"aws:TagKeys": "false"}
        owned = eq.get(f"aws:ResourceTag/{MANAGED}") == "true"
        assert owned or eq.get("ec2:CreateAction") or cis_keys_only, (job, st["Sid"])


# Parliament's RESOURCE_MISMATCH wants every required resource type of an action in one
# statement. Splitting RunInstances (and CreateSecurityGroup, CreateImage) by resource type is
# AWS's documented way to require tags on what is created while allowing any image or subnet
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html), so for these
# actions that one finding is expected; anything else parliament reports fails the test.
SPLIT_BY_RESOURCE = {"ec2:RunInstances", "ec2:CreateSecurityGroup", "ec2:CreateImage"}
# setup writes the evidence bucket's TLS-only policy, so it holds s3:PutBucketPolicy without
# s3:DeleteObject, which parliament reads as a way to grant deletion through the bucket policy.
# setup is the one-time administrator's job (never CI's role); object lock and versioning
# protect the evidence. No other job has s3:PutBucketPolicy (asserted below).
EXPECTED = {("setup", "RESOURCE_POLICY_PRIVILEGE_ESCALATION")}


@pytest.mark.parametrize("job", JOBS)
def test_parliament_reports_nothing(job: str) -> None:
    parliament = pytest.importorskip("parliament")
    text = (IAM_DIR / f"{job}.json").read_text()
    findings = parliament.analyze_policy_string(text).findings
    unexpected = [
        (f.issue, f.detail)
        for f in findings
        if not (
            f.issue == "RESOURCE_MISMATCH"
            and {d["action"] for d in f.detail} <= SPLIT_BY_RESOURCE
            or (job, f.issue) in EXPECTED
        )
    ]
    assert unexpected == []
    granted = iam_policy.granted_actions(iam_policy.load_policy(job, IAM_DIR))
    assert job == "setup" or "s3:PutBucketPolicy" not in granted


def test_github_oidc_trust_is_restricted_to_repo_branch_and_environment() -> None:
    doc = json.loads((IAM_DIR / "github-oidc-trust.json").read_text())
    (st,) = doc["Statement"]
    assert st["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert st["Principal"] == {
        "Federated": "arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com"
    }
    eq = st["Condition"]["StringEquals"]
    assert eq["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert sorted(eq["token.actions.githubusercontent.com:sub"]) == [
        "repo:OWNER/REPO:environment:NAME",
        "repo:OWNER/REPO:ref:refs/heads/main",
    ]
    assert "StringLike" not in st["Condition"]  # no wildcards in the subject


def test_test_instance_role_trusts_ec2_and_carries_only_the_two_managed_policies() -> None:
    role = json.loads((IAM_DIR / "test-instance-role.json").read_text())
    assert role["RoleName"] == "eks-cis-ami-pipeline-scan"
    (st,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert st == {
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert sorted(role["ManagedPolicyArns"]) == [
        "arn:aws:iam::aws:policy/AmazonInspector2ManagedCisPolicy",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ]
    assert role["InlinePolicies"] == []


def test_packer_instance_role_is_pre_created_with_session_manager_only() -> None:
    """Named by the template's default (no temporary profile, so no iam:CreateRole to build)."""
    role = json.loads((IAM_DIR / "packer-instance-role.json").read_text())
    assert role["RoleName"] == role["InstanceProfileName"] == "eks-cis-ami-pipeline-packer"
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    assert role["InlinePolicies"] == []
    variables = (ROOT / "packer" / "variables.pkr.hcl").read_text()
    block = variables[variables.index('variable "iam_instance_profile"') :]
    assert re.search(r'default\s*=\s*"eks-cis-ami-pipeline-packer"', block.split("}")[0])


def test_render_prints_one_job_or_all_and_names_the_flag_for_an_unknown_job() -> None:
    one = json.loads(iam_policy.render("reap", IAM_DIR))
    assert one == iam_policy.load_policy("reap", IAM_DIR)
    every = json.loads(iam_policy.render(None, IAM_DIR))
    assert sorted(every) == JOBS
    with pytest.raises(ConfigError, match=r"^--job admin: not one of build, validate"):
        iam_policy.render("admin", IAM_DIR)


def test_a_broken_policy_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "reap.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"reap\.json: Expecting property name"):
        iam_policy.load_policy("reap", tmp_path)
