"""The nightly rebuild: the input fingerprint, skipping the build when nothing changed, rebuilding
when the EKS base AMI changed (a new value of its public SSM parameter), and the drift report."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline import drift, gate, policy, results
from pipeline.aws import AwsClients
from pipeline.aws.images import eks_ami_parameter
from pipeline.catalog import Platform
from pipeline.fingerprint import Inputs, fingerprint, inputs_fingerprint
from pipeline.localaws import LocalAws, moto_state
from pipeline.orchestration import nightly
from pipeline.orchestration.chain import ChainSettings
from pipeline.packer import PACKER_DIR, Arch
from pipeline.tags import FINGERPRINT_TAG
from tests._complete import complete_rows, page
from tests.release.conftest import POLICY_DIR, base_ami, pipeline_ami

INPUTS = Inputs(
    platform="AMAZON_LINUX_2023",
    arch="x86_64",
    k8s_version="1.32",
    level=2,
    local=True,
    source_ami="ami-0123456789abcdef0",
    scripts_sha256="1" * 64,
    template_sha256="2" * 64,
    variables_sha256="3" * 64,
    policy_sha256="4" * 64,
)


def test_fingerprint_is_stable_and_covers_every_input() -> None:
    value = fingerprint(INPUTS)
    assert value == fingerprint(Inputs(**vars_of(INPUTS)))
    assert value.startswith("sha256:") and len(value) == 7 + 64
    for field in vars_of(INPUTS):
        changed = dict(vars_of(INPUTS))
        changed[field] = not changed[field] if isinstance(changed[field], bool) else (
            changed[field] + 1 if isinstance(changed[field], int) else changed[field] + "x"
        )  # fmt: skip
        assert fingerprint(Inputs(**changed)) != value, field


def vars_of(inputs: Inputs) -> dict[str, Any]:
    return {f: getattr(inputs, f) for f in Inputs.__slots__}


def _settings(tmp_path: Path) -> ChainSettings:
    return ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version="1.32",
        level=2,
        out_dir=tmp_path / "out",
        policy_dir=POLICY_DIR,
        local=True,
        skip_unchanged=True,
    )


def _fingerprint_now(clients: AwsClients, packer_dir: Path = PACKER_DIR) -> str:
    return inputs_fingerprint(
        Platform.AMAZON_LINUX_2023,
        Arch.X86_64,
        "1.32",
        2,
        True,
        base_ami(clients),
        POLICY_DIR,
        packer_dir,
    )


def ANY_IMAGE(*_: Any) -> None:  # noqa: N802  # these tests are about the fingerprint only
    """Every image counts as the pipeline's build (the proof: test_nightly_provenance.py)."""


def _set_base(aws: LocalAws, new_value: str) -> None:
    """A new EKS release: the public parameter gets a new value (moto refuses PutParameter on
    /aws/..., so the test writes the local AWS's state directly, as its seeding does)."""
    name = eks_ami_parameter("1.32", Platform.AMAZON_LINUX_2023, Arch.X86_64)
    versions = moto_state.ssm(aws.account_id, "us-east-1")._parameters[name]
    versions[-1].value = new_value


