"""Verify an AMI's signed validation record: signature, subject, input digests and result.

``check_record`` is pure; ``verify_ami`` fetches; ``regate`` re-judges the stored evidence.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import commands, gate, policy, results
from pipeline.aws import AwsClients, boundary, is_aws_endpoint, kms, s3
from pipeline.aws.account import caller_account
from pipeline.aws.images import describe_image
from pipeline.errors import AwsError, ConfigError, GateBlocked, PipelineError
from pipeline.evidence import dsse, statement, store

# The AMI tags that merely repeat the record; a disagreement means someone changed one of them.
_AMI_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
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
        location is not None
        and location[0] == found.bucket
        and location[1].split("/")[1:3] == [found.region, found.ami_id],
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
        decoded = json.loads(envelope.payload)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        checks.add("statement", False, "envelope payload is not a JSON object")
        return _done(empty, checks)
    claims, problems = statement.read(decoded)
    for problem in problems:
        checks.add("statement", False, problem)
    _check_subject(found, claims, checks)
    _check_inputs(claims, uri, read, checks)
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
    )
    return _done(result, checks)


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
) -> None:
    base = record_uri.rsplit("/", 1)[0] + "/"
    names = set()
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
        checks.add(
            f"input {name}",
            got == item.sha256,
            f"input {item.uri}: stored object's SHA-256 {got} differs from the signed "
            f"{item.sha256}",
        )
    for required in ("evidence/results.json", "evidence/scan.json", "verdict.json"):
        checks.add(
            "inputs complete",
            required in names,
            f"the record names no {required} among its inputs",
        )


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


# --- The AWS side ----------------------------------------------------------------------------


def find(clients: AwsClients, ami_id: str, bucket: str | None, account: str) -> Found:
    """The AMI's facts and tags and its record (pointer tag, else the newest under its prefix)."""
    bucket = bucket or store.default_bucket(account, clients.region)
    try:
        image = describe_image(clients, ami_id)
    except AwsError as exc:
        return Found(ami_id, clients.region, None, {}, bucket, None, None, (str(exc),))
    facts = store.image_facts(image)
    tags = dict(image.tags)
    prefix = store.ami_prefix(account, clients.region, ami_id)
    records = {
        key: s3.get_object(clients, bucket, key, account)
        for key in s3.list_keys(clients, bucket, prefix, account)
        if key.endswith("/" + store.ENVELOPE)
    }
    newest = _newest(records)
    uri = tags.get(store.ATTESTATION_TAG)
    if uri is None:
        if newest is None:
            return Found(ami_id, clients.region, facts, tags, bucket, None, None)
        uri = store.s3_uri(bucket, newest)
    where = store.parse_s3_uri(uri)
    problems: list[str] = []
    if where is None or where[0] != bucket:
        problems.append(
            f"tag {store.ATTESTATION_TAG}={uri} does not point into the evidence bucket {bucket}"
        )
        return Found(ami_id, clients.region, facts, tags, bucket, uri, None, tuple(problems))
    if newest is not None and where[1] != newest:
        # An older record (an earlier PASS, say) never speaks for an image validated since.
        problems.append(
            f"tag {store.ATTESTATION_TAG} points to {uri}, but the newest record of {ami_id} is "
            f"{store.s3_uri(bucket, newest)}"
        )
    body = (
        records[where[1]]
        if where[1] in records
        else s3.get_object(clients, bucket, where[1], account)
    )
    if body is None:
        problems.append(f"record {uri} does not exist")
    return Found(ami_id, clients.region, facts, tags, bucket, uri, body, tuple(problems))


def _newest(records: Mapping[str, bytes | None]) -> str | None:
    """The key of the record with the latest timeVerified (signature not yet checked: a planted
    "newer" record can only make verification fail, never pass)."""
    floor = datetime.min.replace(tzinfo=UTC)

    def when(key: str) -> tuple[datetime, str]:
        try:
            claims, _ = statement.read(json.loads(dsse.parse(records[key] or b"").payload))
        except (dsse.EnvelopeError, ValueError, AttributeError):
            return floor, key
        return claims.time_verified or floor, key

    return max(records, key=when) if records else None


