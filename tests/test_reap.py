"""``invoke reap`` and the heartbeat: only resources tagged as ours (exactly), of a run whose
heartbeat is stale, are deleted; malformed tags and failed deletions never stop the rest.
Pure decisions are data (tests/cases/reap/*.json); the rest runs on the local AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pipeline import heartbeat, reap
from pipeline.aws import AwsClients, ec2, iam_policy, make_clients
from pipeline.errors import AwsError
from pipeline.localaws import LocalAws, local_aws
from pipeline.tags import BUILD_RUN_TAG, HEARTBEAT_TAG, MANAGED_TAG, RUN_TAG
from pipeline.validate import Runtime, run_validate
from tests._dates import shifted_now
from tests.validate.conftest import FakeTime, make_ami, make_clients_for, settings

CASES = Path(__file__).parent / "cases" / "reap"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=10)
CFG_NAME = "cis-validate-"


# --- pure: the plan ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_plan(case: Path) -> None:
    data = json.loads(case.read_text())
    cands = [reap.Candidate(c["kind"], c["id"], c["tags"]) for c in data["candidates"]]
    now = heartbeat.parse(data["now"])
    got = {
        d.candidate.id: f"{'delete' if d.delete else 'skip'}:{d.reason}"
        for d in reap.plan(cands, now, timedelta(minutes=data["stale_minutes"]))
    }
    assert got == data["expect"], f"GOT {json.dumps(got, indent=1)}"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-11-27T12:00:00Z", True),
        ("2026-11-27T14:00:00+02:00", True),
        ("2026-11-27T12:00:00", False),
        ("", False),
        (" 2026-11-27T12:00:00Z", False),
        ("soon", False),
        ("2026-02-30T00:00:00Z", False),
    ],
)
def test_heartbeat_parse_accepts_only_zoned_rfc3339(value: str, ok: bool) -> None:
    if ok:
        assert heartbeat.parse(value) == NOW
    else:
        with pytest.raises(ValueError):
            heartbeat.parse(value)


def test_stamp_round_trips_in_utc() -> None:
    local = NOW.astimezone(datetime.now().astimezone().tzinfo)
    assert heartbeat.stamp(local) == "2026-11-27T12:00:00Z"
    assert heartbeat.parse(heartbeat.stamp(NOW)) == NOW


def test_summary_counts_per_kind_and_reason() -> None:
    report = reap.ReapReport(dry_run=True)
    report.deleted[reap.INSTANCE] += ["i-1", "i-2"]
    report.deleted[reap.KEY_PAIR].append("key-1")
    cand = reap.Candidate(reap.INSTANCE, "i-3", {})
    report.skipped += [reap.Decision(cand, False, "not ours")] * 2
    report.skipped.append(reap.Decision(cand, False, "live run"))
    report.failures.append("boom")
    assert report.summary() == (
        "reap: would delete 2 instance, 1 key-pair; skipped 3 (1 live run, 2 not ours); "
        "1 failure(s)"
    )


# --- the heartbeat ----------------------------------------------------------------------------


def test_heartbeat_writes_the_current_stamp_on_registered_and_found_resources() -> None:
    writes: list[tuple[list[str], dict[str, str]]] = []
    beat = heartbeat.Heartbeat(
        lambda ids, tags: writes.append((list(ids), tags)),
        find=lambda: ["key-1", "i-1"],
        now=lambda: NOW,
        echo=lambda _: None,
    )
    beat.add(["i-1", "sg-1"])
    beat.add(["i-1"])
    assert beat.beat()
    assert writes == [(["i-1", "sg-1", "key-1"], {HEARTBEAT_TAG: "2026-11-27T12:00:00Z"})]


def test_a_failed_heartbeat_is_reported_never_raised() -> None:
    lines: list[str] = []

    def fail(ids: Any, tags: Any) -> None:
        raise AwsError("ec2:CreateTags i-1: RequestLimitExceeded: slow down")

    beat = heartbeat.Heartbeat(fail, echo=lines.append)
    beat.add(["i-1"])
    assert beat.beat() is False
    assert lines == [
        "WARNING  heartbeat not written (1/2): ec2:CreateTags i-1: RequestLimitExceeded: slow down"
    ]


def test_heartbeat_thread_beats_until_stopped() -> None:
    twice = threading.Event()
    count = [0]

    def write(ids: Any, tags: Any) -> None:
        count[0] += 1
        if count[0] >= 2:
            twice.set()

    beat = heartbeat.Heartbeat(write, interval=timedelta(milliseconds=5))
    beat.add(["i-1"])
    with beat:
        assert twice.wait(5)
    stopped_at = count[0]
    threading.Event().wait(0.05)
    assert count[0] == stopped_at  # nothing after stop


# --- on the local AWS -------------------------------------------------------------------------


@pytest.fixture
def clients(aws: LocalAws) -> AwsClients:
    return make_clients()


def _tags(**tags: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _stamp(minutes_ago: float) -> str:
    return heartbeat.stamp(NOW - timedelta(minutes=minutes_ago))


def ours(run: str, minutes_ago: float, key: str = RUN_TAG, **extra: str) -> dict[str, str]:
    return {MANAGED_TAG: "true", key: run, HEARTBEAT_TAG: _stamp(minutes_ago), **extra}


class World:
    """Creates tagged resources in the local AWS the way runs (or strangers) leave them."""

    def __init__(self, clients: AwsClients) -> None:
        self.c = clients
        image = "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/"
        self.ami = clients.ssm.get_parameter(Name=image + "recommended/image_id")["Parameter"][
            "Value"
        ]
        vpcs = clients.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
        self.vpc = vpcs["Vpcs"][0]["VpcId"]
        self.n = 0

    def instance(self, tags: dict[str, str]) -> str:
        resp = self.c.ec2.run_instances(
            ImageId=self.ami,
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(**tags)}],
        )
        return str(resp["Instances"][0]["InstanceId"])

    def group(self, tags: dict[str, str]) -> str:
        self.n += 1
        return str(
            self.c.ec2.create_security_group(
                GroupName=f"g{self.n}",
                Description="test",
                VpcId=self.vpc,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(**tags)}],
            )["GroupId"]
        )

    def key_pair(self, tags: dict[str, str], *, by_id: bool = False) -> str:
        """A key pair like Packer's temporary one; its name (its ID with ``by_id``)."""
        self.n += 1
        made = self.c.ec2.create_key_pair(
            KeyName=f"packer_{self.n}",
            TagSpecifications=[{"ResourceType": "key-pair", "Tags": _tags(**tags)}],
        )
        return str(made["KeyPairId"] if by_id else made["KeyName"])

    def configuration(self, name: str, tags: dict[str, str]) -> str:
        return str(
            self.c.inspector2.create_cis_scan_configuration(
                scanName=name,
                securityLevel="LEVEL_1",
                schedule={"oneTime": {}},
                targets={"accountIds": ["SELF"], "targetResourceTags": {"nobody": ["x"]}},
                tags=tags,
            )["scanConfigurationArn"]
        )

    def running(self) -> set[str]:
        res = self.c.ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        )["Reservations"]
        return {i["InstanceId"] for r in res for i in r["Instances"]}

    def groups(self) -> set[str]:
        return {g["GroupId"] for g in self.c.ec2.describe_security_groups()["SecurityGroups"]}

    def key_pairs(self) -> set[str]:
        return {k["KeyName"] for k in self.c.ec2.describe_key_pairs()["KeyPairs"]}

    def configurations(self) -> set[str]:
        items = self.c.inspector2.list_cis_scan_configurations()["scanConfigurations"]
        return {i["scanConfigurationArn"] for i in items}


