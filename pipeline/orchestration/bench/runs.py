"""Full ``validate`` runs on the local AWS's manual clock: the fixed point, and the sampled points
that confirm the computed distribution, with every AWS call's time."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import findings, heartbeat, node
from pipeline.aws import AwsClients, make_clients
from pipeline.aws.images import eks_ami_parameter
from pipeline.catalog import Platform
from pipeline.orchestration.bench.latency import (
    BOOT_AND_SSM_S,
    FOUR_AMIS,
    PACKAGE_SCAN_RANGE_S,
    PACKAGE_SCAN_S,
    POLL_OPERATIONS,
    PROBE_S,
    SAMPLE_SEED,
    SCAN_RANGE_S,
    SCAN_S,
    SCENARIO,
    SSM_RANGE_S,
    WINDOW_S,
    Latencies,
    confirmation_points,
    distribution,
    latency_sample,
    most_in_window,
    polling_peak_by_schedule,
    predict,
    scenario,
    worst_phase_delay_s,
)
from pipeline.orchestration.chain import environ
from pipeline.packer import Arch
from pipeline.validate import Runtime, ValidateSettings, readiness, run_validate

ROOT = Path(__file__).resolve().parents[3]
Echo = Callable[[str], None]


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


@dataclass
class CallLog:
    """Every AWS call of a run, as (seconds on the run's clock, ``service:Operation``): a
    botocore ``before-call`` hook, like the clients' own counter."""

    clock: Callable[[], float]
    calls: list[tuple[float, str]] = field(default_factory=list)
    in_stages: bool = False  # inside the node and CVE stages (``timed_stages``)
    stage_calls: list[str] = field(default_factory=list)  # theirs, and their evidence uploads
    stages_s: float = 0.0  # what their steps and uploads took (time.perf_counter)
    _upload_started: float | None = None

    def __call__(self, event_name: str, **kwargs: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        self.calls.append((self.clock(), f"{service}:{operation}"))
        if self.in_stages:
            self.stage_calls.append(f"{service}:{operation}")
        elif operation == "PutObject" and _stage_evidence(kwargs.get("params")):
            self.stage_calls.append(f"{service}:{operation}")
            self._upload_started = time.perf_counter()

    def after(self, **_: Any) -> None:
        if self._upload_started is not None:
            self.stages_s += time.perf_counter() - self._upload_started
            self._upload_started = None

    def attach(self, clients: AwsClients) -> CallLog:
        for name in ("ec2", "iam", "inspector2", "ssm", "sts", "s3", "kms"):
            client = getattr(clients, name)
            if client is not None:
                client.meta.events.register("before-call.*.*", self)
                client.meta.events.register("after-call.*.*", self.after)
        return self

    def polling_phases(self) -> list[tuple[float, float]]:
        """(first poll, last poll) of each wait that polled."""
        phases = []
        for operation in POLL_OPERATIONS:
            at = [t for t, op in self.calls if op == operation]
            if at:
                phases.append((min(at), max(at)))
        return phases

    def in_polling_phases(self) -> list[float]:
        """When the calls made during a polling phase (its polls and anything else) happened."""
        phases = self.polling_phases()
        return [t for t, _ in self.calls if any(a <= t <= b for a, b in phases)]

    def poll_times(self) -> list[float]:
        """When the run polled: one time for the calls of one poll (the scan loop's poll calls
        up to three operations at once; they are less than a second apart)."""
        times: list[float] = []
        for at in sorted(t for t, op in self.calls if op in POLL_OPERATIONS):
            if not times or at - times[-1] >= 1.0:
                times.append(at)
        return times


STAGE_EVIDENCE = (
    node.EVIDENCE_FILE,
    findings.COVERAGE_FILE,
    findings.FINDINGS_FILE,
    findings.COUNTS_FILE,
    findings.LAUNCHED_FILE,
)


def _stage_evidence(params: Any) -> bool:
    """Whether a PutObject request uploads the node or CVE stages' evidence."""
    path = str(params.get("url_path", "")) if isinstance(params, dict) else ""
    return path.rsplit("/", 1)[-1].split("?", 1)[0] in STAGE_EVIDENCE


@contextmanager
def timed_stages(log: CallLog) -> Iterator[None]:
    """Time the node and CVE stages' steps (``readiness.start``, each ``tick`` of the scan loop,
    ``collect``) and mark their AWS calls, for what the same run costs without them."""
    saved = {name: getattr(readiness, name) for name in ("start", "tick", "collect")}

    def timed(step: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            began, log.in_stages = time.perf_counter(), True
            try:
                return step(*args, **kwargs)
            finally:
                log.in_stages = False
                log.stages_s += time.perf_counter() - began

        return run

    for name, step in saved.items():
        setattr(readiness, name, timed(step))
    try:
        yield
    finally:
        for name, step in saved.items():
            setattr(readiness, name, step)


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


def measure_validate(
    aws: Any,
    amis: list[str],
    out: Path,
    latencies: Latencies = (BOOT_AND_SSM_S, SCAN_S, PACKAGE_SCAN_S),
) -> dict[str, Any]:
    """One ``run_validate`` of ``amis`` on the local AWS ``aws`` (manual clock, its scenario set
    to ``latencies``: SSM registration, CIS scan and package scan seconds), polling on real
    AWS's schedules: its verdict, modelled wall time, ratio, AWS calls by operation, call rate,
    and what its node and CVE stages cost (calls, computing)."""
    clients = make_clients()
    virtual = VirtualTime(aws.advance)
    log = CallLog(virtual.clock).attach(clients)
    with timed_stages(log):
        verdict = run_validate(
            ValidateSettings(
                amis=tuple(amis),
                out_dir=out,
                policy_dir=ROOT / "policies/exceptions",
                enable_inspector=True,
                instance_types={"x86_64": "t3.medium", "arm64": "t4g.medium"},
                real_aws_polling=True,  # the latencies are real AWS's, so are the schedules
            ),
            clients,
            Runtime(echo=lambda _: None, sleep=virtual.sleep, clock=virtual.clock),
        )
    computed = time.perf_counter() - virtual.started
    wall = virtual.slept + computed
    expected = predict(*latencies)
    aws_s = expected.aws_s
    worst = aws_s + worst_phase_delay_s(*latencies) + computed
    # The heartbeat beats on the real clock, which a virtual-time run never lets tick: on AWS
    # it re-tags the instance and security group (one ec2:CreateTags) every INTERVAL.
    beats = int(virtual.slept // heartbeat.INTERVAL.total_seconds())
    calls = clients.calls.as_dict()
    polls = {op: calls.get(op, 0) for op in POLL_OPERATIONS}
    stage_calls: dict[str, int] = {}
    for op in log.stage_calls:
        stage_calls[op] = stage_calls.get(op, 0) + 1
    # Without the node and CVE stages: the loop ends when the scan is seen to end, and neither
    # their steps nor their calls are made (the rest of the run is the same code).
    cis_only_wall = expected.cis_only_waited_s + computed - log.stages_s
    return {
        "amis": len(amis),
        "verdict": verdict.verdict.value,
        "latencies_s": {"ssm": latencies[0], "scan": latencies[1], "package_scan": latencies[2]},
        "emulated_aws_s": round(aws_s, 3),
        "waited_s": round(virtual.slept, 3),
        "computed_s": round(computed, 2),
        "wall_s": round(wall, 3),
        "ratio": round(wall / aws_s, 3),
        "ratio_worst_phase": round(worst / aws_s, 3),
        "aws_calls": clients.calls.total,
        "aws_calls_by_operation": calls,
        "polls": sum(polls.values()),
        "polls_by_operation": polls,
        "node_and_cve": {
            "computed_s": round(log.stages_s, 3),
            "waited_s": round(virtual.slept - expected.cis_only_waited_s, 3),
            "aws_calls": len(log.stage_calls),
            "aws_calls_per_ami": round(len(log.stage_calls) / len(amis), 2),
            "aws_calls_by_operation": dict(sorted(stage_calls.items())),
            "cis_only_wall_s": round(cis_only_wall, 3),
            "added_wall_s": round(wall - cis_only_wall, 3),
            "added_wall_ratio": round(wall / cis_only_wall, 4),
        },
        "heartbeat_calls_on_a_real_clock": beats,
        "aws_calls_on_a_real_clock": clients.calls.total + beats,
        "aws_calls_per_5s_on_a_real_clock": round(
            (clients.calls.total + beats) * WINDOW_S / wall, 2
        ),
        "polls_peak_per_5s": most_in_window(log.poll_times()),
        "polling_calls_peak_per_5s": most_in_window(log.in_polling_phases()),
        "other_calls_while_polling": len(log.in_polling_phases()) - sum(polls.values()),
        "calls_peak_per_5s": most_in_window(t for t, _ in log.calls),
    }


def confirm(measured: Mapping[str, Any]) -> dict[str, Any]:
    """A measured run against what the schedules predict for its latencies: the same polls of
    each operation and the same waiting (to the millisecond), and a PASS."""
    latencies = measured["latencies_s"]
    expected = predict(latencies["ssm"], latencies["scan"], latencies["package_scan"])
    as_predicted = (
        measured["verdict"] == "PASS"
        and measured["polls"] == expected.polls
        and measured.get("polls_by_operation", expected.polls_by_operation())
        == expected.polls_by_operation()
        and abs(measured["waited_s"] - expected.waited_s) < 1e-3
    )
    return {
        "amis": measured["amis"],
        "ssm_s": latencies["ssm"],
        "scan_s": latencies["scan"],
        "package_scan_s": latencies["package_scan"],
        "verdict": measured["verdict"],
        "polls": measured["polls"],
        "predicted_polls": expected.polls,
        "predicted_polls_by_operation": expected.polls_by_operation(),
        "waited_s": measured["waited_s"],
        "predicted_waited_s": round(expected.waited_s, 3),
        "computed_s": measured["computed_s"],
        "ratio": measured["ratio"],
        "predicted_ratio": round(expected.ratio(measured["computed_s"]), 3),
        "aws_calls": measured["aws_calls"],
        "polls_peak_per_5s": measured.get("polls_peak_per_5s", 1),
        "polling_calls_peak_per_5s": measured["polling_calls_peak_per_5s"],
        "as_predicted": as_predicted,
    }


def pipeline_overhead(echo: Echo) -> dict[str, Any]:
    """(a) and (b): validate runs on the local AWS (manual clock). The benchmark's fixed point
    (boot + SSM registration 90 s, a 5-minute scan, the package scan 3 minutes after
    registration: 1 AMI in a fresh account, 1 AMI, 4 AMIs), then 1 and 4 AMIs at sampled points,
    which confirm the distribution computed from the schedules over the whole sample."""
    from pipeline.localaws import LocalAws  # the optional `local` extra (moto)
    from pipeline.localaws.clock import ManualClock  # the optional `local` extra

    aws = LocalAws(clock=ManualClock(), scenario=SCENARIO).start().wait_ready()
    runs: dict[str, dict[str, Any]] = {}
    confirmations: list[dict[str, Any]] = []
    sample = latency_sample()
    try:
        with environ(aws.env()), tempfile.TemporaryDirectory() as tmp:
            aws.reset()
            clients = make_clients()
            made = 0

            def run(
                combos: Sequence[tuple[Platform, Arch]], latencies: Latencies
            ) -> dict[str, Any]:
                nonlocal made
                amis = [hardened_ami(clients, p, a, n) for n, (p, a) in enumerate(combos, made)]
                made += len(amis)
                return measure_validate(aws, amis, Path(tmp) / f"run{made}", latencies)

            for label, combos in (
                ("1_ami_first_run", FOUR_AMIS[:1]),  # also creates the one-time resources
                ("1_ami", FOUR_AMIS[:1]),
                ("4_amis", FOUR_AMIS),
            ):
                echo(f"bench: validate {len(combos)} AMI(s) on the local AWS ({label}) ...")
                runs[label] = run(combos, (BOOT_AND_SSM_S, SCAN_S, PACKAGE_SCAN_S))
            for latencies in confirmation_points(sample):
                aws.load_scenario(scenario(*latencies))
                for combos in (FOUR_AMIS[:1], FOUR_AMIS):
                    echo(
                        f"bench: validate {len(combos)} AMI(s), SSM {latencies[0]:.1f} s, "
                        f"scan {latencies[1]:.1f} s, package scan {latencies[2]:.1f} s ..."
                    )
                    confirmations.append(confirm(run(combos, latencies)))
    finally:
        aws.stop()
    return summarize_overhead(runs, confirmations, sample)


def summarize_overhead(
    runs: Mapping[str, Mapping[str, Any]],
    confirmations: Sequence[Mapping[str, Any]],
    sample: Sequence[Latencies],
) -> dict[str, Any]:
    """The report's pipeline section: the fixed point's runs, the distribution over ``sample``
    and the figures the goals judge. A run of n AMIs computes for the median of the steady runs
    of n AMIs (the machine is shared: one run's CPU wait is noise) and makes the most non-poll
    calls any of them made."""
    one, four = runs["1_ami"], runs["4_amis"]
    steady = (*confirmations, one, four)  # the first run's set-up is not every run's
    computed = {
        n: statistics.median(float(r["computed_s"]) for r in steady if r["amis"] == n)
        for n in (1, 4)
    }
    # The stages' computing is measured in the fixed point's runs (confirmations keep less).
    stages = {n: float(r["node_and_cve"]["computed_s"]) for n, r in ((1, one), (4, four))}
    fixed = {n: max(r["aws_calls"] - r["polls"] for r in steady if r["amis"] == n) for n in (1, 4)}
    dist = distribution(sample, computed, fixed, stages)
    return {
        "scripted_latencies_s": {
            "boot_and_ssm": BOOT_AND_SSM_S,
            "scan": SCAN_S,
            "package_scan": PACKAGE_SCAN_S,
            "node_probe": PROBE_S,
        },
        "runs": dict(runs),
        "overhead_ratio_1_ami": one["ratio"],
        "overhead_ratio_4_amis": four["ratio"],
        "overhead_ratio_1_ami_worst_phase": one["ratio_worst_phase"],
        "ratio_4_amis_vs_1_ami": round(four["wall_s"] / one["wall_s"], 3),
        "aws_calls_1_ami": one["aws_calls"],
        "aws_calls_1_ami_on_a_real_clock": one["aws_calls_on_a_real_clock"],
        "aws_calls_1_ami_first_run": runs["1_ami_first_run"]["aws_calls"],
        "aws_calls_4_amis": four["aws_calls"],
        "aws_calls_per_5s_1_ami_on_a_real_clock": one["aws_calls_per_5s_on_a_real_clock"],
        "node_and_cve_added_wall_ratio": max(
            one["node_and_cve"]["added_wall_ratio"], four["node_and_cve"]["added_wall_ratio"]
        ),
        "node_and_cve_added_wall_s_1_ami": one["node_and_cve"]["added_wall_s"],
        "node_and_cve_added_wall_s_4_amis": four["node_and_cve"]["added_wall_s"],
        "node_and_cve_aws_calls_per_ami_1_ami": one["node_and_cve"]["aws_calls_per_ami"],
        "node_and_cve_aws_calls_per_ami_4_amis": four["node_and_cve"]["aws_calls_per_ami"],
        "distribution": {
            "ranges_s": {
                "ssm": list(SSM_RANGE_S),
                "scan": list(SCAN_RANGE_S),
                "package_scan": list(PACKAGE_SCAN_RANGE_S),
            },
            "node_probe_s": PROBE_S,
            "sample": {"size": len(sample), "seed": SAMPLE_SEED, "drawn": "uniform"},
            **dist,
            "confirmations": list(confirmations),
            "confirmed": len(confirmations) >= 5 and all(c["as_predicted"] for c in confirmations),
        },
        "overhead_ratio_p90_1_ami": dist["1_ami"]["overhead_ratio"]["p90"],
        "overhead_ratio_worst_1_ami": dist["1_ami"]["overhead_ratio_worst_possible"],
        "overhead_ratio_p90_4_amis": dist["4_amis"]["overhead_ratio"]["p90"],
        "overhead_ratio_worst_4_amis": dist["4_amis"]["overhead_ratio_worst_possible"],
        "polls_peak_per_5s": max(
            polling_peak_by_schedule(), *(r["polls_peak_per_5s"] for r in steady)
        ),
        "polling_calls_peak_per_5s": max(
            polling_peak_by_schedule(),
            *(r["polling_calls_peak_per_5s"] for r in steady),
        ),
    }
