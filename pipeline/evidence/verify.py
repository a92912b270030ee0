"""Verify an AMI's signed validation record: signature, subject, input digests and result.

``verify_ami`` finds the record and checks it (``record.check_record``); ``run_verify`` is
``invoke verify``; ``regate`` (``--regate``) re-judges the stored evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline import policy
from pipeline.aws import AwsClients, boundary, is_aws_endpoint, kms, s3
from pipeline.aws.account import caller_account
from pipeline.aws.images import Image, describe_image
from pipeline.channels import DEFAULT_PREFIX
from pipeline.errors import AwsError, ConfigError, GateBlocked
from pipeline.evidence import dsse, statement, store, verdicts
from pipeline.evidence.newest import Signed, newest_record, prove
from pipeline.evidence.record import (
    MAX_ENVELOPE_BYTES,
    Found,
    SignatureCheck,
    Verification,
    check_record,
)
from pipeline.evidence.regate import Regate, regate
from pipeline.evidence.revocation import revocation

# --- The AWS side ----------------------------------------------------------------------------

_AMI_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")


def find(
    clients: AwsClients,
    ami_id: str,
    bucket: str | None,
    account: str,
    signature_ok: SignatureCheck | None = None,
) -> Found:
    """The AMI's facts and tags and its record: the newest by signed content under its prefix
    (``pipeline.evidence.newest``), which the pointer tag, when set, must name."""
    bucket = bucket or store.default_bucket(account, clients.region)
    try:
        image = describe_image(clients, ami_id)
    except AwsError as exc:
        return Found(ami_id, clients.region, None, {}, bucket, None, None, (str(exc),))
    facts = store.image_facts(image)
    tags = dict(image.tags)
    prefix = store.ami_prefix(account, clients.region, ami_id)
    keys = [
        key
        for key in s3.list_keys(clients, bucket, prefix, account)
        if key.endswith("/" + store.ENVELOPE)
    ]
    bodies: dict[str, bytes] = {}  # what was proven is what is checked: no second read

    def read(key: str) -> Signed | str:
        try:
            body = s3.get_object(clients, bucket, key, account, max_bytes=MAX_ENVELOPE_BYTES)
        except s3.ObjectTooLarge:
            return f"is larger than {MAX_ENVELOPE_BYTES} bytes"
        if body is None:
            return "vanished while it was read"
        bodies[key] = body
        return prove(body, signature_ok)

    newest, problems = newest_record(
        keys, prefix, statement.image_arn(clients.region, ami_id), read
    )
    found = list(problems)  # when no record proves itself, the pointed one is still checked
    uri = tags.get(store.ATTESTATION_TAG) or (store.s3_uri(bucket, newest) if newest else None)
    if uri is None:
        return Found(ami_id, clients.region, facts, tags, bucket, None, None, problems, account)
    where = store.parse_s3_uri(uri)
    if where is None or where[0] != bucket:
        found.append(
            f"tag {store.ATTESTATION_TAG}={uri} does not point into the evidence bucket {bucket}"
        )
        return Found(ami_id, clients.region, facts, tags, bucket, uri, None, tuple(found), account)
    if newest is not None and where[1] != newest:
        # An older record (an earlier PASS, say) never speaks for an image validated since.
        found.append(
            f"tag {store.ATTESTATION_TAG} points to {uri}, but the newest record of {ami_id} is "
            f"{store.s3_uri(bucket, newest)}"
        )
    body: bytes | None = bodies.get(where[1])
    if body is None:
        try:
            body = s3.get_object(clients, bucket, where[1], account, max_bytes=MAX_ENVELOPE_BYTES)
        except s3.ObjectTooLarge as exc:
            found.append(f"record {exc}: not a record this pipeline signs")
            return Found(
                ami_id, clients.region, facts, tags, bucket, uri, None, tuple(found), account
            )
    if body is None:
        found.append(f"record {uri} does not exist")
    return Found(ami_id, clients.region, facts, tags, bucket, uri, body, tuple(found), account)


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
    trusted: list[str | None] = []
    unusable: list[str] = []

    def signature_ok(envelope: dsse.Envelope, sig: dsse.Signature) -> str | None:
        if public_key_pem is not None:
            return dsse.verify_offline(public_key_pem, envelope, sig)
        name = signing_key or store.DEFAULT_KEY_ALIAS
        if not trusted:
            key = kms.describe_key(clients, name)
            unusable.extend(key.problems() if key else [f"{name} does not exist"])
            trusted.append(None if unusable or key is None else key.arn)
        if trusted[0] is None:  # a disabled or re-pointed key verifies nothing
            return f"signing key {name}: " + "; ".join(unusable)
        if kms.verify_digest(clients, trusted[0], envelope.pae_sha256, sig.sig):
            return None
        return f"not signed by {trusted[0]}"

    def read(bucket: str, key: str) -> bytes | None:
        return s3.get_object(clients, bucket, key, account)

    found = find(clients, ami_id, evidence_bucket, account, signature_ok)
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
    parameter_prefix: str | None = None,
    pinned_key: str | None = None,
) -> Verification:
    """Verify and report; raise GateBlocked (exit 3) with every reason when it does not hold.

    ``pinned_key`` (``pipeline.signing_key_sha256``: ``sha256:<hex>`` of the signing key's
    public key) makes an offline check refuse any other ``--public-key`` file: whoever hands an
    auditor the PEM otherwise decides what verifies.
    A revoked AMI (``invoke revoke``: its tag, or the record under ``<parameter_prefix>/revoked/``,
    for a regional copy its source's) is reported REVOKED and refused, however good its record.
    """
    if not _AMI_ID.fullmatch(ami_id):
        raise ConfigError(f"--ami {ami_id!r}: not an AMI ID (ami-...)")
    pem = read_public_key(public_key)
    if pinned_key is not None and not _FINGERPRINT.fullmatch(str(pinned_key)):
        raise ConfigError(
            f"invoke.yaml: $.pipeline.signing_key_sha256: {pinned_key!r} is not sha256:<64 hex>"
        )
    with boundary("verify"):
        try:  # an AMI that does not exist here is a wrong --ami (exit 2), as for validate
            image = describe_image(clients, ami_id)
        except AwsError as exc:
            if "not found" not in str(exc):
                raise
            raise ConfigError(f"--ami {ami_id}: {exc}") from None
        revoked = revocation_status(clients, image, parameter_prefix)
        result = verify_ami(
            clients,
            ami_id,
            public_key_pem=pem,
            evidence_bucket=evidence_bucket,
            signing_key=signing_key,
        )
        reasons = list(result.reasons)
        if revoked is not None:
            reasons.append(revoked)
        if pem is not None and pinned_key is not None and key_fingerprint(pem) != pinned_key:
            reasons.append(
                f"--public-key {public_key} is {key_fingerprint(pem)}, not the pinned signing "
                f"key {pinned_key} (pipeline.signing_key_sha256)"
            )
        if result.statement is not None and not _level_at_least(result.level, expected_level):
            reasons.append(f"validated at {result.level}, LEVEL_{expected_level} is expected")
        again = regate(result) if rerun_gate and result.statement is not None else None
    if again is not None and not again.reproduced:
        if again.stored != again.recomputed or again.problems or not again.sections:
            reasons.append(
                f"re-gating the stored evidence gives {again.recomputed}, the record says "
                f"{again.stored}" + "".join(f"; {p}" for p in again.problems)
            )
        reasons += [f"re-gate {line}" for line in again.mismatches]  # one per section
    policy_note = _policy_note(result, policy_dir)
    offline = key_fingerprint(pem) if pem is not None else None  # an offline check's trust root
    if as_json:
        doc = {**_as_json(result, reasons, again, policy_note), "revoked": revoked}
        echo(json.dumps({**doc, "publicKey": offline}, indent=2, default=str))
    else:
        if offline is not None:
            echo(f"signature checked offline with {public_key} ({offline})")
        _echo_human(result, reasons, again, policy_note, echo)
        if revoked is not None:
            echo(f"{ami_id}: {revoked}")
    if reasons:
        raise GateBlocked(f"{ami_id}: not verified", problems=[f"{ami_id}: {r}" for r in reasons])
    return result


def revocation_status(clients: AwsClients, image: Image, prefix: str | None) -> str | None:
    """``REVOKED: <why>`` (``pipeline.evidence.revocation``), or None when not revoked.
    When the revocation record cannot be read (no ssm:GetParameter, say), that is the answer:
    an AMI whose revocation cannot be ruled out is not trusted."""
    try:
        why = revocation(clients, prefix or DEFAULT_PREFIX, image)
    except AwsError as exc:
        return f"revocation status unknown, so not trusted: {exc}"
    return None if why is None else f"REVOKED: {why}"


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
        else {
            "stored": again.stored,
            "recomputed": again.recomputed,
            "problems": again.problems,
            "sections": [
                {
                    "section": s.name,
                    "reproduced": s.reproduced,
                    "stored": s.stored,
                    "recomputed": s.recomputed,
                }
                for s in again.sections
            ],
        },
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
        for part in again.sections:
            state = "reproduced" if part.reproduced else "NOT REPRODUCED"
            echo(
                f"  {verdicts.LABEL[part.name]}: {verdicts.describe(dict(part.recomputed))} {state}"
            )
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
    echo(
        f"public key of {signing_key or store.DEFAULT_KEY_ALIAS} written to {path} "
        f"(fingerprint {key_fingerprint(pem)}: keep it where the AMI's supplier cannot change it)"
    )


def key_fingerprint(pem: bytes) -> str:
    """``sha256:<hex>`` of the PEM public key's DER SubjectPublicKeyInfo (what an auditor
    compares with the fingerprint recorded when the key was exported)."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )

    der = load_pem_public_key(pem).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + statement.sha256_hex(der)
