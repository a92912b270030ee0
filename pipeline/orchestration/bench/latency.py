"""The overhead distribution, computed from the polling schedules: a fixed, seeded sample of
(SSM registration, CIS scan) latencies, when each wait is seen to end, and its statistics."""

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
# registration (what a real EKS node takes, roughly), and a 5-minute CIS scan.
BOOT_AND_SSM_S = 90.0
SCAN_S = 300.0
EMULATED_AWS_S = BOOT_AND_SSM_S + SCAN_S


def scenario(ssm_s: float, scan_s: float) -> dict[str, Any]:
    """The local AWS's scenario for these latencies: the test instance is an SSM managed node
    ``ssm_s`` after launch, the CIS scan ends ``scan_s`` after it is created."""
    return {
        "ssm": {"online_after_s": ssm_s},
        "scan": {"duration_s": scan_s},
        "inspector": {"initially_enabled": True},
    }


SCENARIO = scenario(BOOT_AND_SSM_S, SCAN_S)
FOUR_AMIS = (
    (Platform.AMAZON_LINUX_2023, Arch.X86_64),
    (Platform.AMAZON_LINUX_2023, Arch.ARM64),
    (Platform.AMAZON_LINUX_2, Arch.X86_64),
    (Platform.AMAZON_LINUX_2, Arch.ARM64),
)
# Realistic AWS latencies (issue 18; where they come from: docs/benchmarks.md): an EKS node is
# an SSM managed node 40-180 s after launch, and a one-time CIS scan takes 2-15 minutes. The
# overhead is judged over a fixed sample drawn uniformly from these ranges.
SSM_RANGE_S = (40.0, 180.0)
SCAN_RANGE_S = (120.0, 900.0)
SAMPLE_SIZE = 1000
SAMPLE_SEED = 18
# Where the sample is confirmed by full validate runs: these quantiles of its 1-AMI ratio.
CONFIRM_AT = (0.0, 0.25, 0.5, 0.9, 1.0)
WINDOW_S = 5.0  # the call rate is counted in windows of this many seconds
POLL_OPERATIONS = ("ssm:DescribeInstanceInformation", "inspector2:ListCisScans")


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


def worst_phase_delay_s(ssm_s: float = BOOT_AND_SSM_S, scan_s: float = SCAN_S) -> float:
    """How late the run could see the ends of these waits at worst: a whole polling interval
    each (the end just after a poll), where the given ends may fall on a poll."""
    delay = 0.0
    for schedule, end in ((SSM_WAIT, ssm_s), (SCAN_WAIT, scan_s)):
        offsets = schedule.offsets(end)
        delay += offsets[-1] - (offsets[-2] if len(offsets) > 1 else 0.0)
    return delay


def latency_sample(size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> list[tuple[float, float]]:
    """(SSM registration, CIS scan) seconds: ``size`` pairs drawn uniformly from the ranges,
    the same every time for one seed."""
    rng = random.Random(seed)
    return [(rng.uniform(*SSM_RANGE_S), rng.uniform(*SCAN_RANGE_S)) for _ in range(size)]


@dataclass(frozen=True)
class Prediction:
    """What a validate run does, by the schedules, when SSM sees the node Online ``ssm_s``
    after launch and the scan ends ``scan_s`` after it is created."""

    ssm_s: float
    scan_s: float
    ssm_polls: int
    scan_polls: int
    waited_s: float  # what the run sleeps: until a poll sees each end

    @property
    def aws_s(self) -> float:
        """The time AWS itself needed."""
        return self.ssm_s + self.scan_s

    @property
    def polls(self) -> int:
        return self.ssm_polls + self.scan_polls

    def ratio(self, computed_s: float) -> float:
        """The overhead ratio: the run's wall time (what it waited plus what it computed)
        over the time AWS needed."""
        return (self.waited_s + computed_s) / self.aws_s


def predict(ssm_s: float, scan_s: float) -> Prediction:
    ssm, scan = SSM_WAIT.offsets(ssm_s), SCAN_WAIT.offsets(scan_s)
    return Prediction(ssm_s, scan_s, len(ssm), len(scan), ssm[-1] + scan[-1])


def _latest_ends(schedule: Schedule, low: float, high: float) -> list[tuple[float, float]]:
    """(end, how late it is seen) at the start of the range and just after each poll in it,
    where the lateness is highest for its end (as a limit: a whole interval)."""
    at = schedule.offsets(high)
    ends = [(low, schedule.seen_at(low)[1])]
    return ends + [(a, b - a) for a, b in zip(at, at[1:], strict=False) if low <= a < high]


def worst_in_ranges(computed_s: float) -> tuple[float, float, float]:
    """(ratio, SSM s, scan s): the highest ratio any pair in the ranges can give (a bound, not
    a sample: each wait ending just after a poll, seen a whole interval late)."""
    return max(
        ((s + ls + c + lc + computed_s) / (s + c), s, c)
        for s, ls in _latest_ends(SSM_WAIT, *SSM_RANGE_S)
        for c, lc in _latest_ends(SCAN_WAIT, *SCAN_RANGE_S)
    )


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


def confirmation_points(sample: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The sample's pairs at the ``CONFIRM_AT`` quantiles of the ratio (no computing time)."""
    order = sorted(sample, key=lambda pair: predict(*pair).ratio(0.0))
    return [order[round(q * (len(order) - 1))] for q in CONFIRM_AT]


def distribution(
    sample: Sequence[tuple[float, float]],
    computed_s: Mapping[int, float],
    fixed_calls: Mapping[int, int],
) -> dict[str, Any]:
    """The overhead ratio, AWS calls per AMI and the run's average call rate over ``sample``,
    for each AMI count: ``computed_s`` is what a run of that many AMIs spends computing,
    ``fixed_calls`` its AWS calls other than polls (both measured)."""
    predicted = [predict(*pair) for pair in sample]
    beat_s = heartbeat.INTERVAL.total_seconds()
    out: dict[str, Any] = {}
    for amis, computed in computed_s.items():
        label = _label(amis)
        walls = [p.waited_s + computed for p in predicted]
        calls = [fixed_calls[amis] + p.polls for p in predicted]
        worst, worst_ssm, worst_scan = worst_in_ranges(computed)
        out[label] = {
            "computed_s": round(computed, 2),
            "overhead_ratio": _rounded(summarize([p.ratio(computed) for p in predicted]), 3),
            "overhead_ratio_worst_possible": round(worst, 3),
            "worst_possible_at_s": {"ssm": round(worst_ssm, 1), "scan": round(worst_scan, 1)},
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
    out["histogram_1_ami"] = histogram(p.ratio(computed_s[1]) for p in predicted)
    return out


def polling_peak_by_schedule(ssm_timeout_s: float = 900, scan_timeout_s: float = 2700) -> int:
    """The most polls in any 5 s window of either wait, all the way to validate's default
    timeouts (the scan's first poll comes ``SCAN_WAIT.first_wait_s`` after the SSM wait's last)."""
    return max(
        most_in_window(SSM_WAIT.offsets(ssm_timeout_s)),
        most_in_window(SCAN_WAIT.offsets(scan_timeout_s)),
    )


def _label(amis: int) -> str:
    return "1_ami" if amis == 1 else f"{amis}_amis"


def _rounded(values: Mapping[str, float], digits: int) -> dict[str, float]:
    return {key: round(value, digits) for key, value in values.items()}
