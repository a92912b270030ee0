"""The pure parts: DSSE's PAE and envelope form, the image digest, the statement's fields."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pipeline.evidence import dsse, statement

FACTS = statement.ImageFacts(
    ami_id="ami-0123456789abcdef0",
    region="eu-west-1",
    owner_id="123456789012",
    architecture="x86_64",
    root_device_name="/dev/xvda",
    snapshot_ids=("snap-b", "snap-a"),
    creation_date="2026-11-27T10:00:00.000Z",
)


def _record(verdict: str = "PASS") -> statement.Record:
    return statement.Record(
        image=FACTS,
        time_verified=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        verdict=verdict,
        level=2,
        platform="AMAZON_LINUX_2023",
        benchmark="CIS Amazon Linux 2023 Benchmark",
        benchmark_version="1.0.0",
        policy=statement.Digest("policies/exceptions/amazon-linux-2023.yaml", "ab" * 32),
        extra_policies=(),
        inputs=(statement.Digest("s3://b/p/evidence/results.json", "cd" * 32),),
        scan_arn="arn:aws:inspector2:eu-west-1:123456789012:owner/x/cis-scan/y",
        run_id="20261127T120000Z-abcdef",
        account="123456789012",
        local=False,
        version="0.1.0",
        commit="0" * 40,
    )


def test_pae_matches_the_dsse_specification_example() -> None:
    assert (
        dsse.pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 " + "é".encode()


def test_envelope_round_trips() -> None:
    env = dsse.Envelope(dsse.PAYLOAD_TYPE, b'{"a":1}', (dsse.Signature("arn:k", b"\x30\x01"),))
    assert dsse.parse(env.to_json()) == env
    raw = json.loads(env.to_json())
    assert raw["payload"] == base64.b64encode(b'{"a":1}').decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "$: not an object"),
        (b"{", "not JSON"),
        (b'{"payloadType": "x", "payload": "e30=", "signatures": []}', "$.signatures"),
        (
            b'{"payloadType": "x", "payload": "!!", "signatures": [{"keyid": "k", "sig": "AA=="}]}',
            "$.payload: not base64",
        ),
        (b'{"payload": "e30=", "signatures": [{"keyid": "k", "sig": "AA=="}]}', "$.payloadType"),
        (
            b'{"payloadType": "x", "payload": "e30=", "signatures": [{"keyid": "k"}]}',
            "$.signatures[0].sig",
        ),
    ],
)
def test_malformed_envelopes_say_where(data: bytes, message: str) -> None:
    with pytest.raises(dsse.EnvelopeError, match=message.replace("$", r"\$").replace("[", r"\[")):
        dsse.parse(data)


def test_image_digest_is_order_free_but_covers_every_fact() -> None:
    assert replace(FACTS, snapshot_ids=("snap-a", "snap-b")).digest == FACTS.digest
    changed = [
        replace(FACTS, ami_id="ami-0123456789abcdef1"),
        replace(FACTS, region="us-east-1"),
        replace(FACTS, owner_id="210987654321"),
        replace(FACTS, architecture="arm64"),
        replace(FACTS, root_device_name="/dev/sda1"),
        replace(FACTS, snapshot_ids=("snap-a", "snap-c")),
        replace(FACTS, creation_date="2026-11-28T10:00:00.000Z"),
    ]
    assert len({FACTS.digest, *(f.digest for f in changed)}) == len(changed) + 1
    expected = statement.sha256_hex(
        b'{"ami":"ami-0123456789abcdef0","architecture":"x86_64",'
        b'"creationDate":"2026-11-27T10:00:00.000Z","owner":"123456789012",'
        b'"region":"eu-west-1","rootDeviceName":"/dev/xvda","snapshots":["snap-a","snap-b"]}'
    )
    assert FACTS.digest == expected  # the documented canonical form


@pytest.mark.parametrize(
    ("verdict", "result"), [("PASS", "PASSED"), ("FAIL", "FAILED"), ("ERROR", "FAILED")]
)
def test_only_a_passing_gate_verdict_is_passed(verdict: str, result: str) -> None:
    doc = statement.build(_record(verdict))
    assert doc["predicate"]["verificationResult"] == result
    assert bool(doc["predicate"]["verifiedLevels"]) is (result == "PASSED")
    claims, problems = statement.read(doc)
    assert problems == [] and claims.result == result and claims.verdict == verdict


def test_statement_reads_back_and_missing_local_counts_as_local() -> None:
    doc = statement.build(_record())
    claims, _ = statement.read(doc)
    assert claims.local is False and claims.level == "LEVEL_2"
    assert claims.subject_name == "arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0"
    assert claims.time_verified == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    del doc["predicate"]["annotations"]["local"]
    assert statement.read(doc)[0].local is True


def test_a_statement_of_another_type_is_a_problem() -> None:
    doc = statement.build(_record())
    doc["_type"] = "https://in-toto.io/Statement/v0.1"
    doc["subject"].append(doc["subject"][0])
    _, problems = statement.read(doc)
    assert len(problems) == 2


@pytest.mark.parametrize(
    "stored",
    [
        {"evidence/results.json": b"[]"},
        {"evidence/results.json": b"{not json", "verdict.json": b"{}"},
        {
            "evidence/results.json": b"[]",
            "verdict.json": b"{}",
            "policies/p.yaml": b"\xff\xfe",
        },
    ],
    ids=["no-verdict", "bad-results", "policy-not-utf8"],
)
def test_stored_evidence_that_cannot_be_regated_is_an_error_not_a_crash(
    stored: dict[str, bytes],
) -> None:
    from pipeline.evidence.regate import regate_bytes

    again = regate_bytes(stored, "ami-0123456789abcdef0", datetime(2026, 1, 1, tzinfo=UTC), "PASS")
    assert not again.reproduced and again.recomputed == "ERROR" and again.problems


@pytest.mark.parametrize(
    ("flag", "config", "env", "want"),
    [
        (
            "flag-bucket",
            {"evidence_bucket": "yaml-bucket"},
            {"CIS_EVIDENCE_BUCKET": "env-b"},
            "flag-bucket",
        ),
        (None, {"evidence_bucket": "yaml-bucket"}, {"CIS_EVIDENCE_BUCKET": "env-b"}, "yaml-bucket"),
        (None, {}, {"CIS_EVIDENCE_BUCKET": "env-bucket"}, "env-bucket"),
        (None, {}, {}, None),
    ],
)
def test_evidence_settings_resolve_flag_then_invoke_yaml_then_environment(
    flag: str | None, config: dict[str, str], env: dict[str, str], want: str | None
) -> None:
    from pipeline.settings import evidence_settings

    assert evidence_settings(config, env, evidence_bucket=flag).bucket == want
    key = evidence_settings({"signing_key": "alias/a"}, {"CIS_SIGNING_KEY": "alias/b"})
    assert key.signing_key == "alias/a"
    assert evidence_settings({}, {"CIS_SIGNING_KEY": "alias/b"}).signing_key == "alias/b"


def test_an_invalid_bucket_name_names_the_flag() -> None:
    from pipeline.errors import ConfigError
    from pipeline.settings import evidence_settings

    with pytest.raises(ConfigError, match="--evidence-bucket 'Bad_Bucket': not a valid S3"):
        evidence_settings({}, {}, evidence_bucket="Bad_Bucket")
