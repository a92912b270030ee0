"""Tampering with a validated AMI's stored evidence, envelope or tags makes verification refuse.

One case file per tampering (``cases/tamper/*.json``): ``object`` + ``action`` changes a stored
object; ``tags`` overwrites AMI tags; ``reason`` must appear among the refusal's reasons.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.evidence import store
from pipeline.evidence.verify import verify_ami
from tests.evidence.conftest import World

CASES = sorted((Path(__file__).parent / "cases" / "tamper").glob("*.json"))


def _tags(world: World) -> dict[str, str]:
    image = world.clients.ec2.describe_images(ImageIds=[world.ami])["Images"][0]
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def _changed(body: bytes, action: str) -> bytes:
    if action == "append":
        return body + b"\n"
    if action == "garbage":
        return b"{not json"
    envelope = json.loads(body)
    if action == "payload":  # the statement now claims another level; signature unchanged
        payload = json.loads(base64.b64decode(envelope["payload"]))
        payload["predicate"]["annotations"]["level"] = "LEVEL_1"
        envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    elif action == "signature":  # a valid-looking DER signature by nobody
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        other = ec.generate_private_key(ec.SECP256R1())
        sig = other.sign(b"anything", ec.ECDSA(hashes.SHA256()))
        envelope["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    return json.dumps(envelope).encode()


@contextmanager
def tampered(world: World, case: dict[str, Any]) -> Iterator[None]:
    """Apply the case's change; put everything back afterwards."""
    s3 = world.clients.s3
    assert s3 is not None
    original_tags = _tags(world)
    key = world.prefix + case["object"] if "object" in case else None
    original = s3.get_object(Bucket=world.bucket, Key=key)["Body"].read() if key else None
    try:
        if key is not None and original is not None:
            if case["action"] == "delete":
                s3.delete_object(Bucket=world.bucket, Key=key)
            else:
                s3.put_object(Bucket=world.bucket, Key=key, Body=_changed(original, case["action"]))
        if "tags" in case:
            world.clients.ec2.create_tags(
                Resources=[world.ami],
                Tags=[{"Key": k, "Value": v} for k, v in case["tags"].items()],
            )
        yield
    finally:
        if key is not None and original is not None:
            s3.put_object(Bucket=world.bucket, Key=key, Body=original)
        world.clients.ec2.create_tags(
            Resources=[world.ami], Tags=[{"Key": k, "Value": v} for k, v in original_tags.items()]
        )


def test_the_untouched_record_verifies(world: World) -> None:
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert result.ok, result.reasons
    assert result.level == "LEVEL_2" and result.local is True
    assert result.record_uri == store.s3_uri(world.bucket, world.record_key)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_tampering_is_refused_with_its_reason(world: World, path: Path) -> None:
    case = json.loads(path.read_text())
    with tampered(world, case):
        result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert not result.ok
    assert any(case["reason"] in r for r in result.reasons), (
        f"GOT {json.dumps(result.reasons, indent=2)}\nWANT a reason containing {case['reason']!r}"
    )
    # and afterwards everything is as it was
    assert verify_ami(world.clients, world.ami, evidence_bucket=world.bucket).ok


def test_without_pointer_tags_the_newest_record_under_the_ami_is_used(world: World) -> None:
    keys = [store.ATTESTATION_TAG, store.ATTESTATION_SHA_TAG, store.SIGNING_KEY_TAG]
    saved = _tags(world)
    world.clients.ec2.delete_tags(Resources=[world.ami], Tags=[{"Key": k} for k in keys])
    try:
        result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    finally:
        world.clients.ec2.create_tags(
            Resources=[world.ami], Tags=[{"Key": k, "Value": saved[k]} for k in keys]
        )
    assert result.ok, result.reasons
    assert result.record_uri == store.s3_uri(world.bucket, world.record_key)


def test_a_forged_tag_set_on_a_stock_eks_ami_is_refused(world: World) -> None:
    """cis:verdict=PASS, the real policy hash and a pointer to a genuine record of ANOTHER AMI."""
    from tests.validate.conftest import base_ami

    stock = base_ami(world.clients)
    genuine = _tags(world)
    forged = {
        k: genuine[k]
        for k in (
            "cis:verdict",
            "cis:policy-sha256",
            "cis:level",
            "cis:scan-arn",
            "cis:run-id",
            store.ATTESTATION_TAG,
            store.ATTESTATION_SHA_TAG,
            store.SIGNING_KEY_TAG,
        )
    }
    assert forged["cis:verdict"] == "PASS"
    world.clients.ec2.create_tags(
        Resources=[stock], Tags=[{"Key": k, "Value": v} for k, v in forged.items()]
    )
    try:
        result = verify_ami(world.clients, stock, evidence_bucket=world.bucket)
    finally:
        world.clients.ec2.delete_tags(Resources=[stock], Tags=[{"Key": k} for k in forged])
    assert not result.ok
    joined = "\n".join(result.reasons)
    assert f"is not under us-east-1/{stock}/" in joined
    assert f"the record is about arn:aws:ec2:us-east-1::image/{world.ami}" in joined
    assert "image digest" in joined


def test_a_stock_ami_with_no_record_is_refused(world: World) -> None:
    from tests.validate.conftest import base_ami

    stock = base_ami(world.clients, arch="arm64")
    result = verify_ami(world.clients, stock, evidence_bucket=world.bucket)
    assert not result.ok
    assert result.reasons == (
        f"no validation record found at s3://{world.bucket}/*/us-east-1/{stock}/",
    )
