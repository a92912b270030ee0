"""An adversary who may tag any AMI and write (never sign) objects in the evidence bucket tries
to make ``verify`` pass an AMI whose newest validation did not pass, or whose record is not ours.

The test itself plays the pipeline where a genuine record is needed (it may call kms:Sign); every
attack then uses only ec2:CreateTags/DeleteTags and s3:PutObject, or a KMS key of its own.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.aws import kms, s3
from pipeline.channels import release_settings
from pipeline.errors import ConfigError, ExitCode, GateBlocked
from pipeline.evidence import dsse, statement, store
from pipeline.evidence.newest import MAX_RECORDS, Signed, newest_record
from pipeline.evidence.verify import key_fingerprint, run_verify, verify_ami
from pipeline.release.revoke import RevokeRequest, run_revoke
from pipeline.tags import REVOKED_TAG
from tests._dates import shifted_now
from tests.evidence.conftest import World

ACCOUNT = "123456789012"
POINTERS = (store.ATTESTATION_TAG, store.ATTESTATION_SHA_TAG, store.SIGNING_KEY_TAG)


def _tags(world: World, ami: str | None = None) -> dict[str, str]:
    image = world.clients.ec2.describe_images(ImageIds=[ami or world.ami])["Images"][0]
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def _set_tags(world: World, tags: dict[str, str], ami: str | None = None) -> None:
    world.clients.ec2.create_tags(
        Resources=[ami or world.ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )


def _get(world: World, key: str) -> bytes:
    body = s3.get_object(world.clients, world.bucket, key, ACCOUNT)
    assert body is not None, key
    return body


def _put(world: World, key: str, body: bytes) -> None:
    world.clients.s3.put_object(Bucket=world.bucket, Key=key, Body=body)  # type: ignore[union-attr]


def _genuine_statement(world: World) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(dsse.parse(_get(world, world.record_key)).payload)
    return doc


def _sign(world: World, payload: bytes, key: str = store.DEFAULT_KEY_ALIAS) -> bytes:
    unsigned = dsse.Envelope(dsse.PAYLOAD_TYPE, payload, ())
    arn, sig = kms.sign_digest(world.clients, key, unsigned.pae_sha256)
    return dsse.Envelope(dsse.PAYLOAD_TYPE, payload, (dsse.Signature(arn, sig),)).to_json()


def _publish(
    world: World,
    run: str,
    change: Callable[[dict[str, Any]], None],
    *,
    ami: str | None = None,
    raw: Callable[[bytes], bytes] = lambda b: b,
    key: str = store.DEFAULT_KEY_ALIAS,
) -> str:
    """A signed record like the genuine one, changed by ``change``, with a copy of its inputs
    under ``<ami prefix>/<run>/``, and the AMI's pointer tags set to it. Returns its key."""
    ami = ami or world.ami
    doc = _genuine_statement(world)
    prefix = store.run_prefix(ACCOUNT, "us-east-1", ami, run)
    for item in doc["predicate"]["inputAttestations"]:
        where = store.parse_s3_uri(item["uri"])
        assert where is not None
        name = where[1].removeprefix(world.prefix)
        _put(world, prefix + name, _get(world, where[1]))
        item["uri"] = store.s3_uri(world.bucket, prefix + name)
    doc["predicate"]["annotations"]["runId"] = run  # a record is signed for its run's folder
    change(doc)
    body = _sign(world, raw(statement.canonical_json(doc)), key)
    _put(world, prefix + store.ENVELOPE, body)
    envelope = dsse.parse(body)
    _set_tags(
        world,
        {
            store.ATTESTATION_TAG: store.s3_uri(world.bucket, prefix + store.ENVELOPE),
            store.ATTESTATION_SHA_TAG: statement.sha256_hex(body),
            store.SIGNING_KEY_TAG: envelope.signatures[0].keyid,
            "cis:run-id": run,
        },
        ami,
    )
    return prefix + store.ENVELOPE


@pytest.fixture
def clean(world: World) -> Iterator[World]:
    """Whatever a test adds under the AMI's prefix or to its tags is taken away afterwards."""
    before_tags = _tags(world)
    before_keys = set(s3.list_keys(world.clients, world.bucket, "", ACCOUNT))
    yield world
    for key in set(s3.list_keys(world.clients, world.bucket, "", ACCOUNT)) - before_keys:
        world.clients.s3.delete_object(Bucket=world.bucket, Key=key)  # type: ignore[union-attr]
    now = _tags(world)
    extra = [k for k in now if k not in before_tags]
    if extra:
        world.clients.ec2.delete_tags(Resources=[world.ami], Tags=[{"Key": k} for k in extra])
    _set_tags(world, before_tags)
    assert verify_ami(world.clients, world.ami, evidence_bucket=world.bucket).ok


