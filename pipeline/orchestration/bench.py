"""``invoke bench``: the pipeline's overhead, AWS calls, gate throughput and local AWS start-up.

Numbers only come out of here (and ``docs/benchmarks.md`` records them); no test times anything.
Needs the ``local`` extra (the local AWS) and runs offline.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import catalog, heartbeat
from pipeline.aws import AwsClients, make_clients
from pipeline.aws.images import eks_ami_parameter
from pipeline.catalog import Platform
from pipeline.errors import ConfigError
from pipeline.orchestration.chain import environ
from pipeline.packer import Arch
from pipeline.polling import SCAN_WAIT, SSM_WAIT
from pipeline.validate import Runtime, ValidateSettings, run_validate

ROOT = Path(__file__).resolve().parents[1]
Echo = Callable[[str], None]

# Scripted AWS latencies (seconds of the local AWS's clock): instance boot plus SSM agent
# registration (what a real EKS node takes, roughly), and a 5-minute CIS scan.
BOOT_AND_SSM_S = 90.0
SCAN_S = 300.0
EMULATED_AWS_S = BOOT_AND_SSM_S + SCAN_S
SCENARIO: dict[str, Any] = {
    "ssm": {"online_after_s": BOOT_AND_SSM_S},
    "scan": {"duration_s": SCAN_S},
    "inspector": {"initially_enabled": True},
}
FOUR_AMIS = (
    (Platform.AMAZON_LINUX_2023, Arch.X86_64),
    (Platform.AMAZON_LINUX_2023, Arch.ARM64),
    (Platform.AMAZON_LINUX_2, Arch.X86_64),
    (Platform.AMAZON_LINUX_2, Arch.ARM64),
)
GOALS = {
    "overhead_ratio_1_ami": 1.05,
    "ratio_4_amis_vs_1_ami": 1.15,
    "aws_calls_1_ami": 60,
    "aws_calls_1_ami_on_a_real_clock": 60,  # with the heartbeats a 6.5-minute run writes
}


@dataclass
class VirtualTime:
    """The run's clock: sleeping costs no wall time but moves the local AWS's clock and this
    one; the modelled wall time of a run is what it slept plus what it really computed."""

    advance: Callable[[float], float]
    slept: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.advance(seconds)

    def clock(self) -> float:
        return self.slept + (time.perf_counter() - self.started)


def machine() -> dict[str, Any]:
    """nproc, memory and CPU model of this machine (Linux; ``unknown`` elsewhere)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average_1min_at_start": round(load, 2) if load is not None else None,
    }


