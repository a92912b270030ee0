"""The local AWS signs ``MessageType=DIGEST`` as AWS KMS does: over the original message, so any
ECDSA verifier accepts the signature; a bad signature is an error, not ``SignatureValid=false``."""

from __future__ import annotations

import hashlib

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from pipeline.aws import AwsClients, kms
from pipeline.localaws import LocalAws

MESSAGE = b"x" * 5000  # more than RAW's 4096 bytes: what a DSSE PAE of a statement can be


@pytest.fixture
def key(aws: LocalAws, clients: AwsClients) -> str:
    return kms.create_signing_key(clients, "alias/test-signing", {}).arn


def _public(clients: AwsClients, key: str) -> ec.EllipticCurvePublicKey:
    loaded = load_der_public_key(kms.public_key_der(clients, key))
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    return loaded


def test_a_digest_signature_verifies_over_the_original_message(
    clients: AwsClients, key: str
) -> None:
    arn, sig = kms.sign_digest(clients, "alias/test-signing", hashlib.sha256(MESSAGE).digest())
    assert arn == key
    _public(clients, key).verify(sig, MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert kms.verify_digest(clients, key, hashlib.sha256(MESSAGE).digest(), sig)
    assert not kms.verify_digest(clients, key, hashlib.sha256(b"other").digest(), sig)


def test_raw_messages_still_sign_as_before(clients: AwsClients, key: str) -> None:
    assert clients.kms is not None
    sig = clients.kms.sign(
        KeyId=key, Message=b"short", MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]
    _public(clients, key).verify(sig, b"short", ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    ("message", "message_type", "code"),
    [
        (b"\x00" * 31, "DIGEST", "ValidationException"),
        (b"x" * 4097, "RAW", "ValidationException"),
    ],
)
def test_wrong_sizes_are_refused(
    clients: AwsClients, key: str, message: bytes, message_type: str, code: str
) -> None:
    assert clients.kms is not None
    with pytest.raises(ClientError) as caught:
        clients.kms.sign(
            KeyId=key,
            Message=message,
            MessageType=message_type,  # type: ignore[arg-type]
            SigningAlgorithm="ECDSA_SHA_256",
        )
    assert caught.value.response["Error"]["Code"] == code


def test_an_unknown_key_is_not_found(clients: AwsClients, key: str) -> None:
    assert kms.describe_key(clients, "alias/nobody") is None
    with pytest.raises(Exception, match="NotFoundException"):
        kms.sign_digest(clients, "alias/nobody", bytes(32))
