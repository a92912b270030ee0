"""Benchmark: AWS calls (by operation) and overhead of ``invoke validate`` on the local AWS.

The same measurement as ``invoke bench`` (``pipeline.orchestration.bench.pipeline_overhead``):
1 AMI (a
run that also creates the one-time resources, then a steady-state run) and 4 AMIs in one run,
with scripted latencies (boot + SSM registration 90 s, a 5-minute scan, the package scan 3
minutes after registration, the node probe 13.5 s) on the local AWS's clock, with what the node
and CVE stages add, then the overhead over the sampled latency distribution and the runs that
confirm it.
Not a test. Run: python benchmarks/bench_validate_calls.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.orchestration.bench import pipeline_overhead, render_distribution  # noqa: E402


def main() -> None:
    measured = pipeline_overhead(lambda line: print(line, file=sys.stderr))
    for label, run in measured["runs"].items():
        polls = run["aws_calls_by_operation"].get("inspector2:ListCisScans", 0)
        print(
            f"{label:16} {run['aws_calls']:3d} AWS calls ({polls} ListCisScans polls; "
            f"+{run['heartbeat_calls_on_a_real_clock']} heartbeat CreateTags on a real clock), "
            f"wall {run['wall_s']:.1f} s for {run['emulated_aws_s']:.0f} s of AWS time "
            f"(ratio {run['ratio']:.3f}, worst phase {run['ratio_worst_phase']:.3f})"
        )
        for op, n in run["aws_calls_by_operation"].items():
            print(f"                 {n:3d} {op}")
        stages = run["node_and_cve"]
        print(
            f"                 node and CVE stages: {stages['aws_calls']} calls "
            f"({stages['aws_calls_per_ami']:.2f} per AMI), +{stages['added_wall_s']:.3f} s wall "
            f"over CIS only (ratio {stages['added_wall_ratio']:.4f})"
        )
    print(f"4 AMIs / 1 AMI wall time: {measured['ratio_4_amis_vs_1_ami']:.3f} (goal <= 1.15)")
    print("\n".join(render_distribution(measured["distribution"])))


if __name__ == "__main__":
    main()
