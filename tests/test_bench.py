"""``invoke bench``'s inputs stay valid as the gate gets stricter (no timing here: numbers
live in the benchmark's output, never in tests)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from pipeline import gate, policy, results
from pipeline.orchestration import bench


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


def test_worst_phase_is_a_whole_interval_at_the_end_of_each_wait() -> None:
    from pipeline.polling import SCAN_WAIT, SSM_WAIT

    ssm = SSM_WAIT.offsets(bench.BOOT_AND_SSM_S)
    scan = SCAN_WAIT.offsets(bench.SCAN_S)
    assert bench.worst_phase_delay_s() == (ssm[-1] - ssm[-2]) + (scan[-1] - scan[-2])
    assert round(bench.worst_phase_delay_s(), 2) == 49.84


def test_the_call_goal_is_judged_with_the_heartbeats_of_a_real_clock_too() -> None:
    assert bench.GOALS["aws_calls_1_ami"] == bench.GOALS["aws_calls_1_ami_on_a_real_clock"] == 60
