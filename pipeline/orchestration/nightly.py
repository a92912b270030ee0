"""The nightly rebuild: tag builds with their input fingerprint, skip a build whose inputs did
not change (re-validating the newest pipeline AMI instead), and add the drift report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline import drift, findings, github, outputs, results
from pipeline.aws import AwsClients, boundary, is_aws_endpoint
from pipeline.aws import release as aws
from pipeline.aws.images import Image, resolve_eks_base_ami
from pipeline.build import run_build
from pipeline.catalog import Platform
from pipeline.channels import ReleaseSettings, parameter_name
from pipeline.errors import ConfigError, PipelineError
from pipeline.evidence import statement
from pipeline.evidence.record import Verification
from pipeline.evidence.verify import verify_ami
from pipeline.fingerprint import inputs_fingerprint
from pipeline.gate import Outcome, Verdict
from pipeline.orchestration.settings import ChainSettings
from pipeline.packer import DEFAULT_K8S_VERSION, PACKER_DIR, Arch, check_k8s_version
from pipeline.settings import NetworkSettings
from pipeline.tags import (
    BUILD_RUN_TAG,
    DRIFT_COUNTS_TAG,
    DRIFT_FAILED_TAG,
    FINGERPRINT_TAG,
    MANAGED_TAG,
    MANAGED_VALUE,
    REVOKED_TAG,
)

Echo = Callable[[str], None]
FAILED_TAG = DRIFT_FAILED_TAG  # FAILED check IDs of the last chain validation
COUNTS_TAG = DRIFT_COUNTS_TAG  # passed=N,failed=N,skipped=N of the last chain validation
SOURCE_TAG = "cis-ami:source-ami"


@dataclass(frozen=True, slots=True)
class Decision:
    """Build or re-validate one image of the matrix, and why."""

    platform: Platform
    arch: Arch
    k8s_version: str
    fingerprint: str
    reuse: str | None  # the AMI to re-validate instead of building
    why: str
    # The findings of the reused AMI's previous record, for the drift report's new findings.
    previous: drift.PreviousFindings | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "image": f"{self.platform.short}-{self.arch.value}",
            "action": "re-validated" if self.reuse else "built",
            "ami": self.reuse,
            "fingerprint": self.fingerprint,
            "why": self.why,
        }


# The checks of a record that prove which image it is about and who signed it; its result may be
# FAIL (a failed image is re-validated, never promoted, all the same).
_PROVENANCE = frozenset(
    {
        "lookup",
        "record",
        "record location",
        "envelope",
        "payload type",
        "signature",
        "statement",
        "subject",
        "image digest",
    }
)
MAX_REUSE_CANDIDATES = 5  # the newest pipeline-tagged AMIs looked at before building instead
Proof = Callable[[AwsClients, Image, Platform, Arch, str], "str | None"]


def built_by_pipeline(
    evidence: tuple[str | None, str | None] = (None, None),
    seen: dict[str, Verification] | None = None,
) -> Proof:
    """The proof the nightly asks of an image before reusing it: the pipeline's signed record
    (``evidence`` = bucket, signing key) is about exactly this image (its subject digest covers
    the ID, owner, snapshot IDs and creation date EC2 reports now), and signs its platform and
    Kubernetes version; EC2 gives its architecture. Tags prove nothing: anyone with
    ``ec2:CreateTags`` and ``ec2:RegisterImage`` can make an image that carries all of them.
    Returns None when proven, else why not. ``seen`` collects each verification (AMI → it),
    so the previous record's findings are read from what was proven, not fetched again."""

    def proof(
        clients: AwsClients, image: Image, platform: Platform, arch: Arch, k8s: str
    ) -> str | None:
        result = verify_ami(clients, image.id, evidence_bucket=evidence[0], signing_key=evidence[1])
        if seen is not None:
            seen[image.id] = result
        failed = [d for name, ok, d in result.checks if not ok and name in _PROVENANCE]
        if failed or result.statement is None:
            return "; ".join(failed) or "no signed record of its build"
        claims, _ = statement.read(result.statement)
        wrong = [
            f"{what} {got}, not {want}"
            for what, got, want in (
                ("signed platform", claims.platform, platform.value),
                ("signed Kubernetes version", claims.kubernetes_version, k8s),
                ("architecture", image.architecture, arch.value),
            )
            if got != want
        ]
        if claims.local == is_aws_endpoint(clients.endpoint_url):
            wrong.append("its record was made on another AWS (local or real) than this one")
        return "; ".join(wrong) or None

    return proof


