"""The least-privilege IAM of ``policies/iam/``: per job, the grants equal what the code declares;
the scoping rules hold (tags, PassRole, no escalation); each role writes only its own tag keys
and evidence objects (``iam_policy.WRITES``), decided request by request with
``pipeline.iam_eval``; parliament finds nothing; the trust policies are as narrow as documented."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from pipeline import evidence_keys, tags
from pipeline.aws import iam_policy
from pipeline.build import make_specs
from pipeline.catalog import Platform
from pipeline.channels import DEFAULT_PREFIX, parameter_name
from pipeline.errors import ConfigError
from pipeline.evidence import store
from pipeline.evidence.trust import K8S_TAG
from pipeline.iam_eval import Request, decide
from pipeline.packer import Arch, BuildSpec, provenance_tags
from pipeline.release import promote, revoke
from pipeline.validate.launch import run_tags
from tests._iam_requests import (
    ACCOUNT,
    REGION,
    create_tags,
    delete_tags,
    ec2_arn,
    put_object,
    tag_on_create,
)

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
    assert files - set(JOBS) == {
        "github-oidc-trust",
        "github-oidc-trust-production",
        "test-instance-role",
        "packer-instance-role",
    }


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


def test_setup_attaches_only_the_managed_policies_each_role_needs() -> None:
    """The scan role: the two managed policies; the Packer role: Session Manager only."""
    attaches = {
        tuple(resources_of(s)): sorted(s["Condition"]["ArnEquals"]["iam:PolicyARN"])
        for s in statements("setup")
        if "iam:AttachRolePolicy" in actions_of(s)
    }
    assert attaches == {
        ("arn:aws:iam::*:role/eks-cis-ami-pipeline-scan",): [
            "arn:aws:iam::aws:policy/AmazonInspector2ManagedCisPolicy",
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        ],
        ("arn:aws:iam::*:role/eks-cis-ami-pipeline-packer",): [
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        ],
    }


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
def test_no_role_can_adopt_a_foreign_resource_or_delete_every_tag(job: str) -> None:
    """Tagging an existing resource as the pipeline's needs the ownership tag there already;
    DeleteTags must name its keys (else it deletes every tag): on every resource type."""
    policy = [iam_policy.load_policy(job, IAM_DIR)]
    for kind in iam_policy.EC2_ARNS:
        arn = ec2_arn(kind, "x-foreign")
        assert not decide(policy, create_tags(arn, {MANAGED: "true"}, {"team": "a"})).allowed
        assert not decide(policy, delete_tags(arn, [])).allowed, (job, kind)
        assert not decide(policy, delete_tags(arn, [], {MANAGED: "true"})).allowed, (job, kind)


# Parliament's RESOURCE_MISMATCH wants every required resource type of an action in one
# statement. Splitting RunInstances (and CreateSecurityGroup, CreateImage) by resource type is
# AWS's documented way to require tags on what is created while allowing any image or subnet
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html), so for these
# actions that one finding is expected; anything else parliament reports fails the test.
# ssm:SendCommand: one statement for the document, one for the run's tagged instances.
SPLIT_BY_RESOURCE = {
    "ec2:RunInstances",
    "ec2:CreateSecurityGroup",
    "ec2:CreateImage",
    "ssm:SendCommand",
}
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


def _trusted_subject(name: str) -> str:
    doc = json.loads((IAM_DIR / name).read_text())
    (st,) = doc["Statement"]
    assert st["Effect"] == "Allow" and st["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert st["Principal"] == {
        "Federated": "arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com"
    }
    assert set(st["Condition"]) == {"StringEquals"}  # no StringLike: no wildcard subject
    eq = st["Condition"]["StringEquals"]
    assert eq["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    sub = eq["token.actions.githubusercontent.com:sub"]
    assert isinstance(sub, str) and "*" not in sub and "?" not in sub
    return sub


def test_build_validate_and_reap_roles_trust_only_the_main_branch() -> None:
    assert _trusted_subject("github-oidc-trust.json") == "repo:OWNER/REPO:ref:refs/heads/main"


def test_the_promote_role_trusts_only_the_production_environment() -> None:
    subject = _trusted_subject("github-oidc-trust-production.json")
    assert subject == "repo:OWNER/REPO:environment:production"  # never main's token


def _jobs_assuming(role_var: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((ROOT / ".github/workflows").glob("*.yml")):
        for name, job in (yaml.safe_load(path.read_text())["jobs"] or {}).items():
            roles = [
                (step.get("with") or {}).get("role-to-assume", "") for step in job.get("steps", [])
            ]
            if any(role_var in role for role in roles):
                found.append((f"{path.name}:{name}", job))
    return found


def test_every_job_with_the_promote_role_runs_in_the_production_environment() -> None:
    jobs = _jobs_assuming("vars.AWS_PROMOTE_ROLE_ARN")
    assert {name for name, _ in jobs} >= {"promote.yml:promote", "revoke.yml:revoke"}
    for name, job in jobs:
        assert job.get("environment") == "production", name


def test_no_job_on_main_without_the_environment_holds_the_promote_role() -> None:
    for role_var in ("vars.AWS_ROLE_ARN", "vars.AWS_REAP_ROLE_ARN"):
        for name, job in _jobs_assuming(role_var):
            roles = [(s.get("with") or {}).get("role-to-assume", "") for s in job["steps"]]
            assert not any("AWS_PROMOTE_ROLE_ARN" in r for r in roles), name
            assert "environment" not in job, name  # its token's subject is main's


def test_the_readmes_document_both_trust_subjects() -> None:
    iam_readme = (IAM_DIR / "README.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for text in (iam_readme, readme):
        assert "github-oidc-trust-production.json" in text
        assert "repo:OWNER/REPO:environment:production" in text


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


# --- What each job may write: tag keys and evidence objects (iam_policy.WRITES) -------------


def test_each_policy_grants_its_writes_exactly_as_declared() -> None:
    """The statements granting ec2:CreateTags, ec2:DeleteTags and s3:PutObject are exactly those
    iam_policy.WRITES renders, and no other statement grants any of these actions."""
    for job in JOBS:
        writing = [st for st in statements(job) if set(actions_of(st)) & iam_policy.WRITE_ACTIONS]
        assert writing == iam_policy.write_statements(job), job
        for st in writing:
            assert set(actions_of(st)) <= iam_policy.WRITE_ACTIONS, (job, st["Sid"])


def test_declared_keys_come_from_pipeline_tags_and_are_iam_patterns() -> None:
    """Every declared key is exact or ``prefix*`` (what tags.key_matches and IAM's StringLike
    read alike), in one of the pipeline's families; the evidence prefix is evidence_keys'."""
    families = (
        tags.AMI_TAG_PREFIX,
        tags.PIPELINE_TAG_PREFIX,
        tags.VALIDATE_TAG_PREFIX,
        tags.CIS_TAG_PREFIX,
        tags.RELEASE_TAG_PREFIX,
    )
    for job, writes in iam_policy.WRITES.items():
        for grant in writes.tags:
            for key in grant.keys:
                assert "*" not in key[:-1] and "?" not in key, (job, key)
                assert key == tags.NAME_TAG or key.startswith(families), (job, key)
    account, region = "${aws:PrincipalAccount}", "${aws:RequestedRegion}"
    releases = evidence_keys.releases_prefix(account, region, "ami-*")
    for job, writes in iam_policy.WRITES.items():
        for pattern in writes.objects:  # a run's objects (validate), the release history (promote)
            assert pattern.startswith((iam_policy.EVIDENCE_RUN_PREFIX, releases)), job
    assert [p for w in iam_policy.WRITES.values() for p in w.objects] == [
        f"{iam_policy.EVIDENCE_RUN_PREFIX}*",
        f"{releases}*",
    ]
    expected = evidence_keys.run_prefix(account, region, "ami-*", "*")
    assert expected == iam_policy.EVIDENCE_RUN_PREFIX


def test_each_job_policy_fits_the_managed_policy_size_quota() -> None:
    """IAM's quota for a customer managed policy: 6,144 characters, white space not counted."""
    for job in JOBS:
        text = (IAM_DIR / f"{job}.json").read_text()
        assert len(re.sub(r"\s", "", text)) <= 6144, job


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AMI = "ami-0123456789abcdef0"
RUN = "20261127T120000Z-abc123"
BUCKET = evidence_keys.default_bucket(ACCOUNT, REGION)
OWNED = {MANAGED: "true"}
STOCK = {"Name": "amazon-eks-node-al2023"}  # an AMI the pipeline did not build
IMAGE, SNAPSHOT = ec2_arn("image", AMI), ec2_arn("snapshot", "snap-0123456789abcdef0")
RESOURCES = {k: ec2_arn(k, "new") for k in iam_policy.EC2_ARNS}


