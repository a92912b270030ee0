"""KMS: the pipeline's asymmetric signing key (ECC_NIST_P256, ECDSA_SHA_256), sign and verify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.errors import AwsError

IAM_ACTIONS: tuple[str, ...] = (
    "kms:CreateKey",
    "kms:CreateAlias",
    "kms:TagResource",
    "kms:DescribeKey",
    "kms:Sign",
    "kms:Verify",
    "kms:GetPublicKey",
)
KEY_SPEC = "ECC_NIST_P256"
ALGORITHM = "ECDSA_SHA_256"


def _kms(clients: AwsClients) -> Any:
    if clients.kms is None:
        raise AwsError("no KMS client in this client bundle")
    return clients.kms


@dataclass(frozen=True, slots=True)
class SigningKey:
    arn: str
    key_spec: str
    key_usage: str
    enabled: bool

    def problems(self) -> list[str]:
        """Why this key cannot sign validation records (empty: it can)."""
        found = []
        if self.key_spec != KEY_SPEC or self.key_usage != "SIGN_VERIFY":
            found.append(
                f"{self.arn} is {self.key_spec}/{self.key_usage}, not {KEY_SPEC}/SIGN_VERIFY"
            )
        if not self.enabled:
            found.append(f"{self.arn} is not enabled")
        return found


def describe_key(clients: AwsClients, key_id: str) -> SigningKey | None:
    """The key (ID, ARN or ``alias/...``), or None when it does not exist."""
    try:
        meta = _kms(clients).describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise aws_error(f"kms:DescribeKey {key_id}", exc) from exc
    return SigningKey(
        arn=str(meta["Arn"]),
        key_spec=str(meta.get("KeySpec", "")),
        key_usage=str(meta.get("KeyUsage", "")),
        enabled=bool(meta.get("Enabled")) and meta.get("KeyState") == "Enabled",
    )


def create_signing_key(clients: AwsClients, alias: str, tags: dict[str, str]) -> SigningKey:
    """A new ECC_NIST_P256 SIGN_VERIFY key, tagged, reachable as ``alias``."""
    kms = _kms(clients)
    try:
        meta = kms.create_key(
            KeySpec=KEY_SPEC,
            KeyUsage="SIGN_VERIFY",
            Description="eks-cis-ami-pipeline: signs validation records (DSSE, in-toto VSA)",
            Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())],
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    except ClientError as exc:
        raise aws_error(f"kms:CreateKey {alias}", exc) from exc
    return SigningKey(str(meta["Arn"]), KEY_SPEC, "SIGN_VERIFY", True)


def sign_digest(clients: AwsClients, key_id: str, digest: bytes) -> tuple[str, bytes]:
    """Sign a SHA-256 digest (``MessageType=DIGEST``); returns (key ARN, DER signature)."""
    try:
        response = _kms(clients).sign(
            KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=ALGORITHM
        )
    except ClientError as exc:
        raise aws_error(f"kms:Sign with {key_id}", exc) from exc
    return str(response["KeyId"]), bytes(response["Signature"])


def verify_digest(clients: AwsClients, key_id: str, digest: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the key's signature of ``digest`` (kms:Verify)."""
    try:
        response = _kms(clients).verify(
            KeyId=key_id,
            Message=digest,
            MessageType="DIGEST",
            Signature=signature,
            SigningAlgorithm=ALGORITHM,
        )
    except ClientError as exc:
        if error_code(exc) == "KMSInvalidSignatureException":
            return False
        raise aws_error(f"kms:Verify with {key_id}", exc) from exc
    return bool(response.get("SignatureValid"))


def public_key_der(clients: AwsClients, key_id: str) -> bytes:
    """The key's DER SubjectPublicKeyInfo (kms:GetPublicKey)."""
    try:
        return bytes(_kms(clients).get_public_key(KeyId=key_id)["PublicKey"])
    except ClientError as exc:
        raise aws_error(f"kms:GetPublicKey {key_id}", exc) from exc