def newest_pipeline_image(
    clients: AwsClients, platform: Platform, arch: Arch, k8s: str, proven: Proof
) -> tuple[aws.OwnedImage | None, list[str]]:
    """The newest available, unrevoked pipeline AMI of platform/arch/Kubernetes version that
    ``proven`` accepts, and one line for each newer candidate it refused (by tags, at most
    ``MAX_REUSE_CANDIDATES`` are tried)."""
    found = aws.owned_images(
        clients,
        [
            {"Name": f"tag:{MANAGED_TAG}", "Values": [MANAGED_VALUE]},
            {"Name": "tag-key", "Values": [BUILD_RUN_TAG]},
            {"Name": "tag:cis-ami:platform", "Values": [platform.value]},
            {"Name": "tag:cis-ami:architecture", "Values": [arch.value]},
            {"Name": "tag:cis-ami:kubernetes-version", "Values": [k8s]},
        ],
    )
    usable = [o for o in found if o.image.available and REVOKED_TAG not in o.image.tags]
    usable.sort(key=lambda o: (o.image.creation_date or "", o.image.id), reverse=True)
    refused: list[str] = []
    for owned in usable[:MAX_REUSE_CANDIDATES]:
        why = proven(clients, owned.image, platform, arch, k8s)
        if why is None:
            return owned, refused
        refused.append(f"{owned.image.id} is not reused, no pipeline build proven: {why}")
    return None, refused


def decide(
    settings: ChainSettings,
    clients: AwsClients,
    packer_dir: Path = PACKER_DIR,
    proven: Proof | None = None,
) -> list[Decision]:
    """For each image of the matrix: re-validate the newest pipeline AMI whose build the signed
    record proves (``built_by_pipeline``) when its fingerprint equals the inputs' fingerprint
    now, else build. Calls ssm:GetParameter, ec2:DescribeImages and what verify calls."""
    seen: dict[str, Verification] = {}
    proof = proven or built_by_pipeline(
        (settings.evidence.bucket, settings.evidence.signing_key), seen
    )
    out = []
    with boundary("build-and-validate --skip-unchanged"):
        for name in settings.platforms:
            platform = Platform.parse(name)
            k8s = check_k8s_version(platform, settings.k8s_version or DEFAULT_K8S_VERSION[platform])
            for arch_name in settings.archs:
                arch = Arch.parse(arch_name)
                base = resolve_eks_base_ami(clients, k8s, platform, arch)
                value = inputs_fingerprint(
                    platform,
                    arch,
                    k8s,
                    settings.level,
                    settings.local,
                    base,
                    settings.policy_dir,
                    packer_dir,
                )
                newest, refused = newest_pipeline_image(clients, platform, arch, k8s, proof)
                decision = _decision(platform, arch, k8s, value, base, newest)
                if decision.reuse is not None:
                    decision = replace(
                        decision, previous=previous_findings(seen.get(decision.reuse))
                    )
                if refused:
                    decision = replace(decision, why="; ".join([decision.why, *refused]))
                out.append(decision)
    return out


def _decision(
    platform: Platform,
    arch: Arch,
    k8s: str,
    value: str,
    base: str,
    newest: aws.OwnedImage | None,
) -> Decision:
    if newest is None:
        return Decision(platform, arch, k8s, value, None, "no earlier pipeline AMI to reuse")
    image = newest.image
    if image.tags.get(FINGERPRINT_TAG) == value:
        return Decision(platform, arch, k8s, value, image.id, f"inputs unchanged since {image.id}")
    previous_base = image.tags.get(SOURCE_TAG)
    if previous_base and previous_base != base:
        why = f"base AMI changed from {previous_base} to {base} (newest was {image.id})"
    elif FINGERPRINT_TAG not in image.tags:
        why = f"{image.id} has no input fingerprint"
    else:
        why = f"inputs changed since {image.id} (scripts, template, variables, level or policy)"
    return Decision(platform, arch, k8s, value, None, why)


