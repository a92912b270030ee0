"""The overhead distribution, computed from the polling schedules: a fixed, seeded sample of
(SSM registration, CIS scan, package scan) latencies, when each wait is seen to end, and its
statistics.

After SSM registration validate sends the node probe (SSM Run Command) and creates the CIS scan,
then polls one loop on ``SCAN_WAIT``'s schedule, one call at a time (``pipeline/validate/
scan.py``): ``ListCisScans`` at each poll until the scan ends; ``ListCoverage`` halfway through
each wait of at least ``2 * MIN_GAP_S`` before that, right after the poll that sees the scan end
(the one moment of two calls), and in the scan's place at each poll after it, until Inspector's
package scan of every instance is ACTIVE. The loop ends at the first poll
that sees both done; the probe's output is read then (``GetCommandInvocation``: it has long
ended)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline import heartbeat
from pipeline.catalog import Platform
from pipeline.packer import Arch
from pipeline.polling import SCAN_WAIT, SSM_WAIT, Schedule

# Scripted AWS latencies (seconds of the local AWS's clock): instance boot plus SSM agent
# registration (what a real EKS node takes, roughly), a 5-minute CIS scan, and Inspector's
# package scan ACTIVE 3 minutes after SSM registration (inside the CIS scan: the fixed point is
# the common case; the sample below has package scans that outlast the CIS scan too).
BOOT_AND_SSM_S = 90.0
SCAN_S = 300.0
PACKAGE_SCAN_S = 180.0
EMULATED_AWS_S = BOOT_AND_SSM_S + max(SCAN_S, PACKAGE_SCAN_S)
# The node probe reads a few files: on the node it runs for seconds. Scripted: its invocation is
# invisible for 1 s after SendCommand (InvocationDoesNotExist, normal for a moment), Pending for
# the local AWS's 0.5 s, then runs 12 s: done 13.5 s after SendCommand, long before the scan's
# first poll (``SCAN_WAIT.first_wait_s``), so it never decides when the loop ends.
PROBE_VISIBLE_AFTER_S = 1.0
PROBE_PENDING_S = 0.5  # the local AWS's Pending time (pipeline/localaws/run_command.py)
PROBE_RUN_S = 12.0
PROBE_S = PROBE_VISIBLE_AFTER_S + PROBE_PENDING_S + PROBE_RUN_S


def scenario(ssm_s: float, scan_s: float, package_s: float = PACKAGE_SCAN_S) -> dict[str, Any]:
    """The local AWS's scenario for these latencies: the test instance is an SSM managed node
    ``ssm_s`` after launch, the CIS scan ends ``scan_s`` after it is created, the package scan
    is ACTIVE ``package_s`` after SSM registration, the probe is done ``PROBE_S`` after it is
    sent."""
    return {
        "ssm": {"online_after_s": ssm_s},
        "scan": {"duration_s": scan_s},
        "inspector": {"initially_enabled": True},
        "node": {"command": {"duration_s": PROBE_RUN_S, "visible_after_s": PROBE_VISIBLE_AFTER_S}},
        "vulnerabilities": {"coverage": {"scan_after_s": package_s}},
    }


SCENARIO = scenario(BOOT_AND_SSM_S, SCAN_S, PACKAGE_SCAN_S)
FOUR_AMIS = (
    (Platform.AMAZON_LINUX_2023, Arch.X86_64),
    (Platform.AMAZON_LINUX_2023, Arch.ARM64),
    (Platform.AMAZON_LINUX_2, Arch.X86_64),
    (Platform.AMAZON_LINUX_2, Arch.ARM64),
)
# Realistic AWS latencies (issue 18; where they come from: docs/benchmarks.md): an EKS node is
# an SSM managed node 40-180 s after launch, and a one-time CIS scan takes 2-15 minutes. The
# package scan's range is an assumption (AWS documents no figure: docs/benchmarks.md): ACTIVE
# 30-600 s after SSM registration. The overhead is judged over a fixed sample drawn uniformly
# from these ranges.
SSM_RANGE_S = (40.0, 180.0)
SCAN_RANGE_S = (120.0, 900.0)
PACKAGE_SCAN_RANGE_S = (30.0, 600.0)
SAMPLE_SIZE = 1000
SAMPLE_SEED = 18
# Where the sample is confirmed by full validate runs: these quantiles of its 1-AMI ratio.
CONFIRM_AT = (0.0, 0.25, 0.5, 0.9, 1.0)
WINDOW_S = 5.0  # the call rate is counted in windows of this many seconds
SSM_POLL = "ssm:DescribeInstanceInformation"
SCAN_POLL = "inspector2:ListCisScans"
COVERAGE_POLL = "inspector2:ListCoverage"
POLL_OPERATIONS = (SSM_POLL, SCAN_POLL, COVERAGE_POLL)
MIN_GAP_S = 5.0  # pipeline.validate.scan.MIN_GAP_S (a stage the benchmark may not import)
# What the node and CVE stages call (pipeline/validate/readiness.py), beside the evidence they
# upload: the probe sent and read; coverage polled; findings and counts read.
NODE_AND_CVE_OPERATIONS = (
    "ssm:SendCommand",
    "ssm:GetCommandInvocation",
    COVERAGE_POLL,
    "inspector2:ListFindings",
    "inspector2:ListFindingAggregations",
)


def most_in_window(times: Iterable[float], window_s: float = WINDOW_S) -> int:
    """The most of ``times`` in any half-open window ``[t, t + window_s)``: the peak call rate,
    in calls per window (``1`` per 5 s: no two calls closer than 5 s)."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def worst_phase_delay_s(
    ssm_s: float = BOOT_AND_SSM_S, scan_s: float = SCAN_S, package_s: float = PACKAGE_SCAN_S
) -> float:
    """How late the run could see the ends of these waits at worst: a whole polling interval
    each (the SSM wait's, the scan loop's at its end), where the given ends may fall on a poll."""
    expected = predict(ssm_s, scan_s, package_s)
    delay = 0.0
    for schedule, end in ((SSM_WAIT, ssm_s), (SCAN_WAIT, expected.loop_end_s)):
        offsets = schedule.offsets(end)
        delay += offsets[-1] - (offsets[-2] if len(offsets) > 1 else 0.0)
    return delay