def _packer_run_tags() -> dict[str, str]:
    """The production template's ``local.run_tags`` (values unrendered, ``${var.run_id}``)."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    with (ROOT / "packer" / "eks-cis.pkr.hcl").open(encoding="utf-8") as handle:
        blocks = hcl2.load(handle, serialization_options=options)
    (run_tags_,) = [b["run_tags"] for b in blocks["locals"] if "run_tags" in b]
    assert run_tags_[MANAGED] == "true"
    return {str(k): str(v) for k, v in run_tags_.items()}


def _build_spec() -> BuildSpec:
    (spec,) = make_specs(
        [Platform.AMAZON_LINUX_2023], [Arch.X86_64], "1.33", 2, local=False, run_id=RUN,
        region=REGION, out_dir=Path("out"),
    )  # fmt: skip
    return replace(spec, source_ami="ami-0fedcba9876543210")


def _validated_tags() -> dict[str, str]:
    """What validate leaves on an AMI: its verdict and the pointer to the signed record."""
    return {
        "cis:verdict": "PASS",
        "cis:run-id": RUN,
        "cis:level": "LEVEL_2",
        tags.ATTESTATION_TAG: store.s3_uri(BUCKET, store.run_prefix(ACCOUNT, REGION, AMI, RUN)),
        tags.ATTESTATION_SHA_TAG: "a" * 64,
        tags.SIGNING_KEY_TAG: f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k",
    }


def _built_ami_tags() -> dict[str, str]:
    return {**provenance_tags(_build_spec()), tags.FINGERPRINT_TAG: "sha256:" + "b" * 64}


def _writes_of(job: str) -> list[Request]:
    """Requests the job's code makes (from its own tag and key functions): all must be allowed."""
    if job == "build":
        packer_tags = _packer_run_tags()  # Packer's, on what it creates
        out = [
            r
            for action, kinds in (
                ("RunInstances", ("instance", "network-interface", "volume")),
                ("CreateSecurityGroup", ("security-group",)),
                ("CreateKeyPair", ("key-pair",)),
                ("CreateImage", ("image", "snapshot")),  # Packer's TagSpecifications
            )
            for kind in kinds
            for r in tag_on_create(action, RESOURCES[kind], packer_tags)
        ]
        provenance = provenance_tags(_build_spec())  # Packer's StepCreateTags
        out += [create_tags(arn, provenance, packer_tags | OWNED) for arn in (IMAGE, SNAPSHOT)]
        fingerprint = {MANAGED: "true", tags.FINGERPRINT_TAG: "sha256:" + "b" * 64}
        out.append(create_tags(IMAGE, fingerprint, provenance))  # build.tag_builds
        beat = {tags.HEARTBEAT_TAG: "2026-11-27T12:00:00Z"}
        out += [create_tags(RESOURCES[k], beat, packer_tags) for k in ("instance", "volume")]
        out += [
            create_tags(RESOURCES[k], beat, packer_tags) for k in ("security-group", "key-pair")
        ]
        return out
    if job == "validate":
        created = run_tags(RUN, NOW) | {
            "cis-validate:ami-id": AMI,
            tags.EXPIRES_TAG: "2026-11-27T14:00:00Z",
            "Name": f"cis-validate {AMI}",
        }
        out = [
            *tag_on_create("RunInstances", RESOURCES["instance"], created),
            *tag_on_create("RunInstances", RESOURCES["volume"], created),
            *tag_on_create("CreateSecurityGroup", RESOURCES["security-group"], run_tags(RUN, NOW)),
        ]
        beat = {tags.HEARTBEAT_TAG: "2026-11-27T12:02:00Z"}
        out += [create_tags(RESOURCES[k], beat, created) for k in ("instance", "security-group")]
        for had in (STOCK, _built_ami_tags()):  # the verdict goes on any AMI
            pending = {"cis:verdict": "PENDING", "cis:run-id": RUN}
            out += [create_tags(IMAGE, pending, had), delete_tags(IMAGE, ["cis:level"], had)]
            out.append(create_tags(IMAGE, _validated_tags() | {"cis:local": "true"}, had))
        drift = {tags.DRIFT_FAILED_TAG: "1.1.1", tags.DRIFT_COUNTS_TAG: "passed=1,failed=1"}
        out.append(create_tags(IMAGE, drift, _built_ami_tags()))  # the nightly's drift record
        for run in (RUN, f"{RUN}~2"):
            prefix = store.run_prefix(ACCOUNT, REGION, AMI, run)
            names = [n.replace("*", "al2023.yaml") for n in evidence_keys.RUN_OBJECTS]
            out += [put_object(BUCKET, prefix + name) for name in names]
        return out
    if job == "promote":
        source = _built_ami_tags() | _validated_tags() | {"team": "x"}
        source |= promote.channel_tags("candidate", NOW, "arn:aws:sts::1:assumed-role/r", None)
        source |= {tags.DRIFT_COUNTS_TAG: "passed=1", f"{tags.COPY_TAG_PREFIX}eu-west-1": "ami-1"}
        wanted = promote.copy_tags(source, REGION, AMI)
        assert wanted["cis:verdict"] == "PASS"  # the pointer tags come along, at creation
        out = [
            r
            for arn in (
                ec2_arn("image", "new", "eu-west-1"),
                ec2_arn("snapshot", "new", "eu-west-1"),
            )
            for r in tag_on_create("CopyImage", arn, wanted)
        ]
        out.append(create_tags(IMAGE, {f"{tags.COPY_TAG_PREFIX}eu-west-1": "ami-1"}, source))
        who = "arn:aws:sts::111122223333:assumed-role/promote/ci"
        out.append(create_tags(IMAGE, promote.channel_tags("stable", NOW, who, "ami-2"), source))
        out.append(create_tags(IMAGE, revoke.revocation_tags("CVE-2026-1", NOW, who), source))
        return out
    return []  # reap and setup write no tag and no evidence


