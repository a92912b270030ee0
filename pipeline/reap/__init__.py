"""``invoke reap``: delete what killed runs leaked (test and build instances, per-run security
groups, scan configurations, Packer's key pairs). It takes only resources tagged
``cis-pipeline:managed=true`` (exactly) with a run ID, and only once the run's heartbeat is stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from pipeline import heartbeat
from pipeline.aws import AwsClients, boundary, ec2, inspector
from pipeline.aws.release import in_region
from pipeline.channels import ReleaseSettings
from pipeline.errors import MAX_LINE_CHARS, ConfigError, PipelineError, one_line
from pipeline.reap.retention import run_retention
from pipeline.runs import check_run_id
from pipeline.tags import (
    BUILD_RUN_TAG,
    EXPIRES_TAG,
    HEARTBEAT_TAG,
    MANAGED_TAG,
    MANAGED_VALUE,
    RUN_TAG,
)

INSTANCE = "instance"
CONFIGURATION = "scan-configuration"
SECURITY_GROUP = "security-group"
KEY_PAIR = "key-pair"
KINDS = (INSTANCE, CONFIGURATION, SECURITY_GROUP, KEY_PAIR)  # the order of deletion
DEFAULT_STALE = heartbeat.DEFAULT_STALE
FUTURE = "heartbeat in the future"


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """A resource that might be the pipeline's, with its tags as AWS returned them."""

    kind: str
    id: str
    tags: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Decision:
    candidate: Candidate
    delete: bool
    reason: str


def run_id_of(tags: Mapping[str, str]) -> str | None:
    """The run ID (validation's, else the build's); None when missing or not one the pipeline
    makes (1-64 letters, digits, '.', '_', '-': no padding, newline or control character)."""
    for key in (RUN_TAG, BUILD_RUN_TAG):
        value = tags.get(key)
        if value is not None:
            try:
                return check_run_id(value)
            except ConfigError:
                return None
    return None


def is_ours(tags: Mapping[str, str]) -> bool:
    """The ownership tag, matched exactly: key and value, case and white space included."""
    return tags.get(MANAGED_TAG) == MANAGED_VALUE


def plan(candidates: Iterable[Candidate], now: datetime, stale_after: timedelta) -> list[Decision]:
    """Decide, without I/O, what to delete and what to skip (and why) for every candidate.

    A run is alive while its newest heartbeat (over all its resources) is younger than
    ``stale_after``; an instance past its expires-at tag goes even then (it powered itself off).
    A heartbeat more than ``heartbeat.MAX_SKEW`` ahead of ``now`` is not believed: that resource
    and its whole run are skipped (reported), never kept alive nor judged by the rest.
    """
    found = list(dict.fromkeys(candidates))
    problems: dict[Candidate, str] = {}
    beats: dict[Candidate, datetime] = {}
    expiries: dict[Candidate, datetime] = {}
    for cand in found:
        problem = _problem(cand, beats, expiries)
        if problem:
            problems[cand] = problem
    future = {
        str(run_id_of(c.tags)) for c, beat in beats.items() if beat > now + heartbeat.MAX_SKEW
    }
    for cand in found:
        if cand not in problems and str(run_id_of(cand.tags)) in future:
            problems[cand] = FUTURE
    newest: dict[str, datetime] = {}
    for cand, beat in beats.items():
        rid = str(run_id_of(cand.tags))
        newest[rid] = max(beat, newest.get(rid, beat))
    decisions = []
    for cand in found:
        expiry = expiries.get(cand)
        expired = cand.kind == INSTANCE and expiry is not None and expiry <= now
        if cand in problems and not (expired and problems[cand] == FUTURE):
            decisions.append(Decision(cand, False, problems[cand]))
            continue
        last = newest.get(str(run_id_of(cand.tags)))
        if expired:
            decisions.append(Decision(cand, True, "expired"))
        elif last is None:
            decisions.append(Decision(cand, False, "no heartbeat"))
        elif now - last < stale_after:
            decisions.append(Decision(cand, False, "live run"))
        else:
            decisions.append(Decision(cand, True, "stale heartbeat"))
    return decisions


