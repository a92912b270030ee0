"""The record's three sections (CIS, node, vulnerabilities): signed per AMI, checked by verify,
re-derived by ``verify --regate`` from the stored bytes. A validly signed record whose sections
contradict its verdict, or that lacks one, or that does not name the evidence behind them, is
refused; a swapped findings file is caught.

The validate runs are real against the local AWS; the node probe's and Inspector's package
scan's answers are stood in for (``tests._sections``) until the local AWS gives them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline import node, policy
from pipeline.aws import kms, s3
from pipeline.catalog import Platform
from pipeline.errors import GateBlocked
from pipeline.evidence import dsse, statement, store
from pipeline.evidence.regate import regate, regate_bytes
from pipeline.evidence.verify import run_verify, verify_ami
from pipeline.localaws import LocalAws
from tests._sections import Cve, counts_document, findings_document, readiness_answered
from tests.evidence.conftest import World, validated_world

ACCOUNT = "123456789012"
POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "exceptions"


@pytest.fixture(scope="module")
def world(local_aws_server: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with readiness_answered():
        yield validated_world(local_aws_server, tmp_path_factory.mktemp("sections"))


def _statement(world: World, key: str | None = None) -> dict[str, Any]:
    body = s3.get_object(world.clients, world.bucket, key or world.record_key, ACCOUNT)
    assert body is not None
    doc: dict[str, Any] = json.loads(dsse.parse(body).payload)
    return doc


def test_the_record_signs_three_sections_of_the_amis_own_instance(world: World) -> None:
    sections = _statement(world)["predicate"]["annotations"]["sections"]
    assert {k: v["verdict"] for k, v in sections.items()} == {
        "cis": "PASS",
        "node": "PASS",
        "vulnerabilities": "PASS",
    }
    cis = sections["cis"]
    assert cis["passed"] > 0 and cis["failed"] == 0 and set(cis) == {
        "verdict", "passed", "failed", "excepted", "skipped"
    }  # fmt: skip
    catalogue = node.load_catalogue()
    assert sections["node"] == {
        "verdict": "PASS",
        "passed": len(catalogue.checks),
        "failed": 0,
        "probeSha256": sections["node"]["probeSha256"],
        "catalogueSha256": catalogue.sha256,
    }
    own = policy.load_all(policy.discover(POLICY_DIR))[Platform.AMAZON_LINUX_2023]
    vulns = sections["vulnerabilities"]
    assert vulns["counts"]["MEDIUM"] == 1 and vulns["counts"]["CRITICAL"] == 0
    assert (vulns["blocking"], vulns["excepted"], vulns["suppressed"]) == (0, 0, 0)
    assert vulns["policySha256"] == own.vulnerabilities.digest
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    assert result.ok, result.reasons
    for name in ("evidence/node-probe.json", "evidence/findings.json", "evidence/coverage.json"):
        assert name in result.inputs
    claims, _ = statement.read(result.statement or {})
    assert claims.sections == sections


def test_regate_reproduces_all_three_sections(world: World) -> None:
    lines: list[str] = []
    run_verify(
        world.clients, world.ami, rerun_gate=True, evidence_bucket=world.bucket, echo=lines.append
    )
    again = regate(verify_ami(world.clients, world.ami, evidence_bucket=world.bucket))
    assert again.reproduced, (again.problems, again.mismatches)
    assert [s.name for s in again.sections] == ["cis", "node", "vulnerabilities"]
    assert all(s.reproduced for s in again.sections)
    assert any("node: PASS" in line and "reproduced" in line for line in lines), lines


def _swapped(world: World, cves: list[Cve], counts: bool) -> dict[str, bytes]:
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    instance = json.loads(result.inputs["evidence/findings.json"])
    targets = list(instance)
    inputs = dict(result.inputs)
    inputs["evidence/findings.json"] = json.dumps(findings_document(targets, cves)).encode()
    if counts:
        body = json.dumps(counts_document(targets, cves)).encode()
        inputs["evidence/finding-counts.json"] = body
    return inputs


@pytest.mark.parametrize(
    ("counts", "got"), [(True, "gives FAIL"), (False, "gives ERROR")], ids=["consistent", "alone"]
)
def test_regate_catches_a_swapped_findings_file(world: World, counts: bool, got: str) -> None:
    """Findings with a fixable CRITICAL put in place of the stored ones (with matching counts,
    or alone): the vulnerabilities section is not reproduced, and says so by name."""
    result = verify_ami(world.clients, world.ami, evidence_bucket=world.bucket)
    claims, _ = statement.read(result.statement or {})
    assert result.time_verified is not None
    critical = [Cve("CVE-2026-1000"), Cve("CVE-2026-9999", "CRITICAL", "YES")]
    again = regate_bytes(
        _swapped(world, critical, counts),
        world.ami,
        result.time_verified,
        claims.verdict,
        claims.sections,
    )
    assert not again.reproduced
    assert [line.split(":")[0] for line in again.mismatches] == ["vulnerabilities"]
    assert got in again.mismatches[0] and "the record says PASS" in again.mismatches[0]


def test_a_swapped_findings_object_in_the_store_is_refused(world: World) -> None:
    key = world.prefix + "evidence/findings.json"
    s3_client = world.clients.s3
    assert s3_client is not None
    original = s3_client.get_object(Bucket=world.bucket, Key=key)["Body"].read()
    try:
        s3_client.put_object(Bucket=world.bucket, Key=key, Body=b'{"i-0": []}')
        with pytest.raises(GateBlocked) as caught:
            run_verify(
                world.clients, world.ami, rerun_gate=True, evidence_bucket=world.bucket,
                echo=lambda _: None,
            )  # fmt: skip
        assert any("findings.json" in line and "differs from the signed" in line
                   for line in caught.value.lines())  # fmt: skip
    finally:
        s3_client.put_object(Bucket=world.bucket, Key=key, Body=original)


# --- validly signed records that say something the sections do not back -------------------


def _resigned(world: World, run: str, change: Callable[[dict[str, Any]], None]) -> None:
    """The genuine statement changed by ``change`` and signed again with the signing key (what
    only the key's holder can do), under ``<ami>/<run>/`` with copies of its inputs; the AMI's
    pointer tags name it."""
    doc = _statement(world)
    prefix = store.run_prefix(ACCOUNT, "us-east-1", world.ami, run)
    for item in doc["predicate"]["inputAttestations"]:
        where = store.parse_s3_uri(item["uri"])
        assert where is not None
        body = s3.get_object(world.clients, world.bucket, where[1], ACCOUNT)
        name = where[1].removeprefix(world.prefix)
        world.clients.s3.put_object(Bucket=world.bucket, Key=prefix + name, Body=body)  # type: ignore[union-attr]
        item["uri"] = store.s3_uri(world.bucket, prefix + name)
    doc["predicate"]["annotations"]["runId"] = run
    when = datetime.fromisoformat(doc["predicate"]["timeVerified"].replace("Z", "+00:00"))
    later = when + timedelta(hours=1)  # the newest record: it alone speaks for the AMI
    doc["predicate"]["timeVerified"] = later.isoformat().replace("+00:00", "Z")
    change(doc)
    payload = statement.canonical_json(doc)
    unsigned = dsse.Envelope(dsse.PAYLOAD_TYPE, payload, ())
    arn, sig = kms.sign_digest(world.clients, store.DEFAULT_KEY_ALIAS, unsigned.pae_sha256)
    body = dsse.Envelope(dsse.PAYLOAD_TYPE, payload, (dsse.Signature(arn, sig),)).to_json()
    world.clients.s3.put_object(Bucket=world.bucket, Key=prefix + store.ENVELOPE, Body=body)  # type: ignore[union-attr]
    tags = {
        store.ATTESTATION_TAG: store.s3_uri(world.bucket, prefix + store.ENVELOPE),
        store.ATTESTATION_SHA_TAG: statement.sha256_hex(body),
        "cis:run-id": run,
    }
    world.clients.ec2.create_tags(
        Resources=[world.ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )


def _notes(doc: dict[str, Any]) -> dict[str, Any]:
    notes: dict[str, Any] = doc["predicate"]["annotations"]
    return notes


def _node_failed(doc: dict[str, Any]) -> None:
    _notes(doc)["sections"]["node"]["verdict"] = "FAIL"


def _no_vulnerabilities(doc: dict[str, Any]) -> None:
    del _notes(doc)["sections"]["vulnerabilities"]


def _no_sections(doc: dict[str, Any]) -> None:
    del _notes(doc)["sections"]


def _without(name: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        pred = doc["predicate"]
        pred["inputAttestations"] = [
            i for i in pred["inputAttestations"] if not i["uri"].endswith("/" + name)
        ]

    return change


FORGED = {
    "sections-contradict-the-verdict": (
        _node_failed,
        "sections (CIS PASS, node FAIL, vulnerabilities PASS) combine to FAIL, not its stated "
        "verdict PASS",
    ),
    "a-section-missing": (_no_vulnerabilities, "the record has no vulnerabilities section"),
    "no-sections": (_no_sections, "the record states no sections"),
    "no-probe-evidence": (
        _without("evidence/node-probe.json"),
        "states a node section but names no evidence/node-probe.json among its inputs",
    ),
    "no-findings-evidence": (
        _without("evidence/findings.json"),
        "states a vulnerabilities section but names no evidence/findings.json",
    ),
}


@pytest.fixture
def restored(world: World) -> Iterator[World]:
    """Take away what a test adds to the store, put the AMI's pointer tags back."""
    image = world.clients.ec2.describe_images(ImageIds=[world.ami])["Images"][0]
    before = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    keys = set(s3.list_keys(world.clients, world.bucket, "", ACCOUNT))
    yield world
    for key in set(s3.list_keys(world.clients, world.bucket, "", ACCOUNT)) - keys:
        world.clients.s3.delete_object(Bucket=world.bucket, Key=key)  # type: ignore[union-attr]
    world.clients.ec2.create_tags(
        Resources=[world.ami], Tags=[{"Key": k, "Value": v} for k, v in before.items()]
    )


@pytest.mark.parametrize("case", sorted(FORGED))
def test_a_validly_signed_record_whose_sections_do_not_hold_is_refused(
    restored: World, case: str
) -> None:
    change, reason = FORGED[case]
    _resigned(restored, f"forged-{case}", change)
    result = verify_ami(restored.clients, restored.ami, evidence_bucket=restored.bucket)
    assert not result.ok
    assert [r for r in result.reasons if reason in r] == list(result.reasons), result.reasons
    assert "signature" not in {name for name, ok, _ in result.checks if not ok}


def test_regate_names_the_section_whose_signed_counts_the_evidence_does_not_give(
    restored: World,
) -> None:
    """Signed, consistent (all PASS) and backed by intact inputs, but the record hides the
    finding its own stored evidence holds: verify passes it, ``--regate`` refuses it by section."""

    def hidden(doc: dict[str, Any]) -> None:
        _notes(doc)["sections"]["vulnerabilities"]["counts"]["MEDIUM"] = 0

    _resigned(restored, "forged-counts", hidden)
    assert verify_ami(restored.clients, restored.ami, evidence_bucket=restored.bucket).ok
    lines: list[str] = []
    with pytest.raises(GateBlocked) as caught:
        run_verify(
            restored.clients,
            restored.ami,
            rerun_gate=True,
            evidence_bucket=restored.bucket,
            echo=lines.append,
        )
    (line,) = [x for x in caught.value.lines() if "re-gate" in x]
    assert "re-gate vulnerabilities: the record says PASS" in line and "MEDIUM 1" in line
    assert any("vulnerabilities: PASS" in x and "NOT REPRODUCED" in x for x in lines), lines
    assert any("node: PASS" in x and x.endswith(" reproduced") for x in lines), lines