FOREIGN_KEYS = [  # (job, a tagging request outside what the job's code writes)
    ("build", create_tags(IMAGE, {"cis:verdict": "PASS"}, _built_ami_tags())),
    ("build", create_tags(IMAGE, {tags.ATTESTATION_TAG: "s3://x/y"}, _built_ami_tags())),
    ("build", create_tags(IMAGE, {f"{tags.CHANNEL_TAG_PREFIX}stable:at": "x"}, OWNED)),
    ("build", create_tags(IMAGE, {tags.REVOKED_TAG: "false"}, OWNED)),
    ("build", create_tags(IMAGE, {K8S_TAG: "1.33"}, STOCK)),  # not the pipeline's AMI
    ("build", tag_on_create("CreateImage", RESOURCES["image"], OWNED | {"cis:verdict": "PASS"})[1]),
    ("build", delete_tags(IMAGE, ["cis:verdict"], OWNED)),
    ("validate", create_tags(IMAGE, {f"{tags.CHANNEL_TAG_PREFIX}stable:at": "x"}, OWNED)),
    ("validate", create_tags(IMAGE, {tags.REVOKED_TAG: "false"}, OWNED)),
    ("validate", delete_tags(IMAGE, [tags.REVOKED_TAG], OWNED)),
    ("validate", create_tags(IMAGE, {K8S_TAG: "1.33"}, OWNED)),
    ("validate", create_tags(IMAGE, {MANAGED: "true"}, STOCK)),
    ("validate", create_tags(IMAGE, {"cis:verdict": "PASS", K8S_TAG: "1.33"}, STOCK)),
    ("validate", create_tags(IMAGE, {tags.DRIFT_COUNTS_TAG: "passed=9"}, STOCK)),
    ("validate", create_tags(RESOURCES["instance"], {tags.HEARTBEAT_TAG: "x"}, STOCK)),
    ("validate", create_tags(RESOURCES["instance"], {tags.RUN_TAG: "other"}, OWNED)),
    ("validate", tag_on_create("RunInstances", RESOURCES["instance"], OWNED | {"cis:v": "x"})[1]),
    ("promote", create_tags(IMAGE, {"cis:verdict": "PASS"}, _built_ami_tags())),
    ("promote", create_tags(IMAGE, {tags.ATTESTATION_TAG: "s3://x/y"}, _built_ami_tags())),
    ("promote", create_tags(IMAGE, {K8S_TAG: "1.33"}, _built_ami_tags())),
    ("promote", create_tags(IMAGE, {tags.COPIED_FROM_TAG: "us-east-1/ami-1"}, OWNED)),
    ("promote", create_tags(IMAGE, {tags.DRIFT_COUNTS_TAG: "passed=9"}, OWNED)),
    ("promote", create_tags(IMAGE, {f"{tags.CHANNEL_TAG_PREFIX}stable:at": "x"}, STOCK)),
    ("promote", create_tags(SNAPSHOT, {"cis:verdict": "PASS"}, OWNED)),
    ("promote", delete_tags(IMAGE, [tags.REVOKED_TAG], OWNED)),
    ("promote", tag_on_create("CopyImage", IMAGE, OWNED | {"team": "x"})[1]),
    ("promote", tag_on_create("CopyImage", IMAGE, OWNED | {tags.REVOKED_TAG: "false"})[1]),
    ("promote", tag_on_create("CreateImage", IMAGE, OWNED | {"cis:verdict": "PASS"})[1]),
    ("promote", tag_on_create("CopyImage", IMAGE, {"cis:verdict": "PASS"})[1]),  # not ours
    ("reap", create_tags(IMAGE, {tags.HEARTBEAT_TAG: "x"}, OWNED)),
    ("setup", create_tags(IMAGE, {MANAGED: "true"}, OWNED)),
]
PREFIX = store.run_prefix(ACCOUNT, REGION, AMI, RUN)
FOREIGN_OBJECTS = [  # (job, an evidence write outside what the job's code writes)
    ("setup", put_object(BUCKET, PREFIX + evidence_keys.ENVELOPE)),
    ("setup", put_object(BUCKET, "signing-key.pem")),
    ("build", put_object(BUCKET, PREFIX + "verdict.json")),
    ("promote", put_object(BUCKET, PREFIX + evidence_keys.ENVELOPE)),
    ("reap", put_object(BUCKET, PREFIX + "verdict.json")),
    ("validate", put_object(BUCKET, store.run_prefix("999988887777", REGION, AMI, RUN) + "x.json")),
    ("validate", put_object(BUCKET, store.run_prefix(ACCOUNT, "eu-west-1", AMI, RUN) + "x.json")),
    ("validate", put_object(BUCKET, f"{ACCOUNT}/{REGION}/{AMI}/verdict.json")),  # no run
    ("validate", put_object(BUCKET, f"{ACCOUNT}/{REGION}/revoked/{AMI}/x")),
    ("validate", put_object(BUCKET, "index.html")),
    ("validate", put_object("someone-elses-bucket", PREFIX + "verdict.json")),
    ("validate", Request("s3:PutObject", f"arn:aws:s3:::{BUCKET}/{PREFIX}x")),  # no context
]