def _problem(
    cand: Candidate, beats: dict[Candidate, datetime], expiries: dict[Candidate, datetime]
) -> str | None:
    """Why a candidate must be left alone (not ours, malformed tags), else None."""
    if not is_ours(cand.tags):
        return "not ours"
    if run_id_of(cand.tags) is None:
        given = cand.tags.get(RUN_TAG, cand.tags.get(BUILD_RUN_TAG))
        return "malformed run ID" if given else "no run ID"
    for key, into, label in (
        (HEARTBEAT_TAG, beats, "malformed heartbeat"),
        (EXPIRES_TAG, expiries, "malformed expiry"),
    ):
        if key in cand.tags:
            try:
                into[cand] = heartbeat.parse(cand.tags[key])
            except ValueError:
                return label
    return None


@dataclass
class ReapReport:
    """What was deleted (by kind), skipped (with the reason) and what failed."""

    dry_run: bool = False
    deleted: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    skipped: list[Decision] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def instances(self) -> list[str]:
        return self.deleted[INSTANCE]

    @property
    def configurations(self) -> list[str]:
        return self.deleted[CONFIGURATION]

    @property
    def security_groups(self) -> list[str]:
        return self.deleted[SECURITY_GROUP]

    @property
    def key_pairs(self) -> list[str]:
        return self.deleted[KEY_PAIR]

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.deleted.values())

    def summary(self) -> str:
        """One line: counts per kind deleted, skipped per reason, failures."""
        verb = "would delete" if self.dry_run else "deleted"
        done = ", ".join(f"{len(v)} {k}" for k, v in self.deleted.items() if v) or "nothing"
        why = Counter(d.reason for d in self.skipped)
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(why.items()))
        return (
            f"reap: {verb} {done}; skipped {len(self.skipped)}"
            + (f" ({skipped})" if skipped else "")
            + f"; {len(self.failures)} failure(s)"
        )


def find_candidates(clients: AwsClients) -> list[Candidate]:
    """Everything carrying the ownership tag or a run ID, and every scan configuration
    (ec2:DescribeInstances, DescribeSecurityGroups, DescribeKeyPairs;
    inspector2:ListCisScanConfigurations). Resources merely named like ours are judged by tags."""
    out: dict[tuple[str, str], Candidate] = {}
    keys = (MANAGED_TAG, RUN_TAG, BUILD_RUN_TAG)  # one call per kind: tag-key values are OR'ed
    for inst in ec2.tagged_instances(clients, *keys):
        out[(INSTANCE, inst.id)] = Candidate(INSTANCE, inst.id, dict(inst.tags))
    for group_id, tags in ec2.tagged_security_groups(clients, *keys).items():
        out[(SECURITY_GROUP, group_id)] = Candidate(SECURITY_GROUP, group_id, tags)
    # Key pairs are only ever Packer's: asked by the ownership tag alone (moto 5.2.5 matches a
    # tag-key filter with several values on key pairs wrongly; AWS ORs them).
    for name, tags in ec2.tagged_key_pairs(clients, MANAGED_TAG).items():
        out[(KEY_PAIR, name)] = Candidate(KEY_PAIR, name, tags)
    for _name, arn, tags in inspector.configurations_with_tags(clients):
        out[(CONFIGURATION, arn)] = Candidate(CONFIGURATION, arn, tags)
    return list(out.values())


