"""The evidence store: key layout, what one validation run uploads, and publishing the records.

Every prefix is written once and never overwritten; see ``LAYOUT``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pipeline
from pipeline import catalog, evidence_keys, gate
from pipeline import tags as tag_keys
from pipeline.aws import AwsClients, kms, s3
from pipeline.aws.images import Image
from pipeline.errors import ConfigError
from pipeline.evidence import dsse, statement, verdicts
from pipeline.policy import ExceptionsPolicy

LAYOUT = evidence_keys.LAYOUT
ENVELOPE = evidence_keys.ENVELOPE
DEFAULT_KEY_ALIAS = "alias/eks-cis-ami-pipeline-signing"
ATTESTATION_TAG = tag_keys.ATTESTATION_TAG
ATTESTATION_SHA_TAG = tag_keys.ATTESTATION_SHA_TAG
SIGNING_KEY_TAG = tag_keys.SIGNING_KEY_TAG
ROOT = Path(pipeline.__file__).resolve().parent.parent
REPORTS = evidence_keys.REPORTS
default_bucket = evidence_keys.default_bucket
ami_prefix = evidence_keys.ami_prefix
run_prefix = evidence_keys.run_prefix


releases_prefix = evidence_keys.releases_prefix
release_key = evidence_keys.release_key


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of ``s3://bucket/key``, or None when ``uri`` is not one."""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    return (bucket, key) if bucket and key else None


def fresh_prefix(clients: AwsClients, bucket: str, account: str, ami_id: str, run_id: str) -> str:
    """The run's prefix; a resumed run that published before gets ``<run-id>~2/``, ``~3/``..."""
    base = run_prefix(account, clients.region, ami_id, run_id)
    candidate, attempt = base, 1
    while s3.list_keys(clients, bucket, candidate, account):
        attempt += 1
        candidate = f"{base[:-1]}~{attempt}/"
    return candidate


@dataclass(frozen=True, slots=True)
class EvidenceObject:
    key: str  # relative to the run prefix
    body: bytes
    content_type: str


def image_facts(image: Image) -> statement.ImageFacts:
    return statement.ImageFacts(
        ami_id=image.id,
        region=image.region,
        owner_id=image.owner_id,
        architecture=image.architecture,
        root_device_name=image.root_device_name,
        snapshot_ids=image.snapshot_ids,
        creation_date=image.creation_date,
    )


def policy_uri(policy: ExceptionsPolicy) -> str:
    """The policy file's path relative to the repository (its name when outside it)."""
    path = Path(policy.source).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def catalogue_identity(platform: catalog.Platform) -> dict[str, Any]:
    """Benchmark, version, platform and the SHA-256 of the shipped catalogue file."""
    cat = catalog.load(platform)
    name = f"{platform.value.lower()}-v{cat.version}.json"
    data = resources.files("pipeline").joinpath("data", "cis", name).read_bytes()
    return {
        "benchmark": cat.benchmark,
        "version": cat.version,
        "platform": platform.value,
        "file": f"pipeline/data/cis/{name}",
        "sha256": statement.sha256_hex(data),
    }


def plan_uploads(
    out_dir: Path, policies: Sequence[ExceptionsPolicy], platform: catalog.Platform | None
) -> list[EvidenceObject]:
    """Everything one AMI's prefix receives besides the envelope (files that exist)."""
    objects = [
        EvidenceObject(key, path.read_bytes(), kind)
        for rel, key, kind in REPORTS
        if (path := out_dir / rel).is_file()
    ]
    for pol in policies:
        objects.append(
            EvidenceObject(
                f"{evidence_keys.POLICIES}{Path(pol.source).name}",
                Path(pol.source).read_bytes(),
                "application/yaml",
            )
        )
    if platform is not None:
        body = json.dumps(catalogue_identity(platform), indent=2, sort_keys=True).encode()
        objects.append(EvidenceObject(evidence_keys.CATALOGUE, body, "application/json"))
    return objects


