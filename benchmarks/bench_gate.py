"""Benchmark: the gate on 250,000 result rows (1,000 instances x 250 checks), 50 exceptions.

Prints wall time and peak memory; targets (2 cores): < 2 s and < 300 MB. Not a test.
Run: python benchmarks/bench_gate.py [--instances N] [--checks N]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import tempfile
import time
import tracemalloc
from datetime import date

from pipeline import catalog, gate, policy, report, results

ARN = "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/cis-scan/0f2c1e4a"


def make_policy(cat: catalog.Catalogue, count: int) -> policy.ExceptionsPolicy:
    recs = [r for r in cat.recommendations.values() if r.automated][:count]
    doc = {
        "version": 1,
        "benchmark": {"platform": cat.platform.value, "version": cat.version},
        "exceptions": [
            {
                "check_id": r.id,
                "title": r.title,
                "reason": "benchmark",
                "category": "operational-impact",
                "recommendation": "none",
                "approved_by": "bench",
                "expires": "2099-01-01",
            }
            for r in recs
        ],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        json.dump(doc, handle)
    return policy.load(handle.name)


def make_pages(cat: catalog.Catalogue, instances: int, checks: int) -> list[dict[str, object]]:
    """API-shaped pages as boto3 returns them: one page of ``checks`` items per instance."""
    catalogue = list(cat.recommendations.values())
    recs = [catalogue[i % len(catalogue)] for i in range(checks)]  # 250 > 243: some twice
    pages = []
    for n in range(instances):
        target = f"i-{n:017x}"
        items = []
        for i, r in enumerate(recs):
            status = "SKIPPED" if not r.automated else ("FAILED" if i % 5 == 0 else "PASSED")
            items.append(
                {
                    "scanArn": ARN,
                    "accountId": "123456789012",
                    "targetResourceId": target,
                    "platform": cat.platform.value,
                    "status": status,
                    "checkId": r.id,
                    "title": r.title,
                    "level": r.level_name,
                    "findingArn": f"{ARN}/cis-finding/{n}-{i}",
                }
            )
        pages.append({"scanResultDetails": items})
    return pages


def run(pages: list[dict[str, object]], pol: policy.ExceptionsPolicy) -> gate.Verdict:
    parsed = results.parse_items(results.iter_items(pages, "bench"))
    chosen = gate.select_policies(parsed.rows, {pol.platform: pol})
    return gate.evaluate(parsed.rows, chosen, date(2026, 11, 26), problems=parsed.problems)


def render(verdict: gate.Verdict) -> None:
    json.dumps(report.to_json(verdict))
    report.write_junit(verdict, io.StringIO())
    report.to_markdown(verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--checks", type=int, default=250)
    parser.add_argument("--exceptions", type=int, default=50)
    args = parser.parse_args()
    cat = catalog.load(catalog.Platform.AMAZON_LINUX_2023)
    pol = make_policy(cat, args.exceptions)
    pages = make_pages(cat, args.instances, args.checks)
    rows = sum(len(p["scanResultDetails"]) for p in pages)  # type: ignore[arg-type]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

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

    print(
        f"rows                  {rows:,} "
        f"({args.instances} instances, {len(pol.exceptions)} exceptions)"
    )
    print(
        f"verdict               {verdict.verdict.value}: "
        f"{len(verdict.failed_unexcepted):,} blocking, "
        f"{len(verdict.failed_excepted):,} excepted, {len(verdict.skipped):,} skipped"
    )
    print(f"gate wall time        {judged:.2f} s   (parse rows + judge)")
    print(f"gate + reports        {total:.2f} s   (+ verdict.json, junit.xml, summary.md)")
    print(f"gate peak memory      {gate_peak / 2**20:.0f} MB (tracemalloc, beyond the input pages)")
    print(f"with reports          {all_peak / 2**20:.0f} MB")
    print(
        f"process max RSS       {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
        f"(input pages alone: {base_rss:.0f} MB)"
    )
    print("targets               < 2 s, < 300 MB")


if __name__ == "__main__":
    main()