def test_reap_takes_dead_runs_and_packer_leftovers_and_nothing_else(clients: AwsClients) -> None:
    w = World(clients)
    dead = {
        "i": w.instance(ours("cisv-dead", 30)),
        "sg": w.group(ours("cisv-dead", 31)),
        "cfg": w.configuration(CFG_NAME + "cisv-dead", ours("cisv-dead", 31)),
        "pi": w.instance(ours("20261127T100000Z-abc123", 40, BUILD_RUN_TAG)),
        "psg": w.group(ours("20261127T100000Z-abc123", 41, BUILD_RUN_TAG)),
        "pkey": w.key_pair(ours("20261127T100000Z-abc123", 41, BUILD_RUN_TAG)),
    }
    kept = {
        "live_i": w.instance(ours("cisv-live", 1)),
        "live_sg": w.group(ours("cisv-live", 45)),  # stamped at creation only: the run beats
        "live_cfg": w.configuration(CFG_NAME + "cisv-live", ours("cisv-live", 45)),
        "foreign_run_only": w.instance({RUN_TAG: "cisv-dead", HEARTBEAT_TAG: _stamp(90)}),
        "foreign_True": w.instance({**ours("cisv-dead", 90), MANAGED_TAG: "True"}),
        "foreign_space": w.group({**ours("cisv-dead", 90), MANAGED_TAG: " true"}),
        "foreign_key_case": w.group(
            {"cis-pipeline:Managed": "true", RUN_TAG: "cisv-dead", HEARTBEAT_TAG: _stamp(90)}
        ),
        "named_like_ours": w.configuration(CFG_NAME + "cisv-dead-2", {}),
        "bad_expiry": w.instance(ours("cisv-odd", 90, **{"cis-validate:expires-at": "tomorrow"})),
        "no_run": w.key_pair({MANAGED_TAG: "true", HEARTBEAT_TAG: _stamp(90)}),
    }
    lines: list[str] = []
    before = dict(clients.calls.counts)
    report = reap.run_reap(clients, NOW, lines.append, stale_after=STALE)

    assert sorted(report.instances) == sorted([dead["i"], dead["pi"]])
    assert sorted(report.security_groups) == sorted([dead["sg"], dead["psg"]])
    assert report.configurations == [dead["cfg"]]
    assert report.key_pairs == [dead["pkey"]]
    assert report.failures == []
    assert not {dead["i"], dead["pi"]} & w.running()
    assert not {dead["sg"], dead["psg"]} & w.groups()
    assert dead["pkey"] not in w.key_pairs() and dead["cfg"] not in w.configurations()
    assert {kept["live_i"], kept["foreign_run_only"], kept["foreign_True"], kept["bad_expiry"]} <= (
        w.running()
    )
    assert {kept["live_sg"], kept["foreign_space"], kept["foreign_key_case"]} <= w.groups()
    assert {kept["live_cfg"], kept["named_like_ours"]} <= w.configurations()
    assert kept["no_run"] in w.key_pairs()

    reasons = {d.candidate.id: d.reason for d in report.skipped}
    assert reasons[kept["bad_expiry"]] == "malformed expiry"
    assert reasons[kept["no_run"]] == "no run ID"
    assert reasons[kept["live_sg"]] == "live run"
    assert f"skip instance {kept['bad_expiry']}: malformed expiry" in lines
    assert lines[-1].startswith("reap: deleted 2 instance, 1 scan-configuration, 2 security-group")
    assert "1 malformed expiry" in lines[-1] and "; 0 failure(s)" in lines[-1]
    made = {op for op, n in clients.calls.counts.items() if n > before.get(op, 0)}
    assert made <= iam_policy.job_actions("reap"), made - iam_policy.job_actions("reap")


