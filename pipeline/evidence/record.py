"""A validation record judged on its own, pure: signature, subject, input digests, result and
the AMI's tags that repeat it. ``check_record`` does no I/O: the caller hands it what it found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pipeline import gate
from pipeline.evidence import dsse, statement, store, verdicts

# The AMI tags that merely repeat the record; a disagreement means someone changed one of them.
MAX_ENVELOPE_BYTES = 1 << 20  # a record is a few KiB; a planted giant is refused unread
_RUN_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")
_TAG_CLAIMS = ("cis:verdict", "cis:level", "cis:policy-sha256", "cis:scan-arn", "cis:run-id")


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one AMI's record. ``ok`` only when every check passed."""

    ami_id: str
    region: str
    ok: bool  # signature valid, subject + digest match, inputs match, result PASSED
    reasons: tuple[str, ...]  # every reason it is not ok
    statement: dict[str, Any] | None
    level: str | None  # "LEVEL_2"
    policy_sha256: tuple[str, ...]
    time_verified: datetime | None
    local: bool
    record_uri: str | None
    key_id: str | None
    checks: tuple[tuple[str, bool, str], ...] = field(default=(), compare=False)  # name, ok, detail
    # The bytes of each input whose SHA-256 matched the signed statement, by its name beside the
    # record (``evidence/results.json``): what ``regate`` judges, so nothing is read twice.
    inputs: Mapping[str, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Found:
    """What the AWS side found for one AMI (inputs of the pure check)."""

    ami_id: str
    region: str
    facts: statement.ImageFacts | None
    tags: Mapping[str, str]
    bucket: str
    record_uri: str | None
    envelope: bytes | None
    problems: tuple[str, ...] = ()
    account: str | None = None  # the evidence prefix's account (None: not checked)


SignatureCheck = Callable[[dsse.Envelope, dsse.Signature], str | None]
ObjectReader = Callable[[str, str], bytes | None]  # (bucket, key) -> bytes


class _Checks:
    def __init__(self) -> None:
        self.items: list[tuple[str, bool, str]] = []

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.items.append((name, ok, detail))
        return ok

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(detail for _, ok, detail in self.items if not ok)


def check_record(found: Found, signature_ok: SignatureCheck, read: ObjectReader) -> Verification:
    """Every check of one AMI's record; pure apart from ``signature_ok`` and ``read``."""
    checks = _Checks()
    for problem in found.problems:
        checks.add("lookup", False, problem)
    empty = Verification(
        found.ami_id, found.region, False, (), None, None, (), None, True, found.record_uri, None
    )
    if found.envelope is None:
        if not found.problems:
            where = found.record_uri or store.s3_uri(
                found.bucket, f"*/{found.region}/{found.ami_id}/"
            )
            checks.add("record", False, f"no validation record found at {where}")
        return _done(empty, checks)
    uri = found.record_uri or ""
    location = store.parse_s3_uri(uri)
    checks.add(
        "record location",
        _record_key_ok(found, location),
        f"record {uri} is not under {found.region}/{found.ami_id}/ in the evidence bucket "
        f"{found.bucket}",
    )
    pointed = found.tags.get(store.ATTESTATION_SHA_TAG)
    actual = statement.sha256_hex(found.envelope)
    if pointed is not None:
        checks.add(
            "envelope digest",
            pointed == actual,
            f"envelope SHA-256 {actual} differs from the AMI's {store.ATTESTATION_SHA_TAG} tag "
            f"{pointed}",
        )
    try:
        envelope = dsse.parse(found.envelope)
    except dsse.EnvelopeError as exc:
        checks.add("envelope", False, f"{uri}: not a DSSE envelope: {exc}")
        return _done(empty, checks)
    checks.add(
        "payload type",
        envelope.payload_type == dsse.PAYLOAD_TYPE,
        f"envelope payloadType is {envelope.payload_type!r}, not {dsse.PAYLOAD_TYPE}",
    )
    failures = [signature_ok(envelope, s) for s in envelope.signatures]
    good = [s for s, why in zip(envelope.signatures, failures, strict=True) if why is None]
    checks.add(
        "signature",
        bool(good),
        "signature does not verify: " + "; ".join(sorted({w for w in failures if w})),
    )
    key_id = (good or list(envelope.signatures))[0].keyid
    try:
        decoded = json.loads(envelope.payload, object_pairs_hook=unique_keys)
    except _DuplicateKey as exc:
        checks.add("statement", False, f"envelope payload: {exc}")
        return _done(empty, checks)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        checks.add("statement", False, "envelope payload is not a JSON object")
        return _done(empty, checks)
    claims, problems = statement.read(decoded)
    for problem in problems:
        checks.add("statement", False, problem)
    _check_subject(found, claims, checks)
    inputs = _check_inputs(claims, uri, read, checks)
    _check_sections(claims, uri, checks)
    _check_result(claims, checks)
    _check_tags(found, claims, key_id, checks)
    result = Verification(
        ami_id=found.ami_id,
        region=found.region,
        ok=False,
        reasons=(),
        statement=decoded,
        level=claims.level,
        policy_sha256=tuple(d.sha256 for d in (claims.policy, *claims.extra_policies) if d),
        time_verified=claims.time_verified,
        local=claims.local,
        record_uri=uri,
        key_id=key_id,
        inputs=inputs,
    )
    return _done(result, checks)


class _DuplicateKey(ValueError):
    pass


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object without repeated keys: parsers differ on which copy wins (Python's and jq
    take the last, others the first), so a statement with one means different things to
    different auditors and is refused."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(f"duplicate JSON key {key!r}: parsers disagree on its value")
        seen.add(key)
    return dict(pairs)


def _record_key_ok(found: Found, location: tuple[str, str] | None) -> bool:
    """Exactly ``<account>/<region>/<ami-id>/<run>/attestation.dsse.json`` in the evidence
    bucket: no extra or empty folders, no ``..`` or percent-encoded segment, and the expected
    account when it is known."""
    if location is None or location[0] != found.bucket:
        return False
    parts = location[1].split("/")
    return (
        len(parts) == 5
        and parts[1:3] == [found.region, found.ami_id]
        and parts[4] == store.ENVELOPE
        and _RUN_SEGMENT.fullmatch(parts[3]) is not None
        and (found.account is None or parts[0] == found.account)
    )


def _done(result: Verification, checks: _Checks) -> Verification:
    reasons = checks.reasons or (() if result.statement else ("no usable record",))
    return replace(result, ok=not reasons, reasons=reasons, checks=tuple(checks.items))


def _check_subject(found: Found, claims: statement.Claims, checks: _Checks) -> None:
    arn = statement.image_arn(found.region, found.ami_id)
    checks.add(
        "subject",
        claims.subject_name == arn,
        f"the record is about {claims.subject_name}, not {arn}",
    )
    if found.facts is None:
        checks.add("image digest", False, f"{found.ami_id}: no such image in {found.region}")
        return
    checks.add(
        "image digest",
        claims.subject_digest == found.facts.digest,
        f"image digest {found.facts.digest} of {found.ami_id} (owner, snapshots, creation date) "
        f"differs from the signed subject digest {claims.subject_digest}",
    )


def _check_inputs(
    claims: statement.Claims, record_uri: str, read: ObjectReader, checks: _Checks
) -> dict[str, bytes]:
    """Read each signed input once and check its SHA-256; return the bytes that matched."""
    base = record_uri.rsplit("/", 1)[0] + "/"
    names = set()
    verified: dict[str, bytes] = {}
    for item in claims.inputs:
        where = store.parse_s3_uri(item.uri)
        if where is None or not item.uri.startswith(base):
            checks.add("input", False, f"input {item.uri} is not beside the record ({base})")
            continue
        name = item.uri[len(base) :]
        names.add(name)
        body = read(*where)
        if body is None:
            checks.add(
                f"input {name}", False, f"input {item.uri} is missing from the evidence store"
            )
            continue
        got = statement.sha256_hex(body)
        if checks.add(
            f"input {name}",
            got == item.sha256,
            f"input {item.uri}: stored object's SHA-256 {got} differs from the signed "
            f"{item.sha256}",
        ):
            verified[name] = body
    for required in ("evidence/results.json", "evidence/scan.json", "verdict.json"):
        checks.add(
            "inputs complete",
            required in names,
            f"the record names no {required} among its inputs",
        )
    return verified


def _check_sections(claims: statement.Claims, record_uri: str, checks: _Checks) -> None:
    """All three sections stated, combining to the stated verdict, each judged one backed by
    its evidence among the inputs (``pipeline.evidence.verdicts``)."""
    problems = verdicts.problems(claims.sections, claims.verdict)
    for problem in problems:
        checks.add("sections", False, problem)
    if not problems:
        checks.add("sections", True, "")
    base = record_uri.rsplit("/", 1)[0] + "/"
    names = {d.uri[len(base) :] for d in claims.inputs if d.uri.startswith(base)}
    for problem in verdicts.missing_evidence(claims.sections, names):
        checks.add("section evidence", False, problem)


def _check_result(claims: statement.Claims, checks: _Checks) -> None:
    checks.add(
        "result",
        claims.result == statement.PASSED and claims.verdict == gate.Outcome.PASS.value,
        f"the record's result is {claims.result} (gate verdict {claims.verdict}), not PASSED",
    )
    if claims.result == statement.PASSED:
        level = claims.level or "?"
        checks.add(
            "level",
            any(v.endswith(f"_{level}") for v in claims.verified_levels),
            f"verifiedLevels {list(claims.verified_levels)} do not include {level}",
        )


def _check_tags(found: Found, claims: statement.Claims, key_id: str, checks: _Checks) -> None:
    signed = {
        "cis:verdict": claims.verdict,
        "cis:level": claims.level,
        "cis:policy-sha256": claims.policy.sha256 if claims.policy else None,
        "cis:scan-arn": claims.scan_arn,
        "cis:run-id": claims.run_id,
    }
    for tag in _TAG_CLAIMS:
        value = found.tags.get(tag)
        if value is not None:
            checks.add(
                "tags",
                value == signed[tag],
                f"tag {tag}={value} disagrees with the signed record ({signed[tag]})",
            )
    tagged_key = found.tags.get(store.SIGNING_KEY_TAG)
    if tagged_key is not None:
        checks.add(
            "tags",
            tagged_key == key_id,
            f"tag {store.SIGNING_KEY_TAG}={tagged_key} disagrees with the envelope's key {key_id}",
        )
    tagged_local = found.tags.get("cis:local") == "true"
    checks.add(
        "tags",
        tagged_local == claims.local or not tagged_local,
        "tag cis:local=true but the record says it was not made on a local AWS",
    )
