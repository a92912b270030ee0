"""DSSE envelopes (github.com/secure-systems-lab/dsse): PAE, JSON form, ECDSA P-256 checks.

Pure: the signature is made elsewhere (KMS); this module encodes, parses and verifies offline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

PAYLOAD_TYPE = "application/vnd.in-toto+json"


class EnvelopeError(ValueError):
    """The bytes are not a well-formed DSSE envelope (the message says what is wrong)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``, LEN in ASCII decimal bytes."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signature:
    keyid: str
    sig: bytes  # DER-encoded ECDSA signature


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @property
    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    @property
    def pae_sha256(self) -> bytes:
        """What KMS signs (``MessageType=DIGEST``): the SHA-256 of the PAE bytes."""
        return hashlib.sha256(self.pae).digest()

    def to_json(self) -> bytes:
        """The stored form: stable key order, base64 (standard, padded) payload and signatures."""
        return json.dumps(
            {
                "payloadType": self.payload_type,
                "payload": base64.b64encode(self.payload).decode("ascii"),
                "signatures": [
                    {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                    for s in self.signatures
                ],
            },
            indent=2,
            sort_keys=True,
        ).encode("utf-8")


def parse(data: bytes) -> Envelope:
    """Parse a stored envelope; raise EnvelopeError naming the JSON path of the problem."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise EnvelopeError("$: not an object")
    payload_type = raw.get("payloadType")
    if not isinstance(payload_type, str):
        raise EnvelopeError("$.payloadType: missing or not a string")
    signatures = raw.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("$.signatures: missing or empty")
    sigs = []
    for i, item in enumerate(signatures):
        if not isinstance(item, dict) or not isinstance(item.get("keyid", ""), str):
            raise EnvelopeError(f"$.signatures[{i}]: not an object with a string keyid")
        sigs.append(
            Signature(str(item.get("keyid", "")), _b64(item.get("sig"), f"$.signatures[{i}].sig"))
        )
    return Envelope(payload_type, _b64(raw.get("payload"), "$.payload"), tuple(sigs))


def _b64(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{path}: missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{path}: not base64") from None


def verify_offline(public_key_pem: bytes, envelope: Envelope, signature: Signature) -> str | None:
    """Check ``signature`` over the envelope's PAE with an ECDSA P-256 PEM public key.

    Returns None when it verifies, else why not (bad key file, wrong curve, bad signature).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(public_key_pem)
    except (ValueError, TypeError) as exc:
        return f"public key: not a PEM public key ({exc})"
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        return "public key: not an ECDSA P-256 (ECC_NIST_P256) key"
    try:
        key.verify(signature.sig, envelope.pae, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "signature does not verify with the given public key"
    return None


def der_to_pem(der: bytes) -> bytes:
    """A DER SubjectPublicKeyInfo (what kms:GetPublicKey returns) as PEM."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_public_key,
    )

    return load_der_public_key(der).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