def run_reap(
    clients: AwsClients,
    now: datetime,
    echo: Callable[[str], None],
    *,
    stale_after: timedelta = DEFAULT_STALE,
    dry_run: bool = False,
    retention: ReleaseSettings | None = None,
) -> ReapReport:
    """Find candidates, ``plan``, then delete: instances (and wait for them), scan
    configurations, security groups, key pairs. A failed deletion is reported and the rest
    still go. Raises AwsError only when the candidates cannot be listed. With ``retention``,
    old unpromoted pipeline AMIs go too (``pipeline.reap.retention``)."""
    report = ReapReport(dry_run=dry_run)
    echo = partial(_say, echo)  # IDs, names and AWS messages are untrusted: one line each
    with boundary("reap: listing candidates"):
        decisions = plan(find_candidates(clients), now, stale_after)
    for decision in decisions:
        if not decision.delete:
            report.skipped.append(decision)
            cand = decision.candidate
            if decision.reason not in ("live run", "not ours"):
                echo(f"skip {cand.kind} {cand.id}: {decision.reason}")
    doomed = {
        k: [d.candidate for d in decisions if d.delete and d.candidate.kind == k] for k in KINDS
    }
    act = _Actor(report, echo, dry_run)
    for cand in doomed[INSTANCE]:
        act.do(cand, partial(ec2.terminate, clients, [cand.id]))
    gone = report.deleted[INSTANCE]
    if gone and not dry_run:
        try:
            with boundary("reap: waiting for terminations"):
                ec2.wait_terminated(clients, gone)
        except PipelineError as exc:
            report.failures.append(f"waiting for {', '.join(gone)}: {exc}")
            echo(f"WARNING  {exc}")
    for cand in doomed[CONFIGURATION]:
        act.do(cand, partial(inspector.delete_configuration, clients, cand.id))
    for cand in doomed[SECURITY_GROUP]:
        act.do(cand, partial(ec2.delete_security_group, clients, cand.id))
    for cand in doomed[KEY_PAIR]:
        act.do(cand, partial(ec2.delete_key_pair, clients, cand.id))
    if retention is not None:
        try:
            amis = run_retention(clients, retention, now, echo, dry_run=dry_run)
            report.failures.extend(amis.failures)
        except PipelineError as exc:  # listing failed: the rest of the reap still stands
            report.failures.append(f"AMI retention: {exc}")
            echo(f"WARNING  AMI retention: {exc}")
    echo(report.summary())
    return report


def reap_regions(
    clients: AwsClients,
    regions: Sequence[str],
    now: datetime,
    echo: Callable[[str], None],
    *,
    stale_after: timedelta = DEFAULT_STALE,
    dry_run: bool = False,
    retention: ReleaseSettings | None = None,
) -> dict[str, ReapReport]:
    """``run_reap`` in the clients' region, then in each other of ``regions`` (a validate or a
    promote runs in each configured region, so leaks and unpromoted copies can be there too).
    A region whose listing fails is a failure of its report; the others still run."""
    reports: dict[str, ReapReport] = {}
    for region in dict.fromkeys((clients.region, *regions)):
        rc = clients if region == clients.region else in_region(clients, region)
        say = partial(_prefixed, echo, region)
        try:
            reports[region] = run_reap(
                rc, now, say, stale_after=stale_after, dry_run=dry_run, retention=retention
            )
        except PipelineError as exc:
            failed = ReapReport(dry_run=dry_run)
            failed.failures.append(f"{region}: {exc}")
            say(f"WARNING  {exc}")
            reports[region] = failed
    return reports


def _prefixed(echo: Callable[[str], None], region: str, line: str) -> None:
    echo(f"{region}: {line}")


def _say(echo: Callable[[str], None], line: str) -> None:
    echo(one_line(line, MAX_LINE_CHARS))


@dataclass
class _Actor:
    """Deletes one resource: in a dry run only reports it; a failure is kept, not raised."""

    report: ReapReport
    echo: Callable[[str], None]
    dry_run: bool

    def do(self, cand: Candidate, action: Callable[[], object]) -> None:
        what = f"{cand.kind} {cand.id} (run {run_id_of(cand.tags)})"
        try:
            if not self.dry_run:
                with boundary(f"deleting {cand.kind} {cand.id}"):
                    action()
        except PipelineError as exc:
            self.report.failures.append(f"{what}: {exc}")
            self.echo(f"WARNING  deleting {what} failed: {exc}")
            return
        self.report.deleted[cand.kind].append(cand.id)
        self.echo(f"{'would delete' if self.dry_run else 'deleted'} {what}")