def _failed(doc: dict[str, Any]) -> None:
    """The same AMI validated again an hour later, and this time the gate said FAIL."""
    pred = doc["predicate"]
    when = datetime.fromisoformat(pred["timeVerified"].replace("Z", "+00:00"))
    pred["timeVerified"] = (when + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    pred["verificationResult"] = "FAILED"
    pred["verifiedLevels"] = []
    pred["annotations"]["verdict"] = "FAIL"


# Each attack hides the newer FAIL record ``fail`` (a key) behind the older genuine PASS.
def _garbage(world: World, fail: str) -> None:
    _put(world, fail, b"{not json")


def _unsigned_and_older(world: World, fail: str) -> None:
    doc = _genuine_statement(world)
    doc["predicate"]["timeVerified"] = "1970-01-01T00:00:00.000000Z"
    envelope = {
        "payloadType": dsse.PAYLOAD_TYPE,
        "payload": base64.b64encode(statement.canonical_json(doc)).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(b"0" * 70).decode()}],
    }
    _put(world, fail, json.dumps(envelope).encode())


def _old_pass_copied_over(world: World, fail: str) -> None:
    _put(world, fail, _get(world, world.record_key))


HIDE_FAIL: dict[str, Callable[[World, str], None]] = {
    "garbage-over-fail": _garbage,
    "unsigned-older-over-fail": _unsigned_and_older,
    "genuine-pass-copied-over-fail": _old_pass_copied_over,
}


@pytest.mark.parametrize("retag", ["pointer-to-old-pass", "pointer-tags-removed"])
@pytest.mark.parametrize("attack", sorted(HIDE_FAIL))
def test_a_newer_fail_cannot_be_hidden_by_rewriting_the_store(
    clean: World, attack: str, retag: str
) -> None:
    world = clean
    genuine = _tags(world)
    fail = _publish(world, "run-later-fail", _failed)
    assert not verify_ami(world.clients, world.ami, evidence_bucket=world.bucket).ok

    HIDE_FAIL[attack](world, fail)
    if retag == "pointer-tags-removed":
        world.clients.ec2.delete_tags(Resources=[world.ami], Tags=[{"Key": k} for k in POINTERS])
    else:
        _set_tags(world, {k: genuine[k] for k in POINTERS})
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)

    assert not result.ok, f"{attack}/{retag}: the older PASS verified over a newer FAIL"
    assert result.record_uri == store.s3_uri(world.bucket, fail) or any(
        fail in r for r in result.reasons
    ), result.reasons


def test_a_newer_signed_pass_speaks_whatever_its_key_sorts_as(clean: World) -> None:
    """A PASS signed after a FAIL verifies although its run sorts before the FAIL's."""
    world = clean
    _publish(world, "run-b-fail", _failed)
    newer = _publish(world, "run-a-pass-again", _later(hours=2))
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert result.ok, result.reasons
    assert result.record_uri == store.s3_uri(world.bucket, newer)


