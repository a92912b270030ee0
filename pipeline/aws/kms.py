"""KMS: the pipeline's asymmetric signing key (ECC_NIST_P256, ECDSA_SHA_256), sign and verify."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_fixed

from pipeline.aws import AwsClients, ClientError, aws_error, error_code
from pipeline.errors import AwsError

T = TypeVar("T")
# A key or an IAM policy made moments ago (`invoke setup`, tag-based permissions) can take
# minutes to be effective: until then KMS answers AccessDenied. The first signature and the
# public-key export wait for it, bounded and visibly, instead of failing the run.
# https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms-console.html#eventual-consistency
SETTLE_S = 180.0
SETTLE_STEP_S = 15.0
_NOT_YET = {"AccessDeniedException"}

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


def settled(
    call: Callable[[], T],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = print,
    settle_s: float = SETTLE_S,
) -> T:
    """``call()``, retried every ``SETTLE_STEP_S`` while KMS answers AccessDenied (permissions
    made moments ago not yet effective), for at most ``settle_s``; each wait is shown.
    Any other error, or the same one after the bound, is raised as it came."""

    def waiting(state: RetryCallState) -> None:
        waited = state.attempt_number * SETTLE_STEP_S
        echo(f"  … {what}: not permitted yet, waiting for KMS permissions ({waited:.0f}s)")

    retrying = Retrying(
        retry=retry_if_exception(
            lambda exc: isinstance(exc, ClientError) and error_code(exc) in _NOT_YET
        ),
        # bounded by attempts, not by a clock: the wait is the same with an injected sleep
        stop=stop_after_attempt(int(settle_s // SETTLE_STEP_S) + 1),
        wait=wait_fixed(SETTLE_STEP_S),
        sleep=sleep,
        before_sleep=waiting,
        reraise=True,
    )
    return retrying(call)


def sign_digest(
    clients: AwsClients,
    key_id: str,
    digest: bytes,
    *,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = print,
) -> tuple[str, bytes]:
    """Sign a SHA-256 digest (``MessageType=DIGEST``); returns (key ARN, DER signature).
    Waits (``settled``) while permissions made moments ago are not yet effective."""
    kms = _kms(clients)
    try:
        response = settled(
            lambda: kms.sign(
                KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=ALGORITHM
            ),
            f"kms:Sign with {key_id}",
            sleep=sleep,
            echo=echo,
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


def public_key_der(
    clients: AwsClients,
    key_id: str,
    *,
    settle_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = print,
) -> bytes:
    """The key's DER SubjectPublicKeyInfo (kms:GetPublicKey); with ``settle_s`` (right after
    setup made the key) waiting that long (``settled``) for its permissions to take effect."""
    kms = _kms(clients)
    try:
        found = settled(
            lambda: kms.get_public_key(KeyId=key_id),
            f"kms:GetPublicKey {key_id}",
            sleep=sleep,
            echo=echo,
            settle_s=settle_s,
        )
        return bytes(found["PublicKey"])
    except ClientError as exc:
        raise aws_error(f"kms:GetPublicKey {key_id}", exc) from exc