@pytest.mark.parametrize("job", JOBS)
def test_every_write_of_the_jobs_code_is_allowed(job: str) -> None:
    policy = [iam_policy.load_policy(job, IAM_DIR)]
    writes = _writes_of(job)
    assert writes or job in ("reap", "setup")
    for request in writes:
        decision = decide(policy, request)
        assert decision.allowed, (job, request)
        assert decision.undecided == (), (job, request)


@pytest.mark.parametrize(
    ("job", "request_"),
    FOREIGN_KEYS + FOREIGN_OBJECTS,
    ids=[
        f"{j}-{r.action}-{r.resource.rsplit('/', 1)[-1]}" for j, r in FOREIGN_KEYS + FOREIGN_OBJECTS
    ],
)
def test_a_write_outside_the_jobs_own_is_denied(job: str, request_: Request) -> None:
    assert not decide([iam_policy.load_policy(job, IAM_DIR)], request_).allowed


@pytest.mark.parametrize("job", JOBS)
def test_each_job_writes_only_its_own_tag_keys(job: str) -> None:
    """Every key of every family, on an image of the pipeline's, existing: only the jobs the
    declaration names may write it, and a job's own keys are refused to every other job."""
    samples = [
        "Name", "team", K8S_TAG, tags.FINGERPRINT_TAG, MANAGED, tags.HEARTBEAT_TAG,
        tags.RUN_TAG, "cis:verdict", tags.ATTESTATION_TAG, tags.COPIED_FROM_TAG,
        f"{tags.CHANNEL_TAG_PREFIX}stable:by", f"{tags.COPY_TAG_PREFIX}eu-west-1",
        tags.REVOKED_TAG, tags.REVOKED_BY_TAG, tags.DRIFT_FAILED_TAG, "cis-release:other",
        "aws:cloudformation:stack-name", "CIS:verdict",
    ]  # fmt: skip
    policy = [iam_policy.load_policy(job, IAM_DIR)]
    mine = [
        k
        for grant in iam_policy.WRITES[job].tags
        if "image" in grant.resources and not grant.create_actions
        for k in grant.keys
    ]
    for key in samples:
        allowed = decide(policy, create_tags(IMAGE, {key: "v"}, _built_ami_tags())).allowed
        assert allowed is tags.key_matches(key, mine), (job, key)