def _later(hours: int) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        pred = doc["predicate"]
        when = datetime.fromisoformat(pred["timeVerified"].replace("Z", "+00:00"))
        pred["timeVerified"] = (when + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")

    return change


@pytest.mark.parametrize("retag", ["pointer-to-old-pass", "pointer-tags-removed"])
@pytest.mark.parametrize("reuploads", [1, 2])
def test_an_old_pass_uploaded_again_at_its_own_key_does_not_come_back(
    clean: World, retag: str, reuploads: int
) -> None:
    """Issue 20 #1: re-uploading last month's PASS envelope (byte for byte, at its own key)
    makes it the object S3 stored last; the newer FAIL still speaks, by its signed time."""
    world = clean
    genuine = _tags(world)
    fail = _publish(world, "run-later-fail", _failed)
    old_pass = _get(world, world.record_key)
    for _ in range(reuploads):
        time.sleep(1.1)  # S3's LastModified has whole seconds: the PASS is now stored last
        _put(world, world.record_key, old_pass)
    stored = {
        k: v
        for k, v in s3.list_modified(
            world.clients, world.bucket, store.ami_prefix(ACCOUNT, "us-east-1", world.ami), ACCOUNT
        ).items()
        if k.endswith(store.ENVELOPE)
    }
    assert max(stored, key=stored.__getitem__) == world.record_key  # the attack took hold
    if retag == "pointer-tags-removed":
        world.clients.ec2.delete_tags(Resources=[world.ami], Tags=[{"Key": k} for k in POINTERS])
    else:
        _set_tags(world, {k: genuine[k] for k in (*POINTERS, "cis:run-id")})
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert not result.ok
    if retag == "pointer-tags-removed":
        assert result.record_uri == store.s3_uri(world.bucket, fail), result.reasons
        assert any("FAILED" in r for r in result.reasons), result.reasons
    else:
        assert any(
            f"the newest record of {world.ami} is {store.s3_uri(world.bucket, fail)}" in r
            for r in result.reasons
        ), result.reasons


def _copy_to(run: str, ami: str | None = None) -> Callable[[World], str]:
    def plant(world: World) -> str:
        key = store.run_prefix(ACCOUNT, "us-east-1", ami or world.ami, run) + store.ENVELOPE
        _put(world, key, _get(world, world.record_key))
        return key

    return plant


PLANTED = {  # each plants one object under the AMI's prefix; each must make verify fail
    "genuine-copied-to-another-run": (_copy_to("run-zz-copy"), "not for the folder"),
    "garbage": (lambda w: _plant(w, "run-x", b"{not json"), "not a readable signed statement"),
    "unsigned": (lambda w: _plant(w, "run-x", _unsigned(w)), "does not verify"),
    "empty": (lambda w: _plant(w, "run-x", b""), "not a readable signed statement"),
}


def _plant(world: World, run: str, body: bytes) -> str:
    key = store.run_prefix(ACCOUNT, "us-east-1", world.ami, run) + store.ENVELOPE
    _put(world, key, body)
    return key


def _unsigned(world: World) -> bytes:
    doc = _genuine_statement(world)
    doc["predicate"]["annotations"]["runId"] = "run-x"
    return json.dumps(
        {
            "payloadType": dsse.PAYLOAD_TYPE,
            "payload": base64.b64encode(statement.canonical_json(doc)).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(b"0" * 70).decode()}],
        }
    ).encode()


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_an_object_under_the_ami_that_proves_nothing_fails_closed(clean: World, case: str) -> None:
    """Whatever sits under the AMI's prefix and cannot prove itself could be a newer FAIL
    overwritten: no record is trusted while it is there (an s3:PutObject can deny, never pass)."""
    plant, why = PLANTED[case]
    key = plant(clean)
    result = verify_ami(clean.clients, clean.ami, evidence_bucket=clean.bucket)
    assert not result.ok
    assert any(key in r and why in r for r in result.reasons), result.reasons


def test_a_genuine_record_of_another_ami_planted_under_this_one_is_refused(clean: World) -> None:
    world = clean
    doc = _genuine_statement(world)
    doc["subject"][0]["name"] = statement.image_arn("us-east-1", "ami-0123456789abcdef0")
    _later(hours=3)(doc)
    key = store.run_prefix(
        ACCOUNT, "us-east-1", world.ami, doc["predicate"]["annotations"]["runId"]
    )
    _put(world, key + "x/" + store.ENVELOPE, _sign(world, statement.canonical_json(doc)))
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert not result.ok
    assert any(
        "was signed for arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0" in r
        for r in result.reasons
    ), result.reasons


