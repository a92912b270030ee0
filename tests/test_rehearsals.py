"""The node and CVE rehearsals of the README, run as a user runs them: each gives its exit code
and names what blocks (``invoke build-and-validate --local --scenario ...``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from tests.test_end_to_end import ROOT, Chain, finished, start

pytestmark = pytest.mark.slow

REHEARSALS = {
    # scenario: (Invoke configuration file, exit code, a line the console must show)
    "broken-kubelet": (None, 3, "NODE FAIL i-"),
    "critical-cve": (None, 3, "VULN FAIL i-"),
    "critical-cve-excepted": ("examples/policies/cve-excepted.yaml", 0, "VULN EXCEPTED i-"),
    "coverage-never": (None, 4, "package scan not completed"),
}


@pytest.fixture(scope="module")
def rehearsals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Chain]]:
    started = {}
    for name, (config, _, _) in REHEARSALS.items():
        scenario = str(ROOT / f"examples/scenarios/{name}.yaml")
        started[name] = start(tmp_path_factory.mktemp(name), "--scenario", scenario, config=config)
    yield from finished(started)


@pytest.mark.parametrize("name", list(REHEARSALS))
def test_each_rehearsal_gives_its_documented_exit_code(
    rehearsals: dict[str, Chain], name: str
) -> None:
    run, (_, code, line) = rehearsals[name], REHEARSALS[name]
    assert run.returncode == code, run.stdout[-3000:] + run.stderr
    assert line in run.stdout
    verdict = json.loads((run.out / "verdict.json").read_text())
    assert verdict["exit_code"] == code
    if code == 4:  # an ERROR verdict says why at the top, whichever section it came from
        assert any(e.startswith("vulnerabilities: ") for e in verdict["errors"])
    readme = (ROOT / "README.md").read_text()
    assert f"{name}.yaml" in readme


def test_the_rehearsal_policy_is_the_shipped_one_plus_one_vulnerability_exception() -> None:
    shipped = yaml.safe_load((ROOT / "policies/exceptions/amazon-linux-2023.yaml").read_text())
    copy = yaml.safe_load(
        (ROOT / "examples/policies/cve-excepted/amazon-linux-2023.yaml").read_text()
    )
    (extra,) = copy["vulnerabilities"].pop("exceptions")
    shipped["vulnerabilities"].pop("exceptions")
    assert copy == shipped
    assert extra["vulnerability_id"] == "CVE-2026-0001"