def verify_ami(
    clients: AwsClients,
    ami_id: str,
    *,
    public_key_pem: bytes | None = None,
    evidence_bucket: str | None = None,
    signing_key: str | None = None,
) -> Verification:
    """Verify ``ami_id``'s record in the clients' region.

    The signature is checked offline against ``public_key_pem`` when given (no KMS call), else
    with kms:Verify against the configured signing key (``signing_key``, default the project's
    alias), never against whatever key the envelope names.
    """
    account = caller_account(clients)
    found = find(clients, ami_id, evidence_bucket, account)
    trusted: list[str | None] = []

    def signature_ok(envelope: dsse.Envelope, sig: dsse.Signature) -> str | None:
        if public_key_pem is not None:
            return dsse.verify_offline(public_key_pem, envelope, sig)
        if not trusted:
            key = kms.describe_key(clients, signing_key or store.DEFAULT_KEY_ALIAS)
            trusted.append(key.arn if key else None)
        if trusted[0] is None:
            return f"signing key {signing_key or store.DEFAULT_KEY_ALIAS} does not exist"
        if kms.verify_digest(clients, trusted[0], envelope.pae_sha256, sig.sig):
            return None
        return f"not signed by {trusted[0]}"

    def read(bucket: str, key: str) -> bytes | None:
        return s3.get_object(clients, bucket, key, account)

    result = check_record(found, signature_ok, read)
    aws = is_aws_endpoint(clients.endpoint_url)
    if result.statement is not None and aws == result.local:
        why = (
            "the record was made on a local AWS: it proves nothing in a real account"
            if aws
            else "a record read from a local AWS claims it was not made on one"
        )
        result = replace(result, ok=False, reasons=(*result.reasons, why))
    return result


def export_public_key(clients: AwsClients, signing_key: str | None = None) -> bytes:
    """The signing key's public key as PEM (for offline verification by auditors)."""
    return dsse.der_to_pem(kms.public_key_der(clients, signing_key or store.DEFAULT_KEY_ALIAS))


# --- Re-running the gate on the stored evidence ---------------------------------------------


@dataclass(frozen=True)
class Regate:
    stored: str | None  # the verdict the record states for this AMI
    recomputed: str  # the gate's verdict for this AMI now, from the stored bytes
    problems: tuple[str, ...]

    @property
    def reproduced(self) -> bool:
        return self.stored == self.recomputed and not self.problems


def regate(clients: AwsClients, verification: Verification) -> Regate:
    """Re-judge the stored evidence with the stored policy bytes as of the record's date."""
    claims, _ = statement.read(verification.statement or {})
    if verification.record_uri is None or verification.time_verified is None:
        return Regate(claims.verdict, "ERROR", ("no record to re-gate",))
    account = caller_account(clients)
    base = verification.record_uri.rsplit("/", 1)[0] + "/"
    stored: dict[str, bytes] = {}
    for item in claims.inputs:
        where = store.parse_s3_uri(item.uri)
        body = s3.get_object(clients, *where, account) if where else None
        if body is not None and item.uri.startswith(base):
            stored[item.uri[len(base) :]] = body
    return regate_bytes(stored, verification.ami_id, verification.time_verified, claims.verdict)


