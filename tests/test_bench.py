"""``invoke bench``'s inputs stay valid as the gate gets stricter (no timing here: numbers
live in the benchmark's output, never in tests)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from pipeline import bench, gate, policy, results


def test_the_gate_dataset_is_complete_and_passes(tmp_path: Path) -> None:
    pages, doc, rows = bench.gate_dataset(targets=3, exceptions=5)
    assert rows == sum(len(p["scanResultDetails"]) for p in pages) and len(pages) == 3
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(doc))
    pol = policy.load(path)
    parsed = results.parse_document(pages, "bench")
    verdict = gate.evaluate(
        parsed.rows,
        gate.select_policies(parsed.rows, {pol.platform: pol}),
        date(2026, 11, 27),
        level=2,
        expected_targets=parsed.targets,
        problems=parsed.problems,
    )
    assert verdict.verdict is gate.Outcome.PASS, verdict.errors[:3]
    assert len(verdict.failed_excepted) == 3 * 5 and not verdict.failed_unexcepted


def test_virtual_time_counts_sleeps_and_moves_the_local_aws_clock() -> None:
    moved: list[float] = []
    clock = bench.VirtualTime(advance=lambda s: moved.append(s) or s)
    clock.sleep(30)
    clock.sleep(2.5)
    assert clock.slept == 32.5 and moved == [30, 2.5]
    assert clock.clock() >= 32.5