def ami_outcomes(verdict: gate.Verdict) -> dict[str, str]:
    """The gate's outcome per AMI (PASS/FAIL/ERROR): the worst of its test instance's three
    sections (``pipeline.evidence.verdicts``); a section untrusted run-wide passes no AMI."""
    return verdicts.ami_outcomes(verdict)


def _instances(verdict: gate.Verdict) -> dict[str, str]:
    amis = verdict.context.get("amis", [])
    return {
        str(e["ami"]): str(e["instance"])
        for e in (amis if isinstance(amis, list) else [])
        if isinstance(e, dict)
    }


def publish(
    clients: AwsClients,
    *,
    bucket: str,
    key_id: str,
    account: str,
    run_id: str,
    level: int,
    local: bool,
    now: datetime,
    out_dir: Path,
    images: Sequence[Image],
    verdict: gate.Verdict,
    policies: Mapping[catalog.Platform, ExceptionsPolicy],
    commit: str,
    echo: Callable[[str], None],
    fresh_run: bool = False,
) -> dict[str, dict[str, str]]:
    """Upload each AMI's evidence, sign its record and store the envelope.

    ``fresh_run``: the run ID was made by this run, so its prefix cannot hold an earlier upload
    and is not listed (a resumed run's is: it may have published, see ``fresh_prefix``). Every
    upload is conditional (``If-None-Match: *``) either way, so nothing is ever overwritten.
    Returns the pointer tags for each AMI (``cis:attestation``, ``-sha256``, ``cis:signing-key``).
    """
    instances = _instances(verdict)
    used = [
        policies[i.platform] for i in images if i.platform is not None and i.platform in policies
    ]
    used = list({p.source: p for p in used}.values())
    scan_arn = str(verdict.context.get("scan_arn", "none"))
    tags: dict[str, dict[str, str]] = {}
    for image in images:
        if image.platform is None or image.platform not in policies:
            raise ConfigError(f"{image.id}: no exceptions policy, so no record can be signed")
        if fresh_run:
            prefix = run_prefix(account, clients.region, image.id, run_id)
        else:
            prefix = fresh_prefix(clients, bucket, account, image.id, run_id)
        inputs = []
        for obj in plan_uploads(out_dir, used, image.platform):
            key = prefix + obj.key
            sha = s3.put_new_object(clients, bucket, key, obj.body, account, obj.content_type)
            inputs.append(statement.Digest(s3_uri(bucket, key), sha))
        own = policies[image.platform]
        cat = catalog.load(image.platform)
        stated = verdicts.for_target(
            verdict, instances.get(image.id, ""), own.vulnerabilities.digest
        )
        record = statement.Record(
            image=image_facts(image),
            time_verified=now,
            verdict=verdicts.combined(stated),
            level=level,
            platform=image.platform.value,
            benchmark=cat.benchmark,
            benchmark_version=cat.version,
            policy=statement.Digest(policy_uri(own), own.sha256),
            extra_policies=tuple(
                statement.Digest(policy_uri(p), p.sha256) for p in used if p is not own
            ),
            inputs=tuple(inputs),
            scan_arn=scan_arn,
            run_id=run_id,
            account=account,
            local=local,
            version=pipeline.__version__,
            commit=commit,
            kubernetes_version=image.tags.get("cis-ami:kubernetes-version"),
            sections=stated,
        )
        payload = statement.canonical_json(statement.build(record))
        unsigned = dsse.Envelope(dsse.PAYLOAD_TYPE, payload, ())
        key_arn, sig = kms.sign_digest(clients, key_id, unsigned.pae_sha256, echo=echo)
        envelope = dsse.Envelope(dsse.PAYLOAD_TYPE, payload, (dsse.Signature(key_arn, sig),))
        body = envelope.to_json()
        key = prefix + ENVELOPE
        sha = s3.put_new_object(clients, bucket, key, body, account, "application/json")
        echo(f"{image.id}: signed record {s3_uri(bucket, key)} ({record.result})")
        tags[image.id] = {
            ATTESTATION_TAG: s3_uri(bucket, key),
            ATTESTATION_SHA_TAG: sha,
            SIGNING_KEY_TAG: key_arn,
        }
    return tags