def test_dry_run_deletes_nothing(clients: AwsClients) -> None:
    w = World(clients)
    made = [
        w.instance(ours("cisv-dead", 30)),
        w.group(ours("cisv-dead", 30)),
        w.configuration(CFG_NAME + "cisv-dead", ours("cisv-dead", 30)),
    ]
    lines: list[str] = []
    report = reap.run_reap(clients, NOW, lines.append, stale_after=STALE, dry_run=True)
    assert report.total == 3 and report.failures == []
    assert made[0] in w.running() and made[1] in w.groups() and made[2] in w.configurations()
    assert lines[-1].startswith("reap: would delete 1 instance, 1 scan-configuration, 1 security")


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        ("TerminateInstances", "UnauthorizedOperation"),
        ("DeleteSecurityGroup", "DependencyViolation"),
    ],
)
def test_one_failed_deletion_does_not_stop_the_rest(
    aws: LocalAws, clients: AwsClients, operation: str, error: str
) -> None:
    w = World(clients)
    instances = [w.instance(ours("cisv-a", 30)), w.instance(ours("cisv-b", 30))]
    groups = [w.group(ours("cisv-a", 30)), w.group(ours("cisv-b", 30))]
    key = w.key_pair(ours("20261127T100000Z-abc123", 30, BUILD_RUN_TAG))
    aws.load_scenario(
        {"faults": [{"operation": operation, "error": error, "service": "ec2", "times": 1}]}
    )
    lines: list[str] = []
    report = reap.run_reap(clients, NOW, lines.append, stale_after=STALE)
    assert len(report.failures) == 1 and error in report.failures[0]
    assert any(line.startswith("WARNING  deleting ") and error in line for line in lines)
    failed_kind = reap.INSTANCE if operation == "TerminateInstances" else reap.SECURITY_GROUP
    expected = {reap.INSTANCE: instances, reap.SECURITY_GROUP: groups}
    for kind, ids in expected.items():
        assert len(report.deleted[kind]) == (1 if kind == failed_kind else 2), kind
        assert set(report.deleted[kind]) <= set(ids)
    assert report.key_pairs == [key]
    assert lines[-1].endswith("; 1 failure(s)")


def test_malformed_listing_never_crashes_and_an_unlistable_account_is_one_error(
    aws: LocalAws, clients: AwsClients
) -> None:
    aws.load_scenario(
        {"faults": [{"operation": "DescribeKeyPairs", "error": "UnauthorizedOperation"}]}
    )
    with pytest.raises(AwsError, match=r"ec2:DescribeKeyPairs: UnauthorizedOperation"):
        reap.run_reap(clients, NOW, lambda _: None, stale_after=STALE)


