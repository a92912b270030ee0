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
    assert sample == bench.latency_sample()  # the same seed, the same latencies
    assert len(sample) == bench.SAMPLE_SIZE >= 200 and len(set(sample)) == len(sample)
    assert all(
        40 <= ssm <= 180 and 120 <= scan <= 900 and 30 <= package <= 600
        for ssm, scan, package in sample
    )
    # The (SSM, scan) pairs are issue 18's: the package scans come from their own stream.
    assert [tuple(round(x, 1) for x in latencies) for latencies in sample[:2]] == [
        (65.4, 635.9, 235.4),
        (86.8, 274.4, 164.3),
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
    fixed = bench.predict(bench.BOOT_AND_SSM_S, bench.SCAN_S, bench.PACKAGE_SCAN_S)
    assert (fixed.ssm_polls, fixed.scan_polls, round(fixed.waited_s, 2)) == (8, 16, 393.38)
    # The package scan (ACTIVE 178.5 s into the loop) is looked at halfway through the first
    # wait (63 s) and through the first wait of at least 10 s after it (seen): inside the scan,
    # so the run waits as it did without it.
    assert (fixed.coverage_polls, fixed.polls) == (2, 26)
    assert fixed.waited_s == fixed.cis_only_waited_s and fixed.cis_only_polls == 24
    assert fixed.aws_s == bench.EMULATED_AWS_S == 390
    assert round(fixed.ratio(0.0), 4) == 1.0087 and fixed.ratio(3.9) > fixed.ratio(0.0)
    assert fixed.added_wall_ratio(0.5, 0.1) == pytest.approx(393.879 / 393.779, abs=1e-5)


def test_a_package_scan_that_outlasts_the_cis_scan_keeps_the_loop_going() -> None:
    """The package scan counts from SSM registration (it does not wait for the pipeline to see
    the node), the loop from when a poll saw it: the AWS time is SSM + the longer scan."""
    from pipeline.polling import SCAN_WAIT, SSM_WAIT

    late = bench.predict(90.0, 150.0, 400.0)
    seen_online = SSM_WAIT.offsets(90.0)[-1]  # 91.5 s
    in_loop = 90.0 + 400.0 - seen_online
    assert late.loop_end_s == pytest.approx(in_loop)
    # once the scan has ended, the package scan is looked at in its place at each poll
    assert late.waited_s == pytest.approx(seen_online + SCAN_WAIT.offsets(in_loop)[-1])
    assert late.cis_only_waited_s == pytest.approx(seen_online + SCAN_WAIT.offsets(150.0)[-1])
    assert (late.aws_s, late.cis_only_aws_s) == (490.0, 240.0)
    assert late.polls_by_operation() == {
        "ssm:DescribeInstanceInformation": 8,
        "inspector2:ListCisScans": 5,  # stops when it sees the scan end
        "inspector2:ListCoverage": 19,
    }
    assert 1.0 < late.ratio(0.0) < 1.03  # seen late by one interval of the loop at 398 s
    # Against the CIS-only run most of the added wall time is the package scan's own.
    assert late.added_wall_ratio(0.0, 0.0) == pytest.approx(501.379 / 248.605, abs=1e-4)
    assert SCAN_WAIT.first_wait_s > bench.PROBE_S  # the probe never ends the loop


def test_the_scenario_scripts_every_latency_the_model_has() -> None:
    from pipeline.localaws.run_command import PENDING_S

    assert bench.PROBE_PENDING_S == PENDING_S
    assert bench.PROBE_S == bench.PROBE_VISIBLE_AFTER_S + PENDING_S + bench.PROBE_RUN_S == 13.5
    assert 10 <= bench.PROBE_S <= 20
    assert bench.scenario(40.0, 120.0, 30.0) == {
        "ssm": {"online_after_s": 40.0},
        "scan": {"duration_s": 120.0},
        "inspector": {"initially_enabled": True},
        "node": {"command": {"duration_s": 12.0, "visible_after_s": 1.0}},
        "vulnerabilities": {"coverage": {"scan_after_s": 30.0}},
    }
    assert (
        bench.scenario(bench.BOOT_AND_SSM_S, bench.SCAN_S, bench.PACKAGE_SCAN_S) == bench.SCENARIO
    )


def test_the_distribution_over_the_sample() -> None:
    """The figures ``invoke bench`` reports, with no computing time: pinned, so a change of a
    schedule or of the sample shows here."""
    dist = bench.distribution(bench.latency_sample(), {1: 0.0, 4: 0.0}, {1: 58, 4: 142})
    one, four = dist["1_ami"], dist["4_amis"]
    assert one["overhead_ratio"] == {"median": 1.017, "p90": 1.031, "worst": 1.059}
    assert one["overhead_ratio_worst_possible"] == 1.074
    assert one["worst_possible_at_s"] == {"ssm": 75.5, "scan": 126.0, "package_scan": 71.0}
    assert dist["polls"] == {"median": 51.0, "p90": 72, "worst": 95}
    assert dist["cis_only_polls"] == {"median": 39.0, "p90": 57, "worst": 69}
    assert one["aws_calls_per_ami"] == {"median": 109.0, "p90": 130.0, "worst": 153.0}
    assert four["aws_calls_per_ami"] == {"median": 48.2, "p90": 53.5, "worst": 59.2}
    # A package scan that outlasts the CIS scan (23.5 % of the sample) adds its own time...
    assert dist["package_scan_ends_last"] == 0.235
    assert one["node_and_cve_added_wall_ratio"] == {"median": 1.0, "p90": 1.414, "worst": 3.296}
    # ... and, less that, the pipeline adds at most the loop's interval at the later end.
    assert one["node_and_cve_added_wall_ratio_less_aws_time"] == {
        "median": 1.0,
        "p90": 1.0,
        "worst": 1.066,
    }
    assert sum(count for _, count in dist["histogram_1_ami"]) == bench.SAMPLE_SIZE


def test_the_goals_hold_with_a_loaded_machine_s_computing_time() -> None:
    """A 4-AMI run on a shared 2-CPU machine computes for 1.5-4 s: the schedules leave room."""
    dist = bench.distribution(
        bench.latency_sample(), {1: 1.0, 4: 3.0}, {1: 58, 4: 142}, {1: 0.2, 4: 0.6}
    )
    for label in ("1_ami", "4_amis"):
        assert dist[label]["overhead_ratio"]["p90"] <= bench.GOALS[f"overhead_ratio_p90_{label}"]
        worst = dist[label]["overhead_ratio_worst_possible"]
        assert dist[label]["overhead_ratio"]["worst"] <= worst
        assert worst <= bench.GOALS[f"overhead_ratio_worst_{label}"]


def test_the_worst_possible_ratio_is_a_bound_the_latencies_approach() -> None:
    worst, ssm, scan, package = bench.worst_in_ranges(0.0)
    sample = bench.latency_sample()
    assert max(bench.predict(*latencies).ratio(0.0) for latencies in sample) <= worst
    # Just after the SSM wait's poll at 75.5 s and the scan loop's first poll at 126 s: each
    # seen a whole interval late; the package scan (71 s after registration) is done by then.
    assert (round(ssm, 1), round(scan), package) == (75.5, 126, 71.0)
    assert bench.predict(ssm, scan, package).ratio(0.0) == pytest.approx(worst, abs=1e-9)
    assert bench.predict(ssm - 2e-6, scan - 2e-6, package).ratio(0.0) < worst - 0.05


def test_a_package_scan_ending_last_stays_under_the_bound() -> None:
    """When the package scan ends the loop, the SSM wait's lateness is inside the AWS time:
    only the loop's interval at its end is overhead."""
    worst = bench.worst_in_ranges(0.0)[0]
    grid = [
        bench.predict(ssm, 120.0, package).ratio(0.0)
        for ssm in (40.0, 40.1, 75.6, 110.0, 180.0)
        for package in [30.0 + 0.5 * n for n in range(1141)]
    ]
    assert max(grid) <= worst


def test_the_confirmation_points_span_the_distribution() -> None:
    sample = bench.latency_sample()
    points = bench.confirmation_points(sample)
    ratios = [bench.predict(*latencies).ratio(0.0) for latencies in points]
    assert len(points) >= 5 and all(latencies in sample for latencies in points)
    assert ratios == sorted(ratios)
    every = sorted(bench.predict(*latencies).ratio(0.0) for latencies in sample)
    assert (ratios[0], ratios[-1]) == (every[0], every[-1])
    assert ratios[3] == every[899]  # the p90 latencies
    # Both ways the loop ends are confirmed: by the package scan and by the CIS scan.
    predicted = [bench.predict(*latencies) for latencies in points]
    assert any(p.waited_s > p.cis_only_waited_s for p in predicted)
    assert any(p.waited_s == p.cis_only_waited_s for p in predicted)


def test_a_run_is_confirmed_only_with_the_predicted_polls_and_waits() -> None:
    expected = bench.predict(100.0, 400.0, 200.0)
    measured = {
        "amis": 1,
        "verdict": "PASS",
        "latencies_s": {"ssm": 100.0, "scan": 400.0, "package_scan": 200.0},
        "polls": expected.polls,
        "polls_by_operation": expected.polls_by_operation(),
        "waited_s": round(expected.waited_s, 3),
        "computed_s": 0.5,
        "ratio": round(expected.ratio(0.5), 3),
        "aws_calls": 48 + expected.polls,
        "polling_calls_peak_per_5s": 1,
    }
    assert bench.confirm(measured)["as_predicted"]
    assert bench.confirm(measured)["predicted_ratio"] == measured["ratio"]
    assert not bench.confirm({**measured, "polls": expected.polls + 1})["as_predicted"]
    moved = {**expected.polls_by_operation()}
    moved["inspector2:ListCoverage"] += 1
    moved["inspector2:ListCisScans"] -= 1  # the same total, not the same calls
    assert not bench.confirm({**measured, "polls_by_operation": moved})["as_predicted"]
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
    assert log.poll_times() == [45.0, 50.0, 176.1, 183.1]


def test_a_poll_of_the_scan_loop_is_one_poll_of_up_to_three_calls() -> None:
    log = bench.CallLog(clock=lambda: 0.0)
    for at, op in [
        (126.0, "inspector2:ListCisScans"),
        (126.01, "ssm:ListCommandInvocations"),
        (126.02, "inspector2:ListCoverage"),
        (133.0, "inspector2:ListCisScans"),
        (133.01, "inspector2:ListCoverage"),
        (140.5, "inspector2:ListCoverage"),
    ]:
        log.clock = lambda at=at: at  # type: ignore[misc]
        log(f"before-call.{op.replace(':', '.')}")
    assert log.poll_times() == [126.0, 133.0, 140.5]
    assert bench.most_in_window(log.poll_times()) == 1
    assert bench.most_in_window(log.in_polling_phases()) == 3


def test_the_node_and_cve_stages_are_timed_and_their_calls_marked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.validate import readiness

    log = bench.CallLog(clock=lambda: 0.0)
    monkeypatch.setattr(readiness, "tick", lambda *_: log("before-call.ssm.ListCoverage"))
    fake = readiness.tick
    with bench.timed_stages(log):
        assert readiness.tick is not fake
        log("before-call.ec2.DescribeImages")  # outside the stages
        readiness.tick(None, None)  # type: ignore[arg-type]
    assert readiness.tick is fake  # put back
    log("before-call.s3.PutObject", params={"url_path": "/b/1/ami-1/run/evidence/findings.json"})
    log.after()
    log("before-call.s3.PutObject", params={"url_path": "/b/1/ami-1/run/verdict.json"})
    assert log.stage_calls == ["ssm:ListCoverage", "s3:PutObject"]
    assert len(log.calls) == 4 and log.stages_s > 0.0


# -- the histogram ------------------------------------------------------------------------------


def test_the_histogram_bins_and_its_text() -> None:
    bins = bench.histogram([1.0, 1.004, 1.015, 1.0151, 1.3], start=1.0, width=0.01, bins=3)
    assert bins == [(1.0, 2), (1.01, 2), (1.02, 1)]  # the last bin takes everything above
    text = bench.render_histogram(bins, bar=4).splitlines()
    assert text == ["1.00-1.01 | #### 2", "1.01-1.02 | #### 2", ">= 1.02   | ##   1"]


# -- the report ---------------------------------------------------------------------------------


def _measured(
    amis: int, ssm_s: float, scan_s: float, package_s: float, computed_s: float
) -> dict[str, object]:
    """What ``measure_validate`` reports for a steady run that did as the schedules say."""
    expected = bench.predict(ssm_s, scan_s, package_s)
    fixed = {1: 58, 4: 142}[amis]
    stages_s = 0.1 * amis
    cis_only = expected.cis_only_waited_s + computed_s - stages_s
    return {
        "amis": amis,
        "verdict": "PASS",
        "latencies_s": {"ssm": ssm_s, "scan": scan_s, "package_scan": package_s},
        "waited_s": round(expected.waited_s, 3),
        "computed_s": computed_s,
        "wall_s": expected.waited_s + computed_s,
        "ratio": round(expected.ratio(computed_s), 3),
        "ratio_worst_phase": 1.07,
        "aws_calls": fixed + expected.polls,
        "aws_calls_on_a_real_clock": fixed + expected.polls + 3,
        "aws_calls_per_5s_on_a_real_clock": 0.95,
        "polls": expected.polls,
        "polls_by_operation": expected.polls_by_operation(),
        "polls_peak_per_5s": 1,
        "polling_calls_peak_per_5s": 1,
        "node_and_cve": {
            "computed_s": stages_s,
            "aws_calls_per_ami": 11.0 if amis == 1 else 8.75,
            "added_wall_s": round(expected.waited_s + computed_s - cis_only, 3),
            "added_wall_ratio": round((expected.waited_s + computed_s) / cis_only, 4),
        },
    }


def test_the_report_judges_the_goals_on_the_distribution_and_says_what_confirmed_it() -> None:
    sample = bench.latency_sample(size=200)
    fixed_point = (bench.BOOT_AND_SSM_S, bench.SCAN_S, bench.PACKAGE_SCAN_S)
    runs = {
        "1_ami_first_run": _measured(1, *fixed_point, 1.0),
        "1_ami": _measured(1, *fixed_point, 0.5),
        "4_amis": _measured(4, *fixed_point, 1.5),
    }
    points = bench.confirmation_points(sample)
    confirmations = [
        bench.confirm(_measured(amis, *latencies, 0.5 if amis == 1 else 1.5))
        for latencies in points
        for amis in (1, 4)
    ]
    pipe = bench.summarize_overhead(runs, confirmations, sample)
    dist = pipe["distribution"]
    assert dist["confirmed"] and dist["sample"] == {"size": 200, "seed": 18, "drawn": "uniform"}
    assert (dist["1_ami"]["computed_s"], dist["4_amis"]["computed_s"]) == (0.5, 1.5)
    assert pipe["overhead_ratio_p90_1_ami"] == dist["1_ami"]["overhead_ratio"]["p90"]
    assert pipe["overhead_ratio_worst_4_amis"] == dist["4_amis"]["overhead_ratio_worst_possible"]
    assert pipe["polls_peak_per_5s"] == 1 and pipe["polling_calls_peak_per_5s"] == 1
    assert pipe["aws_calls_1_ami"] == 84
    # the stages overlap the scan at the fixed point: only their computing is added
    assert (
        pipe["node_and_cve_added_wall_ratio"] == runs["4_amis"]["node_and_cve"]["added_wall_ratio"]
    )
    assert (
        1.0 < pipe["node_and_cve_added_wall_ratio"] <= bench.GOALS["node_and_cve_added_wall_ratio"]
    )
    assert dist["4_amis"]["node_and_cve_computed_s"] == 0.4
    # every goal but the gate's (gate_throughput measures that one) is judged on this report
    pipeline_goals = [goal for goal in bench.GOALS if goal != "gate_peak_rss_mb"]
    assert all(isinstance(pipe[goal], int | float) for goal in pipeline_goals)

    text = "\n".join(bench.render_distribution(dist))
    assert "over 200 (SSM, scan, package scan) latencies" in text
    assert "confirmed by 10 validate runs at sampled points: yes" in text
    assert text.count("PASS") == 10 and "1.00-1.01 |" in text

    wrong = [{**confirmations[0], "as_predicted": False}, *confirmations[1:]]
    assert not bench.summarize_overhead(runs, wrong, sample)["distribution"]["confirmed"]
    assert not bench.summarize_overhead(runs, confirmations[:4], sample)["distribution"][
        "confirmed"
    ]