NEW, OLD = datetime(2030, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
P = "1/r/ami-1/"
NEWEST_CASES: dict[str, tuple[dict[str, Signed | str], object]] = {
    "newest-signed-time-wins": (
        {P + "a/x.json": Signed(NEW, "a", "ami-1"), P + "b/x.json": Signed(OLD, "b", "ami-1")},
        P + "a/x.json",
    ),
    "an-unsigned-record-refuses-all": (
        {P + "a/x.json": Signed(NEW, "a", "ami-1"), P + "b/x.json": "does not verify"},
        "does not verify",
    ),
    "same-signed-time-is-refused": (
        {P + "a/x.json": Signed(NEW, "a", "ami-1"), P + "b/x.json": Signed(NEW, "b", "ami-1")},
        "signed for the same time",
    ),
    "moved-record-is-refused": ({P + "a/x.json": Signed(NEW, "b", "ami-1")}, "not for the folder"),
    "other-ami-is-refused": ({P + "a/x.json": Signed(NEW, "a", "ami-2")}, "signed for ami-2"),
    "none": ({}, None),
}


@pytest.mark.parametrize("case", sorted(NEWEST_CASES))
def test_newest_record_follows_signed_time(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "ENVELOPE", "x.json")
    records, want = NEWEST_CASES[case]
    key, problems = newest_record(records, P, "ami-1", records.__getitem__)
    if want is None or want in records:
        assert (key, problems) == (want, ())
    else:
        assert key is None and len(problems) == 1 and str(want) in problems[0], problems


def test_more_records_than_the_bound_are_refused_unread() -> None:
    keys = [f"{P}{n}/{store.ENVELOPE}" for n in range(MAX_RECORDS + 1)]

    def read(key: str) -> Signed | str:
        raise AssertionError("read a record of a bulk plant")

    assert newest_record(keys, P, "ami-1", read) == (
        None,
        (f"{MAX_RECORDS + 1} records under {P} (more than {MAX_RECORDS}): none is trusted",),
    )


def test_a_statement_with_duplicate_keys_is_refused(clean: World) -> None:
    """Python's json reads the last ``verificationResult`` (PASSED); a first-wins tool FAILED."""
    world = clean

    def duplicate(body: bytes) -> bytes:
        return body.replace(
            b'"verificationResult":"PASSED"',
            b'"verificationResult":"FAILED","verificationResult":"PASSED"',
        )

    _publish(world, "run-dup", lambda doc: None, raw=duplicate)
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert not result.ok
    assert any("duplicate JSON key 'verificationResult'" in r for r in result.reasons)


def test_a_record_signed_by_another_key_of_the_account_is_refused(clean: World) -> None:
    """The adversary's own KMS key (own alias) signs a PASS; verify trusts only the configured
    key, never the key the envelope or the tags name."""
    world = clean
    kms.create_signing_key(world.clients, "alias/adversary", {})
    _publish(world, "run-forged", lambda doc: None, key="alias/adversary")
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert not result.ok
    assert any(r.startswith("signature does not verify") for r in result.reasons)


@pytest.mark.parametrize(
    "pointer",
    [
        "{account}/us-east-1/{ami}/run/../{run}/attestation.dsse.json",
        "{account}/us-east-1/{ami}/%2e%2e/{run}/attestation.dsse.json",
        "{account}/us-east-1/{ami}/{run}/extra/attestation.dsse.json",
        "999999999999/us-east-1/{ami}/{run}/attestation.dsse.json",
        "{account}/us-east-1/{ami}/{run}/other.json",
    ],
    ids=["dot-dot", "percent-encoded", "extra-folder", "other-account", "other-name"],
)
def test_a_pointer_must_name_the_record_key_exactly(clean: World, pointer: str) -> None:
    world = clean
    run = world.prefix.rstrip("/").rsplit("/", 1)[1]
    key = pointer.format(account=ACCOUNT, ami=world.ami, run=run)
    _put(world, key, _get(world, world.record_key))  # the genuine envelope, bytes unchanged
    _set_tags(world, {store.ATTESTATION_TAG: store.s3_uri(world.bucket, key)})
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert not result.ok
    assert any(f"is not under us-east-1/{world.ami}/" in r for r in result.reasons), result.reasons


# --- A revoked AMI is not trusted by ``invoke verify`` ----------------------------------------


def _verify_lines(world: World) -> tuple[list[str], GateBlocked | None]:
    lines: list[str] = []
    try:
        run_verify(world.clients, world.ami, evidence_bucket=world.bucket, echo=lines.append)
    except GateBlocked as exc:
        return lines, exc
    return lines, None


def _unrevoke(world: World) -> None:
    keys = [k for k in _tags(world) if k.startswith(REVOKED_TAG)]
    world.clients.ec2.delete_tags(Resources=[world.ami], Tags=[{"Key": k} for k in keys])
    world.clients.ssm.delete_parameter(Name=f"/eks-cis-ami/revoked/{world.ami}")


@pytest.mark.parametrize("then", ["as-revoked", "revoked-tags-removed"])
def test_verify_reports_a_revoked_ami_and_exits_3(clean: World, then: str) -> None:
    world = clean
    lines, blocked = _verify_lines(world)
    assert blocked is None and any(line.startswith("VERIFIED") for line in lines)

    settings = release_settings({}, build_level=2, known_regions=["us-east-1"])
    run_revoke(
        RevokeRequest(world.ami, "CVE-2026-0001 in the kernel"),
        settings,
        world.clients,
        shifted_now().astimezone(),
        lambda _: None,
    )
    try:
        if then == "revoked-tags-removed":  # the adversary removes the tags; SSM still says so
            keys = [k for k in _tags(world) if k.startswith(REVOKED_TAG)]
            world.clients.ec2.delete_tags(Resources=[world.ami], Tags=[{"Key": k} for k in keys])
        lines, blocked = _verify_lines(world)
    finally:
        _unrevoke(world)
    assert blocked is not None and blocked.exit_code == ExitCode.GATE_BLOCKED
    assert any("REVOKED" in p and "CVE-2026-0001" in p for p in blocked.problems)
    assert any(line.startswith(f"{world.ami}: REVOKED: CVE-2026-0001") for line in lines), lines
    assert not any(line.startswith("VERIFIED") for line in lines)


def test_a_giant_planted_record_is_refused_unread(clean: World) -> None:
    world = clean
    key = store.run_prefix(ACCOUNT, "us-east-1", world.ami, "run-giant") + store.ENVELOPE
    _put(world, key, b" " * (2 << 20))
    _set_tags(world, {store.ATTESTATION_TAG: store.s3_uri(world.bucket, key)})
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert not result.ok
    assert any(f"is {2 << 20} bytes, more than {1 << 20}" in r for r in result.reasons), (
        result.reasons
    )


def _pem(world: World, key: str, path: Path) -> str:
    path.write_bytes(dsse.der_to_pem(kms.public_key_der(world.clients, key)))
    return str(path)


def test_an_auditor_handed_the_adversarys_public_key_is_protected_by_the_pin(
    clean: World, tmp_path: Path
) -> None:
    """Offline, the PEM is the trust root: a forged record verifies with the forger's PEM
    unless the fingerprint is pinned (pipeline.signing_key_sha256); the output names it."""
    world = clean
    kms.create_signing_key(world.clients, "alias/adversary-offline", {})
    _publish(world, "run-forged-offline", _later(hours=1), key="alias/adversary-offline")
    genuine = _get(world, world.record_key)  # re-signed by the forger too, so all verify for them
    _put(
        world,
        world.record_key,
        _sign(world, dsse.parse(genuine).payload, "alias/adversary-offline"),
    )
    theirs = _pem(world, "alias/adversary-offline", tmp_path / "theirs.pem")
    ours = _pem(world, store.DEFAULT_KEY_ALIAS, tmp_path / "ours.pem")
    pinned = key_fingerprint(Path(ours).read_bytes())

    lines: list[str] = []
    try:
        run_verify(world.clients, world.ami, public_key=theirs, echo=lines.append)  # unpinned
        _check_pin(world, theirs, ours, pinned, lines)
    finally:
        _put(world, world.record_key, genuine)


def _check_pin(world: World, theirs: str, ours: str, pinned: str, lines: list[str]) -> None:
    forged = key_fingerprint(Path(theirs).read_bytes())
    assert forged != pinned and f"signature checked offline with {theirs} ({forged})" in lines

    with pytest.raises(GateBlocked) as caught:
        run_verify(
            world.clients, world.ami, public_key=theirs, pinned_key=pinned, echo=lambda _: None
        )
    assert caught.value.exit_code == ExitCode.GATE_BLOCKED
    assert any(
        f"is {forged}, not the pinned signing key {pinned}" in p for p in caught.value.problems
    )
    with pytest.raises(GateBlocked, match="not verified"):  # and our key refuses the forgery
        run_verify(world.clients, world.ami, public_key=ours, pinned_key=pinned, echo=print)
    with pytest.raises(ConfigError, match=r"\$\.pipeline\.signing_key_sha256"):
        run_verify(world.clients, world.ami, public_key=ours, pinned_key="abc", echo=print)


def _disabled_key(world: World, alias: str) -> None:
    key = kms.create_signing_key(world.clients, alias, {})
    world.clients.kms.disable_key(KeyId=key.arn.rsplit("/", 1)[1])  # type: ignore[union-attr]


def _symmetric_key(world: World, alias: str) -> None:
    meta = world.clients.kms.create_key()["KeyMetadata"]  # type: ignore[union-attr]
    world.clients.kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])  # type: ignore[union-attr]


UNUSABLE_KEYS: dict[str, tuple[Callable[[World, str], None] | None, str]] = {
    "disabled": (_disabled_key, "is not enabled"),
    "symmetric": (_symmetric_key, "not ECC_NIST_P256/SIGN_VERIFY"),
    "missing": (None, "does not exist"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE_KEYS))
def test_a_trusted_key_that_cannot_verify_refuses_with_a_reason(clean: World, case: str) -> None:
    """The alias now names a disabled or symmetric key (or nothing): every record is refused
    (exit 3 with the reason), never an AWS error and never a pass."""
    world = clean
    make, needle = UNUSABLE_KEYS[case]
    alias = f"alias/adversary-{case}"
    if make is not None:
        make(world, alias)
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket, signing_key=alias)
    assert not result.ok
    assert any(r.startswith("signature does not verify") and needle in r for r in result.reasons)
