"""Benchmark: the gate in this process on ~250,000 complete result rows, 50 exceptions.

Complete results as the strict gate requires them: 1,000 targets x every AL2023 LEVEL_2
recommendation (243 rows each: manual SKIPPED, automated PASSED, 50 FAILED and excepted).
Prints wall time and tracemalloc peaks of parsing + judging and of the three reports, then
the whole-process figures: ``invoke gate`` on the same results saved to a file, as its own
process (wall time, CPU time and peak RSS, as ``invoke bench`` measures them; goal: peak RSS
<= 300 MB at 1,000 instances).
Run: python benchmarks/bench_gate.py [--instances N] [--exceptions N] [--runs N]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import gate, policy, report, results  # noqa: E402
from pipeline.orchestration.bench import GOALS, gate_dataset, gate_throughput  # noqa: E402


def run(pages: list[dict[str, object]], pol: policy.ExceptionsPolicy) -> gate.Verdict:
    parsed = results.parse_document(pages, "bench")
    chosen = gate.select_policies(parsed.rows, {pol.platform: pol})
    return gate.evaluate(
        parsed.rows,
        chosen,
        date(2026, 11, 26),
        level=2,
        expected_targets=parsed.targets,
        problems=parsed.problems,
    )


def render(verdict: gate.Verdict) -> None:
    json.dumps(report.to_json(verdict))
    report.write_junit(verdict, io.StringIO())
    report.to_markdown(verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--exceptions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1, help="runs of the whole `invoke gate`")
    args = parser.parse_args()
    pages, doc, rows = gate_dataset(args.instances, args.exceptions)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        json.dump(doc, handle)
    pol = policy.load(handle.name)

    start = time.perf_counter()
    verdict = run(pages, pol)
    judged = time.perf_counter() - start
    render(verdict)
    total = time.perf_counter() - start

    tracemalloc.start()
    verdict = run(pages, pol)
    _, gate_peak = tracemalloc.get_traced_memory()
    render(verdict)
    _, all_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"rows              {rows:,} ({args.instances} targets, {args.exceptions} exceptions)")
    print(f"verdict           {verdict.verdict.value}, {len(verdict.errors)} errors")
    print(f"parse + judge     {judged:.2f} s, peak {gate_peak / 2**20:.0f} MB beyond the input")
    print(f"+ three reports   {total:.2f} s, peak {all_peak / 2**20:.0f} MB")
    del pages, verdict

    goal = GOALS["gate_peak_rss_mb"]
    for n in range(1, args.runs + 1):
        g = gate_throughput(lambda _: None, targets=args.instances, exceptions=args.exceptions)
        print(
            f"invoke gate ({n})  {g['wall_s']:.2f} s wall, {g['cpu_s']:.2f} s CPU, peak RSS of "
            f"the whole process {g['peak_rss_mb']:.0f} MB (goal <= {goal} MB), exit "
            f"{g['exit_code']}, {g['results_file_mb']} MB results file"
        )


if __name__ == "__main__":
    main()
