"""The signed record of a validated AMI on the local AWS: its content, offline verification with
the exported public key (no KMS call), ``invoke verify``'s output and exit codes, re-gating."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.aws import s3
from pipeline.aws.images import describe_image
from pipeline.errors import AwsError, ConfigError, ExitCode, GateBlocked
from pipeline.evidence import dsse, statement, store
from pipeline.evidence.regate import regate, regate_bytes
from pipeline.evidence.verify import export_public_key_file, run_verify, verify_ami
from tests.evidence.conftest import World

ROOT = Path(__file__).resolve().parents[2]


def _envelope(world: World) -> dsse.Envelope:
    body = s3.get_object(world.clients, world.bucket, world.record_key, "123456789012")
    assert body is not None
    return dsse.parse(body)


def test_the_record_is_an_in_toto_vsa_about_this_image(world: World) -> None:
    envelope = _envelope(world)
    assert envelope.payload_type == "application/vnd.in-toto+json"
    doc = json.loads(envelope.payload)
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == "https://slsa.dev/verification_summary/v1"
    image = describe_image(world.clients, world.ami)
    [subject] = doc["subject"]
    assert subject["name"] == f"arn:aws:ec2:us-east-1::image/{world.ami}"
    assert subject["digest"]["sha256"] == store.image_facts(image).digest
    assert image.snapshot_ids and subject["annotations"]["imageFacts"]["snapshots"] == list(
        image.snapshot_ids
    )
    pred = doc["predicate"]
    assert pred["resourceUri"] == subject["name"]
    assert pred["verificationResult"] == "PASSED"
    assert pred["verifiedLevels"] == ["CIS_AMAZON_LINUX_2023_V1.0.0_LEVEL_2"]
    policy_file = ROOT / "policies/exceptions/amazon-linux-2023.yaml"
    assert pred["policy"] == {
        "uri": "policies/exceptions/amazon-linux-2023.yaml",
        "digest": {"sha256": statement.sha256_hex(policy_file.read_bytes())},
    }
    inputs = {
        i["uri"].removeprefix(f"s3://{world.bucket}/{world.prefix}")
        for i in pred["inputAttestations"]
    }
    assert {
        "evidence/results.json",
        "evidence/scan.json",
        "evidence/checks.json",
        "evidence/cis-report.csv",
        "verdict.json",
        "policies/amazon-linux-2023.yaml",
        "catalogue.json",
    } <= inputs
    notes = pred["annotations"]
    assert notes["local"] is True and notes["level"] == "LEVEL_2" and notes["verdict"] == "PASS"
    assert notes["scanArn"].startswith("arn:aws:inspector2:") and notes["runId"]
    assert pred["verifier"]["version"]["eks-cis-ami-pipeline"]
    assert envelope.signatures[0].keyid.startswith("arn:aws:kms:us-east-1:")


def test_evidence_is_write_once_with_checksums(world: World) -> None:
    key = world.prefix + "evidence/results.json"
    head = world.clients.s3.head_object(  # type: ignore[union-attr]
        Bucket=world.bucket, Key=key, ChecksumMode="ENABLED"
    )
    assert head["ChecksumSHA256"]
    with pytest.raises(AwsError, match="exists already: evidence is never overwritten"):
        s3.put_new_object(world.clients, world.bucket, key, b"[]", "123456789012", "text/plain")


def test_offline_verification_with_the_exported_key_makes_no_kms_call(
    world: World, tmp_path: Path
) -> None:
    pem = tmp_path / "key.pem"
    export_public_key_file(world.clients, str(pem), None, lambda _: None)
    assert pem.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    before = len(world.aws.calls)
    result = verify_ami(
        world.clients, world.ami, public_key_pem=pem.read_bytes(), evidence_bucket=world.bucket
    )
    made = world.aws.calls[before:]
    assert result.ok, result.reasons
    assert made and not [c for c in made if c.service == "kms"]
    # a different key does not verify it
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    wrong = other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    refused = verify_ami(
        world.clients, world.ami, public_key_pem=wrong, evidence_bucket=world.bucket
    )
    assert "signature does not verify: signature does not verify with the given public key" in (
        refused.reasons
    )


def test_the_signature_is_standard_dsse_ecdsa_over_the_pae(world: World, tmp_path: Path) -> None:
    """Any ECDSA P-256 verifier checks it against the PAE bytes (KMS signed their SHA-256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    pem = tmp_path / "key.pem"
    export_public_key_file(world.clients, str(pem), None, lambda _: None)
    key = load_pem_public_key(pem.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    envelope = _envelope(world)
    key.verify(envelope.signatures[0].sig, envelope.pae, ec.ECDSA(hashes.SHA256()))


def test_invoke_verify_reports_and_exits_0(world: World) -> None:
    lines: list[str] = []
    run_verify(
        world.clients,
        world.ami,
        evidence_bucket=world.bucket,
        rerun_gate=True,
        policy_dir=ROOT / "policies/exceptions",
        echo=lines.append,
    )
    text = "\n".join(lines)
    assert f"VERIFIED {world.ami}: PASSED at LEVEL_2" in text
    assert "(made on a local AWS)" in text
    assert "re-gate: stored PASS, recomputed PASS" in text
    assert "(the same)" in text


def test_invoke_verify_json_prints_the_statement_and_every_check(world: World) -> None:
    lines: list[str] = []
    run_verify(
        world.clients, world.ami, as_json=True, evidence_bucket=world.bucket, echo=lines.append
    )
    doc = json.loads("\n".join(lines))
    assert doc["verified"] is True and doc["reasons"] == []
    assert doc["statement"]["predicateType"] == statement.PREDICATE_TYPE
    names = {c["check"] for c in doc["checks"]}
    assert names >= {"signature", "subject", "image digest", "input evidence/results.json"}
    assert all(c["ok"] for c in doc["checks"])


def test_invoke_verify_refuses_a_higher_expected_level_and_gives_each_reason_a_line(
    world: World,
) -> None:
    world.clients.ec2.create_tags(
        Resources=[world.ami], Tags=[{"Key": "cis:verdict", "Value": "PASS-ish"}]
    )
    try:
        with pytest.raises(GateBlocked) as caught:
            run_verify(
                world.clients,
                world.ami,
                evidence_bucket=world.bucket,
                expected_level=3,
                echo=lambda _: None,
            )
    finally:
        world.clients.ec2.create_tags(
            Resources=[world.ami], Tags=[{"Key": "cis:verdict", "Value": "PASS"}]
        )
    assert caught.value.exit_code == ExitCode.GATE_BLOCKED
    lines = caught.value.lines()
    assert lines == [
        f"{world.ami}: tag cis:verdict=PASS-ish disagrees with the signed record (PASS)",
        f"{world.ami}: validated at LEVEL_2, LEVEL_3 is expected",
    ]


@pytest.mark.parametrize(
    ("ami", "key", "message"),
    [
        ("not-an-ami", None, "--ami 'not-an-ami': not an AMI ID"),
        ("ami-0123456789abcdef0", "/nonexistent/key.pem", "--public-key /nonexistent/key.pem"),
        ("ami-0123456789abcdef0", __file__, "not a PEM public key"),
    ],
)
def test_bad_input_is_exit_2(world: World, ami: str, key: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as caught:
        run_verify(world.clients, ami, public_key=key, echo=lambda _: None)
    assert caught.value.exit_code == ExitCode.INVALID_INPUT


def test_regate_reproduces_and_notices_a_policy_that_would_not(world: World) -> None:
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    again = regate(result)
    assert again.reproduced and again.recomputed == "PASS"
    stored = {}
    for key in (
        "evidence/results.json",
        "evidence/scan.json",
        "evidence/targets.json",
        "evidence/run.json",
        "evidence/node-probe.json",
        "evidence/coverage.json",
        "evidence/findings.json",
        "evidence/finding-counts.json",
        "evidence/launched.json",
        "verdict.json",
        "policies/amazon-linux-2023.yaml",
    ):
        body = s3.get_object(world.clients, world.bucket, world.prefix + key, "123456789012")
        assert body is not None
        stored[key] = body
    assert result.time_verified is not None
    sections = statement.read(result.statement or {})[0].sections
    assert regate_bytes(stored, world.ami, result.time_verified, "PASS", sections).reproduced
    # judged long after every exception expired, the same evidence would not pass
    later = result.time_verified.replace(year=result.time_verified.year + 20)
    assert regate_bytes(stored, world.ami, later, "PASS", sections).recomputed == "FAIL"


def test_regate_cross_checks_the_rows_with_the_stored_views(world: World) -> None:
    """``verify --regate`` re-runs the cross-check on the verified bytes: a stored report or
    per-check view that disagrees with the stored rows makes the verdict ERROR."""
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert {"evidence/checks.json", "evidence/cis-report.csv"} <= set(result.inputs)
    assert regate(result).reproduced
    assert result.time_verified is not None
    report = result.inputs["evidence/cis-report.csv"].decode()
    (line,) = [x for x in report.splitlines() if ",3.2.1," in x]
    assert ",FAILED," in line  # excepted in the policy: the stored verdict is a PASS
    lying = report.replace(line, line.replace(",FAILED,", ",PASSED,"))
    stored = {**result.inputs, "evidence/cis-report.csv": lying.encode()}
    again = regate_bytes(stored, world.ami, result.time_verified, "PASS")
    assert (again.recomputed, again.reproduced, again.problems) == ("ERROR", False, ())
    checks = json.loads(result.inputs["evidence/checks.json"])
    (item,) = [i for i in checks if i["checkId"] == "3.2.1"]
    item["statusCounts"] = {"passed": 1, "failed": 0, "skipped": 0}
    stored = {**result.inputs, "evidence/checks.json": json.dumps(checks).encode()}
    again = regate_bytes(stored, world.ami, result.time_verified, "PASS")
    assert (again.recomputed, again.reproduced, again.problems) == ("ERROR", False, ())


def test_the_verify_and_setup_tasks_map_outcomes_to_exit_codes(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from invoke import Exit, MockContext

    import tasks

    monkeypatch.setenv("AWS_ENDPOINT_URL", world.aws.endpoint)
    tasks.verify(MockContext(), ami=world.ami)
    assert f"VERIFIED {world.ami}" in capsys.readouterr().out
    tasks.setup(MockContext(), dry_run=True)
    assert "setup: nothing to change" in capsys.readouterr().out

    world.clients.ec2.create_tags(Resources=[world.ami], Tags=[{"Key": "cis:level", "Value": "x"}])
    try:
        with pytest.raises(Exit) as blocked:
            tasks.verify(MockContext(), ami=world.ami)
    finally:
        world.clients.ec2.create_tags(
            Resources=[world.ami], Tags=[{"Key": "cis:level", "Value": "LEVEL_2"}]
        )
    assert blocked.value.code == 3
    assert capsys.readouterr().err.splitlines() == [
        f"error: {world.ami}: tag cis:level=x disagrees with the signed record (LEVEL_2)"
    ]
    with pytest.raises(Exit) as bad:
        tasks.verify(MockContext(), ami="ami-nope")
    assert bad.value.code == 2


def test_a_local_record_is_refused_where_the_endpoint_is_aws(world: World) -> None:
    from dataclasses import replace

    # Only the recorded endpoint changes: the calls still reach the local AWS.
    real = replace(world.clients, endpoint_url="https://ec2.us-east-1.amazonaws.com")
    result = verify_ami(real, world.ami, evidence_bucket=world.bucket)
    assert result.local and not result.ok
    assert result.reasons == (
        "the record was made on a local AWS: it proves nothing in a real account",
    )


def test_regate_judges_the_bytes_verify_checked_not_what_the_store_holds_later(
    world: World,
) -> None:
    """A writer who swaps results.json after its digest was checked changes nothing: regate
    judges the bytes verify read (and reads nothing again)."""
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert result.ok and "evidence/results.json" in result.inputs
    swapped = json.dumps([{"checkResults": [], "nextToken": None}]).encode()
    world.clients.s3.put_object(
        Bucket=world.bucket, Key=world.prefix + "evidence/results.json", Body=swapped
    )
    before = sum(n for op, n in world.clients.calls.as_dict().items() if op.startswith("s3:"))
    again = regate(result)
    after = sum(n for op, n in world.clients.calls.as_dict().items() if op.startswith("s3:"))
    assert again.reproduced and again.recomputed == "PASS"
    assert after == before
    # the swapped bytes, had they been judged, would not have passed
    tampered = dict(result.inputs)
    tampered["evidence/results.json"] = swapped
    assert result.time_verified is not None
    assert not regate_bytes(tampered, world.ami, result.time_verified, "PASS").reproduced


def test_regate_has_nothing_to_judge_for_inputs_that_did_not_verify(world: World) -> None:
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    kept = {k: v for k, v in result.inputs.items() if k != "evidence/results.json"}
    again = regate(replace(result, inputs=kept))
    assert not again.reproduced and again.recomputed == "ERROR"
    assert any("evidence/results.json" in p for p in again.problems)