SEND = "ssm:SendCommand"
PROBE_DOC = "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"
TEST_INSTANCE = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"


@pytest.mark.parametrize(
    ("resource", "instance_tags", "allowed"),
    [
        (PROBE_DOC, {}, True),
        ("arn:aws:ssm:us-east-1::document/AWS-RunPowerShellScript", {}, False),
        ("arn:aws:ssm:us-east-1:111122223333:document/my-own-script", {}, False),
        (TEST_INSTANCE, {tags.RUN_TAG: "20261204T073334Z-abcd"}, True),
        (TEST_INSTANCE, {}, False),  # a production node: never
        (TEST_INSTANCE, {"team": "payments"}, False),
    ],
)
def test_validate_runs_only_the_shell_document_and_only_on_its_test_instances(
    resource: str, instance_tags: dict[str, str], allowed: bool
) -> None:
    context = {f"ssm:resourceTag/{k}": v for k, v in instance_tags.items()}
    policy = [iam_policy.load_policy("validate", IAM_DIR)]
    assert decide(policy, Request(SEND, resource, context)).allowed is allowed
    others = [iam_policy.load_policy(j, IAM_DIR) for j in JOBS if j != "validate"]
    assert not any(decide([p], Request(SEND, resource, context)).allowed for p in others)


def test_the_chain_role_reads_the_drift_channel_but_not_other_parameters() -> None:
    """The nightly chain (build.json + validate.json) reads the channel's current image for its
    drift report (pipeline.orchestration.nightly); nothing else of the account's parameters."""
    chain = [iam_policy.load_policy("build", IAM_DIR), iam_policy.load_policy("validate", IAM_DIR)]
    name = parameter_name(DEFAULT_PREFIX, Platform.AMAZON_LINUX_2023, "x86_64", "1.32", "stable")
    arn = f"arn:aws:ssm:us-east-1:111122223333:parameter{name}"
    assert decide(chain, Request("ssm:GetParameter", arn)).allowed
    secret = "arn:aws:ssm:us-east-1:111122223333:parameter/prod/db/password"
    assert not decide(chain, Request("ssm:GetParameter", secret)).allowed