def previous_findings(verification: Verification | None) -> drift.PreviousFindings:
    """The vulnerability IDs of the reused AMI's own previous record: its signed
    ``evidence/findings.json`` as verify read it and matched it against the signed digest, for
    its instance in the stored ``verdict.json``. Pure."""
    if verification is None or verification.record_uri is None:
        return drift.PreviousFindings(None, None, "its previous record was not read")
    uri = verification.record_uri
    found = verification.inputs.get(f"evidence/{findings.FINDINGS_FILE}")
    stored = verification.inputs.get("verdict.json")
    if found is None or stored is None:
        return drift.PreviousFindings(uri, None, "its previous record has no findings evidence")
    try:
        amis = json.loads(stored).get("context", {}).get("amis", [])
        document = json.loads(found)
    except (ValueError, AttributeError):
        return drift.PreviousFindings(uri, None, "its previous findings evidence is not JSON")
    instance = next(
        (
            e.get("instance")
            for e in amis
            if isinstance(e, dict) and e.get("ami") == verification.ami_id
        ),
        None,
    )
    ids = drift.vulnerability_ids(document, str(instance)) if instance else None
    if ids is None:
        return drift.PreviousFindings(uri, None, "its previous record lists no findings for it")
    return drift.PreviousFindings(uri, ids)


def build_or_reuse(
    settings: ChainSettings, clients: AwsClients, run_id: str, echo: Echo
) -> tuple[tuple[str, ...], list[Decision]]:
    """The chain's build step: every image built (no ``skip_unchanged``), else only those whose
    inputs changed; returns the AMIs to validate (built and re-validated) and the decisions."""

    decisions = decide(settings, clients) if settings.skip_unchanged else []
    for line in plan_lines(decisions):
        echo(line)
    reused = [d.reuse for d in decisions if d.reuse]
    wanted = (
        [(d.platform.short, d.arch.value) for d in decisions if not d.reuse]
        if settings.skip_unchanged
        else [(p, a) for p in settings.platforms for a in settings.archs]
    )
    built: list[str] = []
    for platform in dict.fromkeys(p for p, _ in wanted):  # one Packer run per platform
        archs = tuple(a for p, a in wanted if p == platform)
        builds = run_build(
            (platform,),
            archs,
            settings.k8s_version,
            settings.level,
            settings.local,
            settings.out_dir / "build",
            echo,
            clients=clients,
            run_id=run_id,
            policy_dir=settings.policy_dir,
            extra_vars=dict(settings.build_vars),
            release_accounts=settings.release.accounts if settings.release else (),
            kms_keys=settings.release.kms_keys if settings.release else None,
            network=NetworkSettings(
                settings.validate.subnet_id,
                settings.validate.security_group_id,
                settings.validate.public_ip,
            ),
        )
        built += [b.ami_id for b in builds]
    return (*built, *reused), decisions


def plan_lines(decisions: Sequence[Decision]) -> list[str]:
    return [
        f"[{d.platform.short}-{d.arch.value}] "
        + (f"skip build, re-validate {d.reuse}: {d.why}" if d.reuse else f"build: {d.why}")
        for d in decisions
    ]


def record_and_compare(
    verdict: Verdict,
    clients: AwsClients,
    release: ReleaseSettings,
    out_dir: Path,
    echo: Echo,
    *,
    decisions: Sequence[Decision] = (),
    evidence: tuple[str | None, str | None] = (None, None),
) -> Verdict:
    """Add the rebuild decisions and the drift report to the verdict, rewrite its reports, and
    record each AMI's FAILED checks and counts as tags for the next comparison."""
    amis = verdict.context.get("amis")
    entries = [e for e in amis if isinstance(e, dict)] if isinstance(amis, list) else []
    judged = verdict.verdict in (Outcome.PASS, Outcome.FAIL)  # an ERROR scan proves nothing
    previous = {d.reuse: d.previous for d in decisions if d.reuse and d.previous is not None}
    report: list[dict[str, Any]] = []
    try:
        with boundary("drift report"):
            for entry in entries if judged else []:
                ami, target = str(entry.get("ami")), str(entry.get("instance"))
                owned = aws.owned_image(clients, ami)
                if owned is None:
                    continue
                now = drift.observed(verdict, target)
                baseline = _baseline(clients, release, owned.image, evidence)
                report.append(
                    drift.compare(
                        ami,
                        release.drift_channel,
                        baseline,
                        now,
                        verdict,
                        previous.get(ami),
                        target,
                    )
                )
                recorded = {
                    FAILED_TAG: drift.encode_failed(now.failed),
                    COUNTS_TAG: drift.encode_counts(now.counts),
                }
                aws.tag(clients, [ami], recorded)
    except PipelineError as exc:  # the report is information: it never changes the verdict
        echo(f"WARNING  drift report incomplete: {exc}")
        report.append({"error": str(exc)})
    context = {**verdict.context, "drift": report}
    if decisions:
        context["rebuild"] = [d.as_dict() for d in decisions]
    verdict = replace(verdict, context=context)
    outputs.write_reports(verdict, out_dir)
    section = drift.summary_sections(context)
    for line in section:  # the console gets the same lines without Markdown markup
        if line:
            echo(line.lstrip("#").strip().replace("**", ""))
    if github.active() and section:  # validate already appended the rest of summary.md
        github.append_step_summary("\n".join(section) + "\n")
    return verdict