def test_skip_when_unchanged_rebuild_when_the_base_ami_changed(
    aws: LocalAws, clients: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    def fake_build(platforms: tuple[str, ...], archs: tuple[str, ...], *_: Any, **__: Any) -> list:
        built.append((tuple(platforms), tuple(archs)))
        return []

    monkeypatch.setattr(nightly, "run_build", fake_build)
    monkeypatch.setattr(nightly, "built_by_pipeline", lambda *_: ANY_IMAGE)
    settings = _settings(tmp_path)

    first = nightly.decide(settings, clients, proven=ANY_IMAGE)
    assert first[0].reuse is None and "no earlier pipeline AMI" in first[0].why

    base = base_ami(clients)
    ami = pipeline_ami(
        clients,
        "nightly-1",
        tags={FINGERPRINT_TAG: _fingerprint_now(clients), "cis-ami:source-ami": base},
    )
    lines: list[str] = []
    amis, decisions = nightly.build_or_reuse(settings, clients, "run-2", lines.append)
    assert amis == (ami,) and built == []
    assert decisions[0].as_dict()["action"] == "re-validated"
    assert any(f"skip build, re-validate {ami}: inputs unchanged" in line for line in lines)

    newer = base_ami(clients, "1.31")  # any other AMI ID: the next EKS release
    _set_base(aws, newer)
    lines.clear()
    amis, decisions = nightly.build_or_reuse(settings, clients, "run-3", lines.append)
    assert built == [(("al2023",), ("x86_64",))]
    assert decisions[0].reuse is None
    assert f"base AMI changed from {base} to {newer}" in decisions[0].why


def test_a_changed_hardening_script_rebuilds(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    packer = tmp_path / "packer"
    shutil.copytree(PACKER_DIR, packer)
    pipeline_ami(
        clients,
        "nightly-2",
        tags={
            FINGERPRINT_TAG: _fingerprint_now(clients, packer),
            "cis-ami:source-ami": base_ami(clients),
        },
    )
    assert nightly.decide(_settings(tmp_path), clients, packer, ANY_IMAGE)[0].reuse is not None
    script = next(p for p in sorted((packer / "scripts").rglob("*.sh")))
    script.write_text(script.read_text() + "\n# changed\n")
    decision = nightly.decide(_settings(tmp_path), clients, packer, ANY_IMAGE)[0]
    assert decision.reuse is None and "inputs changed since" in decision.why


def _verdict(failed: list[str], target: str = "i-0123456789abcdef0") -> gate.Verdict:
    rows = complete_rows(level=2, target=target, failed=failed)
    parsed = results.parse_document(page(rows), "results.json")
    available = policy.load_all(policy.discover(POLICY_DIR))
    chosen = gate.select_policies(parsed.rows, available)
    return gate.evaluate(parsed.rows, chosen, date(2026, 11, 27), level=2)


def test_drift_lists_new_failures_newly_passing_and_counts() -> None:
    before = _verdict(["3.2.1", "1.1.1.4"])
    after = _verdict(["3.2.1", "1.1.1.5"])
    was = drift.observed(before, "i-0123456789abcdef0")
    now = drift.observed(after, "i-0123456789abcdef0")
    baseline = drift.Baseline(
        ami="ami-0aaaaaaaaaaaaaaaa",
        source=drift.FALLBACK,
        verdict="FAIL",
        level="LEVEL_2",
        failed=drift.decode_failed(drift.encode_failed(was.failed)),
        counts=drift.decode_counts(drift.encode_counts(was.counts)),
    )
    report = drift.compare("ami-0bbbbbbbbbbbbbbbb", "stable", baseline, now, after)
    assert report["new_failures"] == ["1.1.1.5"]
    assert report["newly_passing"] == ["1.1.1.4"]
    assert report["counts"]["before"] == report["counts"]["after"] == dict(now.counts)
    assert report["baseline"]["source"] == "verdict tags (unsigned fallback)"
    assert {n["check_id"] for n in report["unused_exceptions"]} == {
        n.exception.check_id for n in after.unused_exceptions
    }
    markdown = "\n".join(drift.render_markdown([report]))
    assert "new failures: 1.1.1.5" in markdown and "newly passing: 1.1.1.4" in markdown
    assert "unsigned fallback" in markdown


def test_drift_without_a_baseline_or_per_check_record_says_so() -> None:
    after = _verdict([])
    now = drift.observed(after, "i-0123456789abcdef0")
    none = drift.compare("ami-0bbbbbbbbbbbbbbbb", "stable", None, now, after)
    assert none["baseline"] is None and "no current image" in none["notes"][0]
    cut = drift.Baseline("ami-0a", drift.FALLBACK, "PASS", "LEVEL_2", None, None)
    partial = drift.compare("ami-0b", "stable", cut, now, after)
    assert partial["new_failures"] is None and "cannot be listed" in partial["notes"][0]
    assert drift.decode_failed(drift.encode_failed([f"1.{i}.1" for i in range(100)])) is None
    assert drift.decode_counts("passed=1,failed=x,skipped=0") is None


def test_drift_section_is_inert_markdown() -> None:
    hostile = "ami-0a<script>alert(1)</script>[x](http://evil)`code`|#"
    lines = drift.summary_sections(
        {
            "rebuild": [{"image": "al2023-x86_64", "action": "built", "why": hostile}],
            "drift": [
                {"ami": hostile, "channel": "stable", "baseline": None, "notes": [hostile]},
                {"error": hostile},
            ],
        }
    )
    text = "\n".join(lines)
    for bad in "<>[]`|#":
        assert bad not in text.replace("### ", "")
    assert "drift report incomplete" in text