def test_heartbeat_restamps_live_resources_and_finds_packers(clients: AwsClients) -> None:
    w = World(clients)
    build = "20261127T115000Z-fed321"
    packer = [
        w.instance(ours(build, 9, BUILD_RUN_TAG)),
        w.group(ours(build, 9, BUILD_RUN_TAG)),
        w.key_pair(ours(build, 9, BUILD_RUN_TAG), by_id=True),
    ]
    stranger = w.instance({BUILD_RUN_TAG: build, HEARTBEAT_TAG: _stamp(9)})  # not ours
    later = NOW + timedelta(minutes=8)
    beat = heartbeat.Heartbeat(
        partial(ec2.write_tags, clients),
        find=partial(ec2.run_resource_ids, clients, BUILD_RUN_TAG, [build]),
        now=lambda: later,
    )
    assert sorted(beat.find() if beat.find else []) == sorted(packer)
    assert beat.beat()
    # Twelve minutes after the build started its heartbeat is two minutes old: it survives.
    report = reap.run_reap(clients, later + timedelta(minutes=2), lambda _: None, stale_after=STALE)
    assert report.total == 0
    res = clients.ec2.describe_instances(InstanceIds=[packer[0], stranger])["Reservations"]
    stamps = {
        i["InstanceId"]: {t["Key"]: t["Value"] for t in i["Tags"]}[HEARTBEAT_TAG]
        for r in res
        for i in r["Instances"]
    }
    assert stamps == {packer[0]: heartbeat.stamp(later), stranger: _stamp(9)}


def test_a_killed_validation_run_is_reaped_after_its_heartbeat_goes_stale(
    aws: LocalAws, clients: AwsClients, tmp_path: Path
) -> None:
    """A run that stops beating (SIGKILL; here --keep, which leaves the same state) keeps its
    resources while fresh and loses all of them once stale."""
    fake = FakeTime(aws)
    started = shifted_now()
    rt = Runtime(echo=lambda _: None, sleep=fake.sleep, clock=fake.clock, now=lambda: started)
    ami = make_ami(clients)
    run_validate(
        settings(tmp_path, ami, run_id="cisv-20261127120000-killed", keep=True), clients, rt
    )
    fresh = reap.run_reap(clients, started + timedelta(minutes=5), lambda _: None)
    assert fresh.total == 0
    assert {d.reason for d in fresh.skipped if d.candidate.tags.get(RUN_TAG)} == {"live run"}
    lines: list[str] = []
    stale = reap.run_reap(clients, started + timedelta(minutes=11), lines.append)
    assert (len(stale.instances), len(stale.security_groups), len(stale.configurations)) == (
        1,
        1,
        1,
    ), lines
    assert stale.failures == []
    again = reap.run_reap(clients, started + timedelta(minutes=12), lambda _: None)
    assert again.total == 0


def test_sigkill_during_the_scan_then_reap(tmp_path: Path) -> None:
    """A real `invoke validate` process killed with SIGKILL (no cleanup at all): the next reap
    leaves it alone while its heartbeat is fresh, and takes everything once it is stale."""
    # Inspector on and SSM online at once, so the run reaches its scan without poll waits.
    fast = {"inspector": {"initially_enabled": True}, "ssm": {"online_after_s": 0}}
    with local_aws(scenario={**fast, "scan": {"duration_s": 600}}) as server:
        clients = make_clients_for(server)
        ami = make_ami(clients)
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "invoke"), "validate", "--ami", ami]
            + ["--enable-inspector", "--out", str(tmp_path / "o")],
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, **server.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "CIS scan configuration" in line or time.monotonic() > deadline:
                break
        proc.kill()
        proc.wait(timeout=30)
        assert any("CIS scan configuration" in line for line in seen), "".join(seen)
        now = datetime.now(UTC)
        fresh = reap.run_reap(clients, now + timedelta(minutes=1), lambda _: None)
        assert fresh.total == 0 and fresh.failures == []
        lines: list[str] = []
        stale = reap.run_reap(clients, now + timedelta(minutes=11), lines.append)
        kinds = (len(stale.instances), len(stale.security_groups), len(stale.configurations))
        assert kinds == (1, 1, 1), lines
        assert stale.failures == []
        left = reap.run_reap(clients, now + timedelta(minutes=12), lambda _: None)
        assert left.total == 0 and not [d for d in left.skipped if d.reason != "not ours"]