def _baseline(
    clients: AwsClients,
    release: ReleaseSettings,
    image: Image,
    evidence: tuple[str | None, str | None] = (None, None),
) -> drift.Baseline | None:
    platform, k8s = image.platform, image.tags.get("cis-ami:kubernetes-version", "")
    if not isinstance(platform, Platform) or not k8s:
        return None
    try:
        name = parameter_name(
            release.parameter_prefix, platform, image.architecture or "", k8s, release.drift_channel
        )
    except ConfigError:
        return None
    current = aws.get_parameter(clients, name)
    owned = aws.owned_image(clients, current) if current else None
    if owned is None:
        return None
    try:
        signed = signed_baseline(clients, owned.image.id, *evidence)
    except PipelineError:  # e.g. no kms:Verify for this role: fall back, labelled as such
        signed = None
    if signed is not None:
        return signed
    tags = owned.image.tags
    return drift.Baseline(
        ami=owned.image.id,
        source=drift.FALLBACK,
        verdict=tags.get("cis:verdict"),
        level=tags.get("cis:level"),
        failed=drift.decode_failed(tags.get(FAILED_TAG)),
        counts=drift.decode_counts(tags.get(COUNTS_TAG)),
    )


def signed_baseline(
    clients: AwsClients, ami: str, bucket: str | None = None, signing_key: str | None = None
) -> drift.Baseline | None:
    """The baseline from the image's signed record: verdict and level from the verified
    statement, per-check results from the stored ``evidence/results.json`` exactly as verify
    read it and matched it against the signed digest (never read again). None when the record
    does not verify or the evidence is incomplete. Calls what pipeline.evidence.verify calls."""
    verification = verify_ami(clients, ami, evidence_bucket=bucket, signing_key=signing_key)
    if not verification.ok or verification.record_uri is None:
        return None
    claims, _ = statement.read(verification.statement or {})
    results_json = verification.inputs.get("evidence/results.json")
    verdict_json = verification.inputs.get("verdict.json")
    if results_json is None or verdict_json is None:
        return None
    return baseline_from_evidence(
        ami, claims.verdict, verification.level, results_json, verdict_json
    )


def baseline_from_evidence(
    ami: str, verdict: str | None, level: str | None, results_json: bytes, verdict_json: bytes
) -> drift.Baseline | None:
    """Pure: the AMI's FAILED checks and counts from stored results (its instance from the
    stored verdict's ``context.amis``). None when the AMI is not in the stored run."""
    try:
        context = json.loads(verdict_json).get("context", {})
        parsed = results.parse_document(json.loads(results_json), "results.json")
    except (ValueError, AttributeError, PipelineError):
        return None
    amis = context.get("amis") if isinstance(context, dict) else None
    instance = next(
        (e.get("instance") for e in amis or [] if isinstance(e, dict) and e.get("ami") == ami),
        None,
    )
    if instance is None:
        return None
    rows = [r for r in parsed.rows if r.target == instance]
    status = {r.check_id: str(r.status.value) for r in rows}
    counts = {k: sum(1 for v in status.values() if v.lower() == k) for k in drift.COUNT_KEYS}
    failed = frozenset(c for c, v in status.items() if v == "FAILED")
    return drift.Baseline(ami, "signed record", verdict, level, failed, counts)
