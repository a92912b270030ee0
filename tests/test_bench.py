"""``invoke bench``'s inputs stay valid as the gate gets stricter (no timing here: numbers
live in the benchmark's output, never in tests)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

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
    assert round(bench.worst_phase_delay_s(), 2) == 26.0


def test_the_call_goal_is_a_rate_judged_with_the_heartbeats_of_a_real_clock() -> None:
    assert bench.GOALS["aws_calls_per_5s_1_ami_on_a_real_clock"] == 1
    assert bench.GOALS["polling_calls_peak_per_5s"] == 1
    assert bench.WINDOW_S == 5


# -- the distribution: a fixed sample, statistics computed from the schedules ----------------


def test_the_sample_is_fixed_large_enough_and_within_the_ranges() -> None:
    sample = bench.latency_sample()
    assert sample == bench.latency_sample()  # the same seed, the same pairs
    assert len(sample) == bench.SAMPLE_SIZE >= 200 and len(set(sample)) == len(sample)
    assert all(40 <= ssm <= 180 and 120 <= scan <= 900 for ssm, scan in sample)
    assert [tuple(round(x, 1) for x in pair) for pair in sample[:2]] == [
        (65.4, 635.9),
        (86.8, 274.4),
    ]
    assert bench.latency_sample(seed=19) != sample


def test_median_p90_and_worst() -> None:
    assert bench.summarize([float(n) for n in range(10, 0, -1)]) == {
        "median": 5.5,
        "p90": 9.0,  # nearest rank: 90 % of the values are at or below it
        "worst": 10.0,
    }
    assert bench.summarize([float(n) for n in range(1, 1001)])["p90"] == 900.0
    assert bench.summarize([3.0]) == {"median": 3.0, "p90": 3.0, "worst": 3.0}


def test_a_prediction_is_the_schedules_polls_and_lateness() -> None:
    fixed = bench.predict(bench.BOOT_AND_SSM_S, bench.SCAN_S)
    assert (fixed.ssm_polls, fixed.scan_polls, round(fixed.waited_s, 2)) == (8, 16, 393.38)
    assert fixed.aws_s == bench.EMULATED_AWS_S
    assert round(fixed.ratio(0.0), 4) == 1.0087 and fixed.ratio(3.9) > fixed.ratio(0.0)


def test_the_distribution_over_the_sample() -> None:
    """The figures ``invoke bench`` reports, with no computing time: pinned, so a change of a
    schedule or of the sample shows here."""
    dist = bench.distribution(bench.latency_sample(), {1: 0.0, 4: 0.0}, {1: 48, 4: 108})
    one, four = dist["1_ami"], dist["4_amis"]
    assert one["overhead_ratio"] == {"median": 1.02, "p90": 1.039, "worst": 1.068}
    assert one["overhead_ratio_worst_possible"] == 1.074
    assert one["worst_possible_at_s"] == {"ssm": 75.5, "scan": 126.0}
    assert dist["polls"] == {"median": 39.0, "p90": 57, "worst": 69}
    assert one["aws_calls_per_ami"] == {"median": 87.0, "p90": 105.0, "worst": 117.0}
    assert four["aws_calls_per_ami"] == {"median": 36.8, "p90": 41.2, "worst": 44.2}
    assert sum(count for _, count in dist["histogram_1_ami"]) == bench.SAMPLE_SIZE


def test_the_goals_hold_with_a_loaded_machine_s_computing_time() -> None:
    """A 4-AMI run on a shared 2-CPU machine computes for 1.5-4 s: the schedules leave room."""
    dist = bench.distribution(bench.latency_sample(), {1: 1.0, 4: 3.0}, {1: 48, 4: 108})
    for label in ("1_ami", "4_amis"):
        assert dist[label]["overhead_ratio"]["p90"] <= bench.GOALS[f"overhead_ratio_p90_{label}"]
        worst = dist[label]["overhead_ratio_worst_possible"]
        assert dist[label]["overhead_ratio"]["worst"] <= worst
        assert worst <= bench.GOALS[f"overhead_ratio_worst_{label}"]


def test_the_worst_possible_ratio_is_a_bound_the_latencies_approach() -> None:
    worst, ssm, scan = bench.worst_in_ranges(0.0)
    sample = bench.latency_sample()
    assert max(bench.predict(*pair).ratio(0.0) for pair in sample) <= worst
    # Just after the polls at 75.5 s (SSM) and 126 s (scan): each end seen a whole interval late.
    assert bench.predict(ssm + 1e-6, scan + 1e-6).ratio(0.0) == pytest.approx(worst, abs=1e-6)
    assert bench.predict(ssm - 1e-6, scan - 1e-6).ratio(0.0) < worst - 0.05


def test_the_confirmation_points_span_the_distribution() -> None:
    sample = bench.latency_sample()
    points = bench.confirmation_points(sample)
    ratios = [bench.predict(*pair).ratio(0.0) for pair in points]
    assert len(points) >= 5 and all(pair in sample for pair in points)
    assert ratios == sorted(ratios)
    every = sorted(bench.predict(*pair).ratio(0.0) for pair in sample)
    assert (ratios[0], ratios[-1]) == (every[0], every[-1])
    assert ratios[3] == every[899]  # the p90 pair


def test_a_run_is_confirmed_only_with_the_predicted_polls_and_waits() -> None:
    expected = bench.predict(100.0, 400.0)
    measured = {
        "amis": 1,
        "verdict": "PASS",
        "latencies_s": {"ssm": 100.0, "scan": 400.0},
        "polls": expected.polls,
        "waited_s": round(expected.waited_s, 3),
        "computed_s": 0.5,
        "ratio": round(expected.ratio(0.5), 3),
        "aws_calls": 48 + expected.polls,
        "polling_calls_peak_per_5s": 1,
    }
    assert bench.confirm(measured)["as_predicted"]
    assert bench.confirm(measured)["predicted_ratio"] == measured["ratio"]
    assert not bench.confirm({**measured, "polls": expected.polls + 1})["as_predicted"]
    assert not bench.confirm({**measured, "waited_s": expected.waited_s + 1})["as_predicted"]
    assert not bench.confirm({**measured, "verdict": "FAIL"})["as_predicted"]


# -- the call rate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "most"),
    [
        ([], 0),
        ([0.0], 1),
        ([0.0, 5.0, 10.0], 1),  # windows are half-open: [t, t + 5)
        ([0.0, 4.99, 10.0], 2),
        ([3.0, 0.0, 1.0, 2.0, 30.0], 4),
        ([0.0, 8.0, 12.9, 13.0, 20.0], 2),
    ],
)
def test_most_calls_in_a_5s_window(times: list[float], most: int) -> None:
    assert bench.most_in_window(times) == most


def test_the_call_log_separates_polling_phases_from_the_rest() -> None:
    log = bench.CallLog(clock=lambda: 0.0)
    for at, op in [
        (0.0, "ec2:RunInstances"),
        (0.1, "ec2:DescribeInstances"),
        (45.0, "ssm:DescribeInstanceInformation"),
        (50.0, "ssm:DescribeInstanceInformation"),
        (50.1, "inspector2:CreateCisScanConfiguration"),
        (176.1, "inspector2:ListCisScans"),
        (183.1, "inspector2:ListCisScans"),
        (183.2, "inspector2:ListCisScanConfigurations"),
    ]:
        log.clock = lambda at=at: at  # type: ignore[misc]
        log(f"before-call.{op.replace(':', '.')}")
    assert log.calls[2] == (45.0, "ssm:DescribeInstanceInformation")
    assert log.polling_phases() == [(45.0, 50.0), (176.1, 183.1)]
    assert log.in_polling_phases() == [45.0, 50.0, 176.1, 183.1]
    assert bench.most_in_window(log.in_polling_phases()) == 1
    assert bench.most_in_window(t for t, _ in log.calls) == 2


def test_the_schedules_never_poll_twice_in_5s_until_the_timeouts() -> None:
    assert bench.polling_peak_by_schedule() == 1


# -- the histogram ------------------------------------------------------------------------------


def test_the_histogram_bins_and_its_text() -> None:
    bins = bench.histogram([1.0, 1.004, 1.015, 1.0151, 1.3], start=1.0, width=0.01, bins=3)
    assert bins == [(1.0, 2), (1.01, 2), (1.02, 1)]  # the last bin takes everything above
    text = bench.render_histogram(bins, bar=4).splitlines()
    assert text == ["1.00-1.01 | #### 2", "1.01-1.02 | #### 2", ">= 1.02   | ##   1"]


# -- the report ---------------------------------------------------------------------------------


def _measured(amis: int, ssm_s: float, scan_s: float, computed_s: float) -> dict[str, object]:
    """What ``measure_validate`` reports for a steady run that did as the schedules say."""
    expected = bench.predict(ssm_s, scan_s)
    fixed = {1: 48, 4: 108}[amis]
    return {
        "amis": amis,
        "verdict": "PASS",
        "latencies_s": {"ssm": ssm_s, "scan": scan_s},
        "waited_s": round(expected.waited_s, 3),
        "computed_s": computed_s,
        "wall_s": expected.waited_s + computed_s,
        "ratio": round(expected.ratio(computed_s), 3),
        "ratio_worst_phase": 1.07,
        "aws_calls": fixed + expected.polls,
        "aws_calls_on_a_real_clock": fixed + expected.polls + 3,
        "aws_calls_per_5s_on_a_real_clock": 0.95,
        "polls": expected.polls,
        "polling_calls_peak_per_5s": 1,
    }


def test_the_report_judges_the_goals_on_the_distribution_and_says_what_confirmed_it() -> None:
    sample = bench.latency_sample(size=200)
    fixed_point = (bench.BOOT_AND_SSM_S, bench.SCAN_S)
    runs = {
        "1_ami_first_run": _measured(1, *fixed_point, 1.0),
        "1_ami": _measured(1, *fixed_point, 0.5),
        "4_amis": _measured(4, *fixed_point, 1.5),
    }
    points = bench.confirmation_points(sample)
    confirmations = [
        bench.confirm(_measured(amis, *pair, 0.5 if amis == 1 else 1.5))
        for pair in points
        for amis in (1, 4)
    ]
    pipe = bench.summarize_overhead(runs, confirmations, sample)
    dist = pipe["distribution"]
    assert dist["confirmed"] and dist["sample"] == {"size": 200, "seed": 18, "drawn": "uniform"}
    assert (dist["1_ami"]["computed_s"], dist["4_amis"]["computed_s"]) == (0.5, 1.5)
    assert pipe["overhead_ratio_p90_1_ami"] == dist["1_ami"]["overhead_ratio"]["p90"]
    assert pipe["overhead_ratio_worst_4_amis"] == dist["4_amis"]["overhead_ratio_worst_possible"]
    assert pipe["polling_calls_peak_per_5s"] == 1 and pipe["aws_calls_1_ami"] == 72
    # every goal but the gate's (gate_throughput measures that one) is judged on this report
    pipeline_goals = [goal for goal in bench.GOALS if goal != "gate_peak_rss_mb"]
    assert all(isinstance(pipe[goal], int | float) for goal in pipeline_goals)

    text = "\n".join(bench.render_distribution(dist))
    assert "over 200 (SSM, scan) latency pairs" in text
    assert "confirmed by 10 validate runs at sampled points: yes" in text
    assert text.count("PASS") == 10 and "1.00-1.01 |" in text

    wrong = [{**confirmations[0], "as_predicted": False}, *confirmations[1:]]
    assert not bench.summarize_overhead(runs, wrong, sample)["distribution"]["confirmed"]
    assert not bench.summarize_overhead(runs, confirmations[:4], sample)["distribution"][
        "confirmed"
    ]
