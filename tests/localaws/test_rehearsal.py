"""A rehearsal's scenario sets the pipeline's SSM wait (``pipeline.ssm_timeout_s``), only for
``--local``; the shipped ``ssm-never-online`` rehearsal uses it so it ends in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.localaws import scenario
from pipeline.orchestration.chain import ChainSettings, rehearsal_timeout

ROOT = Path(__file__).resolve().parents[2]
NEVER_ONLINE = ROOT / "examples/scenarios/ssm-never-online.yaml"


def _settings(tmp_path: Path, local: bool, scenario_file: Path | None) -> ChainSettings:
    return ChainSettings(
        platforms=("al2023",),
        archs=("x86_64",),
        k8s_version=None,
        level=2,
        out_dir=tmp_path,
        policy_dir=ROOT / "policies/exceptions",
        local=local,
        scenario=scenario_file,
    )


def test_the_shipped_rehearsal_waits_seconds_not_minutes(tmp_path: Path) -> None:
    loaded = scenario.load(NEVER_ONLINE)
    assert loaded.ssm_online_after_s is None
    assert rehearsal_timeout(_settings(tmp_path, True, NEVER_ONLINE), "ssm_timeout_s", 900) == 5


@pytest.mark.parametrize(
    ("local", "body", "want"),
    [
        (True, "ssm: {online_after_s: never}\n", 900),  # no hint: the configured wait
        (True, "pipeline: {ssm_timeout_s: 12.5}\n", 12.5),
        (False, "pipeline: {ssm_timeout_s: 5}\n", 900),  # never against a real endpoint
    ],
)
def test_the_hint_applies_only_to_local_rehearsals(
    tmp_path: Path, local: bool, body: str, want: float
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    assert rehearsal_timeout(_settings(tmp_path, local, path), "ssm_timeout_s", 900) == want
    assert rehearsal_timeout(_settings(tmp_path, local, None), "ssm_timeout_s", 900) == 900


@pytest.mark.parametrize("value", [0, -1, 3601, "soon", ".inf"])
def test_the_hint_is_validated(tmp_path: Path, value: object) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"pipeline: {{ssm_timeout_s: {value}}}\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: .*ssm_timeout_s|s\.yaml: line") as caught:
        scenario.load(path)
    assert getattr(caught.value, "exit_code", None) == 2


@pytest.mark.parametrize(
    "path", sorted((ROOT / "examples/scenarios").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_shipped_rehearsal_is_valid_and_says_what_to_expect(path: Path) -> None:
    scenario.load(path)
    header = path.read_text(encoding="utf-8").splitlines()[:4]
    assert any("Expect:" in line for line in header), f"{path.name}: no 'Expect:' line"


def test_the_lying_rehearsals_set_the_documented_knobs() -> None:
    folder = ROOT / "examples/scenarios"
    assert scenario.load(folder / "dropped-failures.yaml").results.drop_status == {"FAILED"}
    first_page = scenario.load(folder / "first-page-only.yaml").results
    assert (first_page.max_pages, first_page.page_size) == (1, 50)
    assert scenario.load(folder / "wrong-level.yaml").results.scan_level == "LEVEL_1"
    swapped = scenario.load(folder / "swapped-statuses.yaml")
    assert dict(swapped.results.swap_status) == {"1.1.1.1": "3.2.1"}
    assert dict(swapped.checks) == {"1.1.1.1": "FAILED", "3.2.1": "PASSED"}