def regate_bytes(
    stored: Mapping[str, bytes], ami_id: str, when: datetime, claimed: str | None
) -> Regate:
    """The pure part of ``regate``: ``stored`` maps prefix-relative keys to their bytes.

    Stored evidence that cannot be judged is a problem of the record, never a crash.
    """
    try:
        return _regate(stored, ami_id, when, claimed)
    except (PipelineError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return Regate(claimed, "ERROR", (f"the stored evidence cannot be re-gated: {exc}",))


def _regate(
    stored: Mapping[str, bytes], ami_id: str, when: datetime, claimed: str | None
) -> Regate:
    needed = ("evidence/results.json", "verdict.json")
    missing = [n for n in needed if n not in stored]
    if missing:
        return Regate(claimed, "ERROR", tuple(f"stored evidence lacks {n}" for n in missing))
    policies = {k: v for k, v in stored.items() if k.startswith("policies/")}
    with tempfile.TemporaryDirectory(prefix="cis-regate-") as tmp:
        folder = Path(tmp) / "evidence"
        folder.mkdir()
        for name, body in stored.items():
            if name.startswith("evidence/") and "/" not in name[len("evidence/") :]:
                (folder / name[len("evidence/") :]).write_bytes(body)
        parsed = results.load(folder / "results.json")
        evidence = commands.load_evidence(folder)
    loaded = {}
    for name, body in sorted(policies.items()):
        pol = policy.parse(body.decode("utf-8"), name)
        loaded[pol.platform] = pol
    chosen = gate.select_policies(parsed.rows, loaded)
    level = evidence.facts.level if evidence.facts else None
    verdict = gate.evaluate(
        parsed.rows,
        chosen,
        when.date(),
        level=level,
        facts=evidence.facts,
        expected_targets=parsed.targets,
        problems=parsed.problems,
        architectures=evidence.architectures,
    )
    context = json.loads(stored["verdict.json"]).get("context", {})
    verdict = replace(verdict, context={"amis": context.get("amis", [])})
    recomputed = store.ami_outcomes(verdict).get(ami_id, gate.Outcome.ERROR.value)
    return Regate(claimed, recomputed, ())


# --- ``invoke verify`` -----------------------------------------------------------------------


def read_public_key(path: str | None) -> bytes | None:
    """The PEM public key file's bytes (None when no path); unusable → ConfigError (exit 2)."""
    if not path:
        return None
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        data = Path(path).read_bytes()
        load_pem_public_key(data)
    except OSError as exc:
        raise ConfigError(f"--public-key {path}: cannot read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"--public-key {path}: not a PEM public key") from None
    return data


def run_verify(
    clients: AwsClients,
    ami_id: str,
    *,
    public_key: str | None = None,
    as_json: bool = False,
    rerun_gate: bool = False,
    evidence_bucket: str | None = None,
    signing_key: str | None = None,
    expected_level: int = 2,
    policy_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> Verification:
    """Verify and report; raise GateBlocked (exit 3) with every reason when it does not hold."""
    if not _AMI_ID.fullmatch(ami_id):
        raise ConfigError(f"--ami {ami_id!r}: not an AMI ID (ami-...)")
    pem = read_public_key(public_key)
    with boundary("verify"):
        try:  # an AMI that does not exist here is a wrong --ami (exit 2), as for validate
            describe_image(clients, ami_id)
        except AwsError as exc:
            if "not found" not in str(exc):
                raise
            raise ConfigError(f"--ami {ami_id}: {exc}") from None
        result = verify_ami(
            clients,
            ami_id,
            public_key_pem=pem,
            evidence_bucket=evidence_bucket,
            signing_key=signing_key,
        )
        reasons = list(result.reasons)
        if result.statement is not None and not _level_at_least(result.level, expected_level):
            reasons.append(f"validated at {result.level}, LEVEL_{expected_level} is expected")
        again = regate(clients, result) if rerun_gate and result.statement is not None else None
    if again is not None and not again.reproduced:
        reasons.append(
            f"re-gating the stored evidence gives {again.recomputed}, the record says "
            f"{again.stored}" + "".join(f"; {p}" for p in again.problems)
        )
    policy_note = _policy_note(result, policy_dir)
    if as_json:
        echo(json.dumps(_as_json(result, reasons, again, policy_note), indent=2, default=str))
    else:
        _echo_human(result, reasons, again, policy_note, echo)
    if reasons:
        raise GateBlocked(f"{ami_id}: not verified", problems=[f"{ami_id}: {r}" for r in reasons])
    return result


def _level_at_least(level: str | None, expected: int) -> bool:
    number = (level or "").removeprefix("LEVEL_")
    return number.isdigit() and int(number) >= expected


def _policy_note(result: Verification, policy_dir: Path | None) -> str | None:
    if result.statement is None or policy_dir is None:
        return None
    claims, _ = statement.read(result.statement)
    if claims.policy is None or claims.platform is None:
        return None
    try:
        current = {k.value: v for k, v in policy.load_all(policy.discover(policy_dir)).items()}
    except ConfigError as exc:
        return f"current policy: unreadable ({exc})"
    now = current.get(claims.platform)
    if now is None:
        return f"current policy: none for {claims.platform} in {policy_dir}"
    same = "the same" if now.sha256 == claims.policy.sha256 else "DIFFERENT"
    return (
        f"policy: validated under {claims.policy.uri} sha256 {claims.policy.sha256}; the current "
        f"{store.policy_uri(now)} is sha256 {now.sha256} ({same})"
    )


def _as_json(
    result: Verification, reasons: list[str], again: Regate | None, policy_note: str | None
) -> dict[str, Any]:
    return {
        "ami": result.ami_id,
        "region": result.region,
        "verified": not reasons,
        "reasons": reasons,
        "record": result.record_uri,
        "keyId": result.key_id,
        "local": result.local,
        "level": result.level,
        "timeVerified": result.time_verified.isoformat() if result.time_verified else None,
        "policy": policy_note,
        "checks": [{"check": n, "ok": ok, "detail": "" if ok else d} for n, ok, d in result.checks],
        "regate": None
        if again is None
        else {"stored": again.stored, "recomputed": again.recomputed, "problems": again.problems},
        "statement": result.statement,
    }


def _echo_human(
    result: Verification,
    reasons: list[str],
    again: Regate | None,
    policy_note: str | None,
    echo: Callable[[str], None],
) -> None:
    passed = sum(ok for _, ok, _ in result.checks)
    echo(f"{result.ami_id} ({result.region}): {passed}/{len(result.checks)} checks passed")
    if result.record_uri:
        echo(f"record: {result.record_uri} (key {result.key_id})")
    if policy_note:
        echo(policy_note)
    if again is not None:
        echo(f"re-gate: stored {again.stored}, recomputed {again.recomputed}")
    if not reasons:
        local = " (made on a local AWS)" if result.local else ""
        when = result.time_verified.isoformat() if result.time_verified else "?"
        echo(f"VERIFIED {result.ami_id}: PASSED at {result.level}, verified {when}{local}")


def export_public_key_file(
    clients: AwsClients, path: str, signing_key: str | None, echo: Callable[[str], None]
) -> None:
    """Write the signing key's PEM public key to ``path`` for offline verification."""
    with boundary("verify --export-public-key"):
        pem = export_public_key(clients, signing_key)
    try:
        Path(path).write_bytes(pem)
    except OSError as exc:
        raise ConfigError(f"--export-public-key {path}: cannot write: {exc.strerror}") from None
    echo(f"public key of {signing_key or store.DEFAULT_KEY_ALIAS} written to {path}")