@pytest.mark.parametrize(
    ("service", "allowed"),
    [
        ("inspector2.amazonaws.com", True),
        ("agentless.inspector2.amazonaws.com", True),  # EC2_HYBRID's agentless scans
        ("ec2.amazonaws.com", False),
    ],
)
def test_setup_creates_only_inspectors_service_linked_roles(service: str, allowed: bool) -> None:
    arn = f"arn:aws:iam::111122223333:role/aws-service-role/{service}/AWSServiceRole"
    request = Request("iam:CreateServiceLinkedRole", arn, {"iam:AWSServiceName": service})
    assert decide([iam_policy.load_policy("setup", IAM_DIR)], request).allowed is allowed


@pytest.mark.parametrize(
    ("policy_arn", "allowed"),
    [
        ("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore", True),
        ("arn:aws:iam::aws:policy/AmazonInspector2ManagedCisPolicy", False),
        ("arn:aws:iam::aws:policy/AdministratorAccess", False),
    ],
)
def test_the_packer_role_gets_session_manager_only(policy_arn: str, allowed: bool) -> None:
    role = "arn:aws:iam::111122223333:role/eks-cis-ami-pipeline-packer"
    request = Request("iam:AttachRolePolicy", role, {"iam:PolicyARN": policy_arn})
    assert decide([iam_policy.load_policy("setup", IAM_DIR)], request).allowed is allowed
