"""``invoke reap`` against hostile tags and a hostile environment, on the local AWS: forged
future heartbeats, hostile run IDs and names in its output, dry runs that must not write."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline import heartbeat, reap
from pipeline.aws import AwsClients, make_clients
from pipeline.localaws import LocalAws
from pipeline.release.promote import release_config
from pipeline.tags import BUILD_RUN_TAG
from tests.test_reap import NOW, STALE, World, ours


@pytest.fixture
def clients(aws: LocalAws) -> AwsClients:
    return make_clients()


def test_a_forged_future_heartbeat_keeps_nothing_alive_silently(clients: AwsClients) -> None:
    w = World(clients)
    forged = w.instance(
        {**ours("cisv-forged", 0), "cis-pipeline:heartbeat": "2099-01-01T00:00:00Z"}
    )
    group = w.group(ours("cisv-forged", 60))
    lines: list[str] = []
    report = reap.run_reap(clients, NOW, lines.append, stale_after=STALE)
    assert report.total == 0
    assert {forged, group} <= w.running() | w.groups()
    assert f"skip instance {forged}: heartbeat in the future" in lines
    assert f"skip security-group {group}: heartbeat in the future" in lines
    assert "2 heartbeat in the future" in lines[-1]


def test_an_overflowing_heartbeat_is_reported_not_a_crash(clients: AwsClients) -> None:
    w = World(clients)
    odd = w.instance(ours("cisv-odd", 0, **{"cis-pipeline:heartbeat": "9999-12-31T23:59:59-23:59"}))
    dead = w.instance(ours("cisv-dead", 30))
    lines: list[str] = []
    report = reap.run_reap(clients, NOW, lines.append, stale_after=STALE)
    assert report.instances == [dead]
    assert f"skip instance {odd}: malformed heartbeat" in lines


def test_hostile_names_and_run_ids_never_break_the_output_into_lines(clients: AwsClients) -> None:
    w = World(clients)
    name = "packer_x\nreap: deleted nothing; skipped 0; 0 failure(s)\u202e"
    clients.ec2.create_key_pair(
        KeyName=name,
        TagSpecifications=[
            {
                "ResourceType": "key-pair",
                "Tags": [
                    {"Key": k, "Value": v}
                    for k, v in ours("20261127T100000Z-abc123", 30, BUILD_RUN_TAG).items()
                ],
            }
        ],
    )
    newline_run = w.instance(ours("cisv-a\nreap: deleted nothing", 30))
    lines: list[str] = []
    report = reap.run_reap(clients, NOW, lines.append, stale_after=STALE)
    assert report.key_pairs == [name]
    assert newline_run in w.running()  # not a run ID the pipeline makes: skipped, reported
    assert f"skip instance {newline_run}: malformed run ID" in lines
    assert all("\n" not in line and "\u202e" not in line for line in lines), lines
    assert any("packer_x\\nreap: deleted nothing" in line for line in lines), lines


def test_dry_run_makes_no_write_call_at_all(aws: LocalAws, clients: AwsClients) -> None:
    w = World(clients)
    w.instance(ours("cisv-dead", 30))
    w.group(ours("cisv-dead", 30))
    w.key_pair(ours("20261127T100000Z-abc123", 30, BUILD_RUN_TAG))
    w.configuration("cis-validate-cisv-dead", ours("cisv-dead", 30))
    before = dict(clients.calls.counts)
    report = reap.run_reap(
        clients,
        NOW,
        lambda _: None,
        stale_after=STALE,
        dry_run=True,
        retention=release_config({}),
    )
    assert report.total == 4 and report.failures == []
    made = {op for op, n in clients.calls.counts.items() if n > before.get(op, 0)}
    reads = ("Describe", "List", "Get")
    assert made and all(op.split(":", 1)[1].startswith(reads) for op in made), made


def test_a_heartbeat_within_the_skew_is_still_a_live_run(clients: AwsClients) -> None:
    w = World(clients)
    ahead = heartbeat.stamp(NOW + heartbeat.MAX_SKEW - timedelta(seconds=30))
    live = w.instance({**ours("cisv-live", 0), "cis-pipeline:heartbeat": ahead})
    group = w.group(ours("cisv-live", 60))
    report = reap.run_reap(clients, NOW, lambda _: None, stale_after=STALE)
    assert report.total == 0 and live in w.running() and group in w.groups()
    assert {d.reason for d in report.skipped if d.candidate.id in (live, group)} == {"live run"}
