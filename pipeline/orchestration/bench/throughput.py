"""The gate's throughput on a large scan (243,000 rows), as its own ``invoke gate`` process,
and the local AWS's start-up time."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import catalog
from pipeline.catalog import Platform

ROOT = Path(__file__).resolve().parents[3]
Echo = Callable[[str], None]


def gate_dataset(targets: int, exceptions: int) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Complete LEVEL_2 AL2023 results for ``targets`` instances (every recommendation in scope
    once: manual SKIPPED, automated PASSED, ``exceptions`` of them FAILED and excepted), as
    saved pages; the policy document excepting them; the number of rows."""
    cat = catalog.load(Platform.AMAZON_LINUX_2023)
    in_scope = list(cat.in_scope(2))
    failing = [r for r in in_scope if r.automated][:exceptions]
    failed_ids = {r.id for r in failing}
    arn = "arn:aws:inspector2:us-east-1:123456789012:owner/123456789012/cis-scan/bench"
    pages = []
    for n in range(targets):
        target = f"i-{n:017x}"
        items = []
        for rec in in_scope:
            status = "FAILED" if rec.id in failed_ids else "PASSED"
            if not rec.automated:
                status = "SKIPPED"
            item = {
                "scanArn": arn,
                "accountId": "123456789012",
                "targetResourceId": target,
                "platform": cat.platform.value,
                "checkId": rec.id,
                "title": rec.title,
                "level": rec.level_name,
                "status": status,
            }
            if status == "SKIPPED":
                item["statusReason"] = "Manual recommendation"
            items.append(item)
        pages.append({"scanResultDetails": items, "targetResourceId": target})
    policy = {
        "version": 1,
        "benchmark": {"platform": cat.platform.value, "version": cat.version},
        "exceptions": [
            {
                "check_id": r.id,
                "title": r.title,
                "reason": "Benchmark: an approved deviation.",
                "category": "operational-impact",
                "recommendation": "None.",
                "approved_by": "bench",
                "expires": "2099-01-01",
            }
            for r in failing
        ],
    }
    return pages, policy, targets * len(in_scope)


def _gate_inputs(folder: Path, targets: int, exceptions: int) -> tuple[Path, Path, int]:
    pages, policy, rows = gate_dataset(targets, exceptions)
    results = folder / "results.json"
    results.write_text(json.dumps(pages), encoding="utf-8")
    policy_path = folder / "policy.yaml"
    policy_path.write_text(json.dumps(policy), encoding="utf-8")
    return results, policy_path, rows


def gate_throughput(echo: Echo, targets: int = 1000, exceptions: int = 50) -> dict[str, Any]:
    """(c): ``invoke gate`` as its own process on ~250,000 rows: wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results, policy_path, rows = _gate_inputs(folder, targets, exceptions)
        echo(f"bench: invoke gate on {rows:,} rows ({targets} targets, {exceptions} exceptions)")
        argv = [str(Path(sys.executable).parent / "invoke"), "gate", "--results", str(results)]
        argv += ["--policy", str(policy_path), "--level", "2", "--out", str(folder / "out")]
        # A small parent starts the gate: a child forked from this (big) process would inherit
        # its memory high-water mark in ru_maxrss.
        probe = subprocess.run(
            [sys.executable, "-c", _MEASURE, json.dumps(argv)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(probe.stdout.strip().splitlines()[-1])
        size = results.stat().st_size
    return {
        "rows": rows,
        "targets": targets,
        "exceptions": exceptions,
        "results_file_mb": round(size / 2**20, 1),
        **measured,
    }


_MEASURE = """
import json, os, subprocess, sys, tempfile, time
argv = json.loads(sys.argv[1])
with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=out, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    lines = out.read().decode().strip().splitlines() or [err.read().decode().strip()]
    lines = [x for x in lines if x.startswith(("PASS", "FAIL", "ERROR"))] or lines
print(json.dumps({
    "exit_code": proc.returncode,
    "last_line": lines[-1][:200],
    "wall_s": round(wall, 2),
    "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
}))
"""

_STARTUP = """
import json, time, urllib.request
t0 = time.perf_counter()
from pipeline.localaws import LocalAws
imported = time.perf_counter() - t0
aws = LocalAws().start()
with urllib.request.urlopen(aws.endpoint + "/_localaws/health") as r:
    r.read()
listening = time.perf_counter() - t0
aws.wait_ready()
ready = time.perf_counter() - t0
aws.stop()
print(json.dumps({"import_s": imported, "listening_s": listening, "ready_s": ready}))
"""


def localaws_startup() -> dict[str, Any]:
    """(d): a fresh process: import, port answering, warm-up done (seconds since start)."""
    proc = subprocess.run(
        [sys.executable, "-c", _STARTUP],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    return {key: round(float(value), 2) for key, value in measured.items()}