Latencies = tuple[float, float, float]  # (SSM registration, CIS scan, package scan) seconds


def latency_sample(size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> list[Latencies]:
    """(SSM registration, CIS scan, package scan) seconds: ``size`` triples drawn uniformly from
    the ranges, the same every time for one seed. The package scans come from their own stream,
    so the (SSM, scan) pairs are issue 18's."""
    rng, package = random.Random(seed), random.Random(f"package-scan-{seed}")
    return [
        (
            rng.uniform(*SSM_RANGE_S),
            rng.uniform(*SCAN_RANGE_S),
            package.uniform(*PACKAGE_SCAN_RANGE_S),
        )
        for _ in range(size)
    ]


@dataclass(frozen=True)
class Prediction:
    """What a validate run does, by the schedules, when SSM sees the node Online ``ssm_s``
    after launch, the CIS scan ends ``scan_s`` after it is created, the package scan is ACTIVE
    ``package_s`` after SSM registration and the probe is done ``probe_s`` after it is sent
    (the probe is sent and the scan created when a poll sees the node Online)."""

    ssm_s: float
    scan_s: float
    package_s: float
    probe_s: float
    ssm_polls: int
    scan_polls: int  # ListCisScans: the loop's polls until one sees the scan end
    coverage_polls: int  # ListCoverage: until one sees every package scan ACTIVE
    loop_end_s: float  # when the last of the three ends, after the loop began
    waited_s: float  # what the run sleeps: until a poll sees each end
    cis_only_waited_s: float  # what it would sleep without the node and CVE stages

    @property
    def aws_s(self) -> float:
        """The time AWS itself needed: SSM registration, then the longer of the CIS scan and
        the package scan (both start from the registration; the probe's seconds are inside)."""
        return self.ssm_s + max(self.scan_s, self.package_s)

    @property
    def cis_only_aws_s(self) -> float:
        return self.ssm_s + self.scan_s

    @property
    def polls(self) -> int:
        return self.ssm_polls + self.scan_polls + self.coverage_polls

    @property
    def cis_only_polls(self) -> int:
        return self.ssm_polls + len(SCAN_WAIT.offsets(self.scan_s))

    def polls_by_operation(self) -> dict[str, int]:
        return {
            SSM_POLL: self.ssm_polls,
            SCAN_POLL: self.scan_polls,
            COVERAGE_POLL: self.coverage_polls,
        }

    def ratio(self, computed_s: float) -> float:
        """The overhead ratio: the run's wall time (what it waited plus what it computed)
        over the time AWS needed."""
        return (self.waited_s + computed_s) / self.aws_s

    def added_wall_ratio(self, computed_s: float, stages_computed_s: float) -> float:
        """The run's wall time over the same run's without the node and CVE stages (CIS only:
        the loop ends when the scan is seen to end, and their computing is not done)."""
        return (self.waited_s + computed_s) / (
            self.cis_only_waited_s + computed_s - stages_computed_s
        )


def predict(
    ssm_s: float, scan_s: float, package_s: float = PACKAGE_SCAN_S, probe_s: float = PROBE_S
) -> Prediction:
    ssm = SSM_WAIT.offsets(ssm_s)
    # The loop begins when the node is seen Online; the package scan counts from registration.
    package_in_loop = ssm_s + package_s - ssm[-1]
    scan_polls, coverage_polls, loop_end = loop_calls(scan_s, package_in_loop)
    return Prediction(
        ssm_s,
        scan_s,
        package_s,
        probe_s,
        ssm_polls=len(ssm),
        scan_polls=scan_polls,
        coverage_polls=coverage_polls,
        loop_end_s=max(scan_s, package_in_loop),
        waited_s=ssm[-1] + loop_end,
        cis_only_waited_s=ssm[-1] + SCAN_WAIT.offsets(scan_s)[-1],
    )


def loop_calls(scan_s: float, package_s: float) -> tuple[int, int, float]:
    """(ListCisScans calls, ListCoverage calls, when the loop ends) for a scan that ends
    ``scan_s`` and a package scan ``package_s`` after the loop began, as ``wait_scan`` polls:
    coverage halfway through each wait of at least ``2 * MIN_GAP_S`` while the scan runs,
    right after the poll that sees it end, then at each poll."""
    polls = SCAN_WAIT.offsets(max(scan_s, package_s) + 2 * SCAN_WAIT.max_interval_s)
    previous, scan_seen, covered = 0.0, False, False
    scans = coverages = 0
    for at in polls:
        if not scan_seen and not covered and at - previous >= 2 * MIN_GAP_S:
            coverages += 1  # halfway through the wait
            covered = previous + (at - previous) / 2 >= package_s
        if not scan_seen:
            scans += 1
            scan_seen = at >= scan_s
            if scan_seen and not covered:  # looked at right after
                coverages += 1
                covered = at >= package_s
        elif not covered:
            coverages += 1  # in the scan's place
            covered = at >= package_s
        if scan_seen and covered:
            return scans, coverages, at
        previous = at
    raise AssertionError("the schedule's horizon is too short")  # pragma: no cover


def _latest_ends(schedule: Schedule, low: float, high: float) -> list[tuple[float, float]]:
    """(end, how late it is seen) at the start of the range and just after each poll in it,
    where the lateness is highest for its end (as a limit: a whole interval)."""
    at = schedule.offsets(high)
    ends = [(low, schedule.seen_at(low)[1])]
    return ends + [(a, b - a) for a, b in zip(at, at[1:], strict=False) if low <= a < high]


def worst_in_ranges(computed_s: float) -> tuple[float, float, float, float]:
    """(ratio, SSM s, scan s, package scan s): the highest ratio latencies in the ranges give,
    searched where it can be highest: each end just after a look that could have seen it (the
    SSM wait's polls; the scan loop's polls, its looks at the package scan halfway through a
    wait, right after the scan's end and in the scan's place), or at a range's start.
    Between two looks the ratio only falls as an end moves later, so these points bound it."""
    eps = 1e-6
    worst = (0.0, 0.0, 0.0, 0.0)
    low_package, high_package = PACKAGE_SCAN_RANGE_S
    for s, ls in _latest_ends(SSM_WAIT, *SSM_RANGE_S):
        s_end = s + eps if ls > 0 and s > SSM_RANGE_S[0] else s
        seen = SSM_WAIT.offsets(s_end)[-1]
        for c, _ in _latest_ends(SCAN_WAIT, *SCAN_RANGE_S):
            c_end = c + eps if c > SCAN_RANGE_S[0] else c
            # the package scan counts from registration, the loop from when a poll saw it
            for u in _looks(c_end, low_package + s_end - seen, high_package + s_end - seen):
                package = min(max(u + seen - s_end, low_package), high_package)
                ratio = predict(s_end, c_end, package).ratio(computed_s)
                worst = max(worst, (ratio, s_end, c_end, package))
    return worst


def _looks(scan_s: float, low: float, high: float) -> list[float]:
    """Package-scan ends (after the loop began) worth trying for a scan ending ``scan_s``: the
    range's start, and just after each time the loop looks at the package scan in the range."""
    ends = [low]
    polls = SCAN_WAIT.offsets(max(scan_s, high) + 2 * SCAN_WAIT.max_interval_s)
    previous, scan_seen = 0.0, False
    for at in polls:
        looks = []
        if not scan_seen and at - previous >= 2 * MIN_GAP_S:
            looks.append(previous + (at - previous) / 2)
        if not scan_seen:
            scan_seen = at >= scan_s
            if scan_seen:
                looks.append(at)
        else:
            looks.append(at)
        ends += [t + 1e-6 for t in looks if low <= t < high]
        previous = at
        if at > high:
            break
    return ends


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, p90 (nearest rank: the value 90 % of the sample is at or below) and worst."""
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[math.ceil(0.9 * len(ordered)) - 1],
        "worst": ordered[-1],
    }


def histogram(
    values: Iterable[float], start: float = 1.0, width: float = 0.01, bins: int = 10
) -> list[tuple[float, int]]:
    """(bin start, count): ``bins`` bins of ``width`` from ``start``; the last one takes
    everything above."""
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, math.floor((value - start) / width + 1e-9)))] += 1
    return [(round(start + n * width, 6), count) for n, count in enumerate(counts)]


def render_histogram(bins: Sequence[tuple[float, int]], width: float = 0.01, bar: int = 40) -> str:
    """A text histogram, one line a bin."""
    top = max((count for _, count in bins), default=0) or 1
    lines = []
    for n, (start, count) in enumerate(bins):
        label = f"{start:.2f}-{start + width:.2f}" if n < len(bins) - 1 else f">= {start:.2f}  "
        lines.append(f"{label} | {'#' * round(bar * count / top):<{bar}} {count}")
    return "\n".join(lines)


def confirmation_points(sample: Sequence[Latencies]) -> list[Latencies]:
    """The sample's latencies at the ``CONFIRM_AT`` quantiles of the ratio (no computing time)."""
    order = sorted(sample, key=lambda latencies: predict(*latencies).ratio(0.0))
    return [order[round(q * (len(order) - 1))] for q in CONFIRM_AT]


def distribution(
    sample: Sequence[Latencies],
    computed_s: Mapping[int, float],
    fixed_calls: Mapping[int, int],
    stages_computed_s: Mapping[int, float] | None = None,
) -> dict[str, Any]:
    """The overhead ratio, AWS calls per AMI, the run's average call rate and the wall time the
    node and CVE stages add over ``sample``, for each AMI count: ``computed_s`` is what a run of
    that many AMIs spends computing, ``stages_computed_s`` the part of it in those stages,
    ``fixed_calls`` its AWS calls other than polls (all measured)."""
    predicted = [predict(*latencies) for latencies in sample]
    beat_s = heartbeat.INTERVAL.total_seconds()
    stages = stages_computed_s or {}
    out: dict[str, Any] = {}
    for amis, computed in computed_s.items():
        label = _label(amis)
        walls = [p.waited_s + computed for p in predicted]
        calls = [fixed_calls[amis] + p.polls for p in predicted]
        worst, worst_ssm, worst_scan, worst_package = worst_in_ranges(computed)
        added = [p.added_wall_ratio(computed, stages.get(amis, 0.0)) for p in predicted]
        # The same, less the AWS time the package scan adds where it outlasts the CIS scan:
        # what the pipeline itself adds (polling lateness at the loop's end, computing).
        pipeline_added = [
            a
            - (p.aws_s - p.cis_only_aws_s) / (p.cis_only_waited_s + computed - stages.get(amis, 0))
            for a, p in zip(added, predicted, strict=True)
        ]
        out[label] = {
            "computed_s": round(computed, 2),
            "node_and_cve_computed_s": round(stages.get(amis, 0.0), 3),
            "overhead_ratio": _rounded(summarize([p.ratio(computed) for p in predicted]), 3),
            "overhead_ratio_worst_possible": round(worst, 3),
            "worst_possible_at_s": {
                "ssm": round(worst_ssm, 1),
                "scan": round(worst_scan, 1),
                "package_scan": round(worst_package, 1),
            },
            "node_and_cve_added_wall_ratio": _rounded(summarize(added), 3),
            "node_and_cve_added_wall_ratio_less_aws_time": _rounded(summarize(pipeline_added), 3),
            "aws_calls_per_ami": _rounded(summarize([n / amis for n in calls]), 1),
            "aws_calls_per_5s_on_a_real_clock": _rounded(
                summarize(
                    [
                        (n + int(w // beat_s)) * WINDOW_S / w
                        for n, w in zip(calls, walls, strict=True)
                    ]
                ),
                2,
            ),
        }
    out["polls"] = _rounded(summarize([p.polls for p in predicted]), 1)
    out["cis_only_polls"] = _rounded(summarize([p.cis_only_polls for p in predicted]), 1)
    out["package_scan_ends_last"] = round(
        sum(p.waited_s > p.cis_only_waited_s for p in predicted) / len(predicted), 3
    )
    out["histogram_1_ami"] = histogram(p.ratio(computed_s[1]) for p in predicted)
    return out


def polling_peak_by_schedule(ssm_timeout_s: float = 900, scan_timeout_s: float = 2700) -> int:
    """The most polls in any 5 s window of either wait, all the way to validate's default
    timeouts (the scan's first poll comes ``SCAN_WAIT.first_wait_s`` after the SSM wait's last).
    A poll of the scan loop makes up to three calls (scan, coverage, probe): this counts polls,
    the runs count calls."""
    return max(
        most_in_window(SSM_WAIT.offsets(ssm_timeout_s)),
        most_in_window(SCAN_WAIT.offsets(scan_timeout_s)),
    )


def _label(amis: int) -> str:
    return "1_ami" if amis == 1 else f"{amis}_amis"


def _rounded(values: Mapping[str, float], digits: int) -> dict[str, float]:
    return {key: round(value, digits) for key, value in values.items()}
