"""The validation record: an in-toto Statement v1 whose predicate is a SLSA VSA v1. Pure.

The subject digest binds it to the image (``ImageFacts``); project fields are annotations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
VERIFIER_ID = "urn:eks-cis-ami-pipeline:validate"
PROJECT = "eks-cis-ami-pipeline"
PASSED, FAILED = "PASSED", "FAILED"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_arn(region: str, ami_id: str) -> str:
    return f"arn:aws:ec2:{region}::image/{ami_id}"


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """The facts of an AMI the subject digest covers (from ec2:DescribeImages).

    Subject digest: ``sha256`` over the canonical JSON (sorted keys, no white space, UTF-8) of
    ``{"ami", "region", "owner", "architecture", "rootDeviceName", "snapshots" (sorted EBS
    snapshot IDs), "creationDate"}`` as DescribeImages reports them. A record of one image can
    therefore never describe another, nor a re-registration from other snapshots.
    """

    ami_id: str
    region: str
    owner_id: str | None
    architecture: str | None
    root_device_name: str | None
    snapshot_ids: tuple[str, ...]
    creation_date: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ami": self.ami_id,
            "region": self.region,
            "owner": self.owner_id,
            "architecture": self.architecture,
            "rootDeviceName": self.root_device_name,
            "snapshots": sorted(self.snapshot_ids),
            "creationDate": self.creation_date,
        }

    @property
    def digest(self) -> str:
        return sha256_hex(canonical_json(self.as_dict()))


def verified_level(platform: str, benchmark_version: str, level: int) -> str:
    """e.g. ``CIS_AMAZON_LINUX_2023_V1.0.0_LEVEL_2``."""
    return f"CIS_{platform}_V{benchmark_version}_LEVEL_{level}"


@dataclass(frozen=True, slots=True)
class Digest:
    uri: str
    sha256: str


@dataclass(frozen=True)
class Record:
    """Everything one AMI's statement says."""

    image: ImageFacts
    time_verified: datetime
    verdict: str  # the gate's outcome for this AMI: PASS, FAIL or ERROR
    level: int
    platform: str
    benchmark: str
    benchmark_version: str
    policy: Digest
    extra_policies: tuple[Digest, ...]
    inputs: tuple[Digest, ...]
    scan_arn: str
    run_id: str
    account: str
    local: bool
    version: str
    commit: str
    kubernetes_version: str | None = None  # the build's, from its provenance tag at validation
    # The AMI's three sections (``pipeline.evidence.verdicts.for_target``): CIS, node,
    # vulnerabilities, each with its verdict and counts; ``verdict`` is their worst.
    sections: Mapping[str, Any] | None = None

    @property
    def result(self) -> str:
        """PASSED only when the gate passed this AMI (all three sections)."""
        return PASSED if self.verdict == "PASS" else FAILED


def build(record: Record) -> dict[str, Any]:
    """The statement as a JSON-ready dict."""
    arn = image_arn(record.image.region, record.image.ami_id)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": arn,
                "digest": {"sha256": record.image.digest},
                "annotations": {"imageFacts": record.image.as_dict()},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {
                "id": VERIFIER_ID,
                "version": {PROJECT: record.version, "commit": record.commit},
            },
            "timeVerified": _rfc3339(record.time_verified),
            "resourceUri": arn,
            "policy": _descriptor(record.policy),
            "inputAttestations": [_descriptor(d) for d in record.inputs],
            "verificationResult": record.result,
            "verifiedLevels": [
                verified_level(record.platform, record.benchmark_version, record.level)
            ]
            if record.result == PASSED
            else [],
            "annotations": {
                "verdict": record.verdict,
                "level": f"LEVEL_{record.level}",
                "platform": record.platform,
                "kubernetesVersion": record.kubernetes_version,
                "benchmark": record.benchmark,
                "benchmarkVersion": record.benchmark_version,
                "scanArn": record.scan_arn,
                "runId": record.run_id,
                "account": record.account,
                "local": record.local,
                "extraPolicies": [_descriptor(d) for d in record.extra_policies],
                "sections": dict(record.sections) if record.sections is not None else None,
            },
        },
    }


def _descriptor(d: Digest) -> dict[str, Any]:
    return {"uri": d.uri, "digest": {"sha256": d.sha256}}


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Claims:
    """What a statement claims, read defensively (missing fields are None/empty)."""

    subject_name: str | None
    subject_digest: str | None
    result: str | None
    verdict: str | None
    level: str | None
    verified_levels: tuple[str, ...]
    time_verified: datetime | None
    policy: Digest | None
    extra_policies: tuple[Digest, ...]
    inputs: tuple[Digest, ...]
    scan_arn: str | None
    run_id: str | None
    local: bool
    platform: str | None
    kubernetes_version: str | None
    sections: Mapping[str, Any] | None = None  # as signed; ``verdicts.problems`` judges it


def read(statement: Mapping[str, Any]) -> tuple[Claims, list[str]]:
    """The claims of a decoded statement and every structural problem with it."""
    problems = []
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"statement: _type is {statement.get('_type')!r}, not {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(
            f"statement: predicateType is {statement.get('predicateType')!r}, not {PREDICATE_TYPE}"
        )
    subjects = statement.get("subject")
    subject: Mapping[str, Any] = {}
    if isinstance(subjects, list) and len(subjects) == 1 and isinstance(subjects[0], dict):
        subject = subjects[0]
    else:
        problems.append("statement: subject must name exactly one image")
    pred = _map(statement.get("predicate"))
    notes = _map(pred.get("annotations"))
    when = _time(pred.get("timeVerified"))
    if when is None:
        problems.append("statement: predicate.timeVerified missing or not RFC 3339")
    claims = Claims(
        subject_name=_str(subject.get("name")),
        subject_digest=_str(_map(subject.get("digest")).get("sha256")),
        result=_str(pred.get("verificationResult")),
        verdict=_str(notes.get("verdict")),
        level=_str(notes.get("level")),
        verified_levels=tuple(str(v) for v in _list(pred.get("verifiedLevels"))),
        time_verified=when,
        policy=_digest(pred.get("policy")),
        extra_policies=_digests(notes.get("extraPolicies")),
        inputs=_digests(pred.get("inputAttestations")),
        scan_arn=_str(notes.get("scanArn")),
        run_id=_str(notes.get("runId")),
        local=notes.get("local") is not False,  # anything but an explicit false is local
        platform=_str(notes.get("platform")),
        kubernetes_version=_str(notes.get("kubernetesVersion")),
        sections=notes.get("sections") if isinstance(notes.get("sections"), dict) else None,
    )
    return claims, problems


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _digest(value: Any) -> Digest | None:
    item = _map(value)
    uri, sha = _str(item.get("uri")), _str(_map(item.get("digest")).get("sha256"))
    return Digest(uri, sha) if uri is not None and sha is not None else None


def _digests(value: Any) -> tuple[Digest, ...]:
    return tuple(d for d in (_digest(v) for v in _list(value)) if d is not None)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
