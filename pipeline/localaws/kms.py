"""KMS ``Sign``/``Verify`` honouring ``MessageType=DIGEST`` as AWS does (moto ignores it and
would hash the digest again, a signature no standard ECDSA verifier accepts).
"""

from __future__ import annotations

import base64
from typing import Any

from pipeline.localaws import moto_state
from pipeline.localaws.context import Ctx, Handler, Params, Result
from pipeline.localaws.wire import ServiceError

_DIGEST_BYTES = {"ECDSA_SHA_256": 32, "ECDSA_SHA_384": 48, "ECDSA_SHA_512": 64}


def _key_and_message(ctx: Ctx, params: Params) -> tuple[Any, bytes, Any]:
    """moto's key, the message bytes and the cryptography signature algorithm to use."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    algorithm = str(params["SigningAlgorithm"])
    try:
        key = moto_state.kms(ctx.account_id, ctx.region).describe_key(str(params["KeyId"]))
    except Exception as exc:  # moto's NotFoundException and friends  # noqa: BLE001
        raise ServiceError("NotFoundException", f"Invalid keyId {params['KeyId']}") from exc
    if key.key_usage != "SIGN_VERIFY" or algorithm not in key.signing_algorithms:
        raise ServiceError(
            "InvalidKeyUsageException", f"{algorithm} is not valid for key {key.arn}"
        )
    message = base64.b64decode(str(params["Message"]))
    chosen = {"ECDSA_SHA_256": hashes.SHA256, "ECDSA_SHA_384": hashes.SHA384}.get(
        algorithm, hashes.SHA512
    )()
    if params.get("MessageType", "RAW") == "DIGEST":
        if len(message) != _DIGEST_BYTES.get(algorithm, -1):
            raise ServiceError(
                "ValidationException", f"Digest is invalid length for algorithm {algorithm}."
            )
        return key, message, ec.ECDSA(utils.Prehashed(chosen))
    if len(message) > 4096:
        raise ServiceError("ValidationException", "Message must be at most 4096 bytes (RAW)")
    return key, message, ec.ECDSA(chosen)


def sign(ctx: Ctx, params: Params) -> Result:
    key, message, algorithm = _key_and_message(ctx, params)
    signature = key.private_key.private_key.sign(message, algorithm)
    return {
        "KeyId": key.arn,
        "Signature": base64.b64encode(signature).decode("ascii"),
        "SigningAlgorithm": params["SigningAlgorithm"],
    }


def verify(ctx: Ctx, params: Params) -> Result:
    from cryptography.exceptions import InvalidSignature

    key, message, algorithm = _key_and_message(ctx, params)
    signature = base64.b64decode(str(params["Signature"]))
    try:
        key.private_key.private_key.public_key().verify(signature, message, algorithm)
    except InvalidSignature:
        # AWS answers an invalid signature with an error, not SignatureValid=false.
        raise ServiceError("KMSInvalidSignatureException", "Signature is invalid") from None
    return {
        "KeyId": key.arn,
        "SignatureValid": True,
        "SigningAlgorithm": params["SigningAlgorithm"],
    }


def operations() -> dict[str, Handler]:
    return {"Sign": sign, "Verify": verify}