def hardened_ami(clients: AwsClients, plat: Platform, arch: Arch, n: int) -> str:
    """An AMI as ``invoke build`` leaves it (EKS base + provenance tags), without Packer."""
    base = clients.ssm.get_parameter(Name=eks_ami_parameter("1.32", plat, arch))["Parameter"]
    instance = clients.ec2.run_instances(
        ImageId=str(base["Value"]), InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    ami = clients.ec2.create_image(InstanceId=instance, Name=f"bench-{plat.short}-{arch}-{n}")
    clients.ec2.terminate_instances(InstanceIds=[instance])
    tags = {
        "cis-ami:platform": plat.value,
        "cis-ami:architecture": arch.value,
        "cis-ami:kubernetes-version": "1.32",
        "cis-ami:hardening-level": "2",
    }
    clients.ec2.create_tags(
        Resources=[ami["ImageId"]], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    return str(ami["ImageId"])


def worst_phase_delay_s() -> float:
    """How late the run can see the ends of the scripted waits at worst: a whole polling
    interval each (the end just after a poll), where the scripted ends fall on the schedules."""
    delay = 0.0
    for schedule, end in ((SSM_WAIT, BOOT_AND_SSM_S), (SCAN_WAIT, SCAN_S)):
        offsets = schedule.offsets(end)
        delay += offsets[-1] - (offsets[-2] if len(offsets) > 1 else 0.0)
    return delay


def measure_validate(aws: Any, amis: list[str], out: Path) -> dict[str, Any]:
    """One ``run_validate`` of ``amis`` on the local AWS ``aws`` (manual clock), polling on real
    AWS's schedules: its verdict, modelled wall time, ratio and AWS calls by operation."""
    clients = make_clients()
    virtual = VirtualTime(aws.advance)
    verdict = run_validate(
        ValidateSettings(
            amis=tuple(amis),
            out_dir=out,
            policy_dir=ROOT / "policies/exceptions",
            enable_inspector=True,
            instance_types={"x86_64": "t3.medium", "arm64": "t4g.medium"},
            real_aws_polling=True,  # the latencies are real AWS's, so are the polling schedules
        ),
        clients,
        Runtime(echo=lambda _: None, sleep=virtual.sleep, clock=virtual.clock),
    )
    computed = time.perf_counter() - virtual.started
    wall = virtual.slept + computed
    worst = EMULATED_AWS_S + worst_phase_delay_s() + computed
    # The heartbeat beats on the real clock, which a virtual-time run never lets tick: on AWS
    # it re-tags the instance and security group (one ec2:CreateTags) every INTERVAL.
    beats = int(virtual.slept // heartbeat.INTERVAL.total_seconds())
    return {
        "amis": len(amis),
        "verdict": verdict.verdict.value,
        "emulated_aws_s": EMULATED_AWS_S,
        "waited_s": round(virtual.slept, 1),
        "computed_s": round(computed, 2),
        "wall_s": round(wall, 1),
        "ratio": round(wall / EMULATED_AWS_S, 3),
        "ratio_worst_phase": round(worst / EMULATED_AWS_S, 3),
        "aws_calls": clients.calls.total,
        "aws_calls_by_operation": clients.calls.as_dict(),
        "heartbeat_calls_on_a_real_clock": beats,
        "aws_calls_on_a_real_clock": clients.calls.total + beats,
    }


def pipeline_overhead(echo: Echo) -> dict[str, Any]:
    """(a) and (b): one validate run of 1 AMI and one of 4 AMIs on the local AWS with scripted
    latencies (boot + SSM registration 90 s, a 5-minute scan)."""
    from pipeline.localaws import LocalAws
    from pipeline.localaws.clock import ManualClock

    aws = LocalAws(clock=ManualClock(), scenario=SCENARIO).start().wait_ready()
    runs: dict[str, dict[str, Any]] = {}
    try:
        with environ(aws.env()), tempfile.TemporaryDirectory() as tmp:
            aws.reset()
            clients = make_clients()
            for label, combos in (
                ("1_ami_first_run", FOUR_AMIS[:1]),  # also creates the one-time resources
                ("1_ami", FOUR_AMIS[:1]),
                ("4_amis", FOUR_AMIS),
            ):
                amis = [
                    hardened_ami(clients, p, a, n) for n, (p, a) in enumerate(combos, len(runs))
                ]
                echo(f"bench: validate {len(amis)} AMI(s) on the local AWS ({label}) ...")
                runs[label] = measure_validate(aws, amis, Path(tmp) / label)
    finally:
        aws.stop()
    one, four = runs["1_ami"], runs["4_amis"]
    return {
        "scripted_latencies_s": {"boot_and_ssm": BOOT_AND_SSM_S, "scan": SCAN_S},
        "runs": runs,
        "overhead_ratio_1_ami": one["ratio"],
        "overhead_ratio_4_amis": four["ratio"],
        "overhead_ratio_1_ami_worst_phase": one["ratio_worst_phase"],
        "ratio_4_amis_vs_1_ami": round(four["wall_s"] / one["wall_s"], 3),
        "aws_calls_1_ami": one["aws_calls"],
        "aws_calls_1_ami_on_a_real_clock": one["aws_calls_on_a_real_clock"],
        "aws_calls_1_ami_first_run": runs["1_ami_first_run"]["aws_calls"],
        "aws_calls_4_amis": four["aws_calls"],
    }


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


def run_bench(echo: Echo, *, gate_targets: int = 1000) -> dict[str, Any]:
    """Every benchmark; returns the numbers (``invoke bench --json`` prints them as JSON)."""
    try:
        import pipeline.localaws  # noqa: F401 - the `local` extra
    except ImportError as exc:
        raise ConfigError(
            "invoke bench needs the local AWS: pip install '.[local]' (or scripts/bootstrap)"
        ) from exc
    report: dict[str, Any] = {"machine": machine(), "goals": GOALS}
    report["pipeline"] = pipeline_overhead(echo)
    report["gate"] = gate_throughput(echo, targets=gate_targets)
    report["local_aws_startup"] = localaws_startup()
    pipe = report["pipeline"]
    report["met"] = {
        name: pipe[name] <= goal
        for name, goal in GOALS.items()
        if isinstance(pipe.get(name), int | float)
    }
    return report


def render_text(report: Mapping[str, Any]) -> str:
    """The numbers as a short table for people."""
    m, p, g, s = (report[k] for k in ("machine", "pipeline", "gate", "local_aws_startup"))
    lines = [
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, "
        f"load {m['load_average_1min_at_start']}",
        f"pipeline overhead (scripted AWS time {EMULATED_AWS_S:.0f} s: boot+SSM "
        f"{BOOT_AND_SSM_S:.0f} s, scan {SCAN_S:.0f} s)",
    ]
    for label in ("1_ami_first_run", "1_ami", "4_amis"):
        run = p["runs"][label]
        lines.append(
            f"  {label:15} wall {run['wall_s']:.1f} s = waited {run['waited_s']:.1f} + computed "
            f"{run['computed_s']:.2f}  ratio {run['ratio']:.3f} (worst phase "
            f"{run['ratio_worst_phase']:.3f})  {run['aws_calls']} AWS calls "
            f"(+{run['heartbeat_calls_on_a_real_clock']} heartbeats on a real clock)"
        )
    lines.append(
        f"  4 AMIs vs 1 AMI: ratio {p['ratio_4_amis_vs_1_ami']:.3f} (goal <= "
        f"{GOALS['ratio_4_amis_vs_1_ami']})"
    )
    for op, n in p["runs"]["1_ami"]["aws_calls_by_operation"].items():
        lines.append(f"    {n:3d} {op}")
    lines.append(
        f"gate: {g['rows']:,} rows, {g['targets']} targets, {g['exceptions']} exceptions: "
        f"{g['wall_s']:.2f} s, peak RSS {g['peak_rss_mb']:.0f} MB, exit {g['exit_code']}"
    )
    lines.append(
        f"local AWS start-up: import {s['import_s']:.2f} s, listening {s['listening_s']:.2f} s, "
        f"ready {s['ready_s']:.2f} s"
    )
    lines.append(f"goals met: {report['met']}")
    return "\n".join(lines)
