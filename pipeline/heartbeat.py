"""A live run's heartbeat: ``HEARTBEAT_TAG`` (UTC, RFC 3339) re-written on the run's resources
every few minutes, so ``invoke reap`` can tell a killed run (stale heartbeat) from a live one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.errors import PipelineError
from pipeline.tags import HEARTBEAT_TAG

INTERVAL = timedelta(minutes=2)
DEFAULT_STALE = INTERVAL * 5  # what `invoke reap` waits for before a run counts as dead
# Consecutive failed beats after which the run is lost: within MAX_FAILURES * INTERVAL (4
# minutes) of its last stamp, so its cleanup has the rest of DEFAULT_STALE before `invoke reap`
# may take its resources for a dead run's.
MAX_FAILURES = 2
MAX_SKEW = timedelta(minutes=5)  # a heartbeat further ahead of reap's clock is not believed
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)

Writer = Callable[[Sequence[str], dict[str, str]], None]  # (resource ids, tags) -> None


def stamp(now: datetime) -> str:
    """``now`` as the tag value: RFC 3339 in UTC, second precision (``2026-11-27T18:02:00Z``)."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> datetime:
    """A tag value written by ``stamp`` (or any RFC 3339 time with an offset), as aware UTC.

    Raises ValueError for anything else: an empty value, no time zone, free text.
    """
    if not _RFC3339.fullmatch(value):  # ASCII digits, a zone; no week dates or basic format
        raise ValueError(f"not an RFC 3339 time with a time zone: {value[:64]!r}")
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59 is past year 9999 in UTC
        raise ValueError(f"out of range: {value!r}") from None


@dataclass
class Heartbeat:
    """Re-stamps the registered resources every ``interval`` from a daemon thread.

    ``write`` tags resources (``pipeline.aws.ec2.write_tags``); ``find``, if given, names more
    resources at each beat (Packer's, which the pipeline does not create itself). ``now`` is
    injectable and ``beat`` can be called directly, so tests need no sleeping. A failed beat is
    reported through ``echo`` and retried at the next one; after ``max_failures`` in a row the
    heartbeat is lost: ``lost`` says why and ``on_lost`` (given: the run stops and cleans up, as
    build and validate do) is called once, from the beating thread, and beating ends. Used as a
    context manager it beats while the block runs.
    """

    write: Writer
    find: Callable[[], Sequence[str]] | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    echo: Callable[[str], None] = print
    interval: timedelta = INTERVAL
    on_lost: Callable[[str], None] | None = None
    max_failures: int = MAX_FAILURES
    resources: list[str] = field(default_factory=list)
    beats: int = 0
    failures: int = 0  # consecutive
    error: str | None = None  # the last failure
    lost: str | None = None  # why the heartbeat was given up
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def add(self, resource_ids: Iterable[str]) -> None:
        """Keep these resources alive from now on (they were created with a fresh stamp)."""
        with self._lock:
            self.resources.extend(r for r in resource_ids if r not in self.resources)

    def beat(self) -> bool:
        """Stamp every registered resource now; False (reported, counted) when finding or
        writing them failed."""
        with self._lock:
            ids = list(self.resources)
        try:
            if self.find is not None:
                ids += [r for r in self.find() if r not in ids]
            if ids:
                self.write(ids, {HEARTBEAT_TAG: stamp(self.now())})
        except Exception as exc:  # noqa: BLE001 - counted and reported; never kills the beating
            return self._failed(str(exc) if isinstance(exc, PipelineError) else repr(exc))
        self.failures, self.error = 0, None
        if ids:
            self.beats += 1
        return True

    def _failed(self, error: str) -> bool:
        self.failures += 1
        self.error = error
        self.echo(f"WARNING  heartbeat not written ({self.failures}/{self.max_failures}): {error}")
        if self.failures >= self.max_failures and self.lost is None:
            self.lost = (
                f"heartbeat not written {self.failures} times in a row (last: {error}); "
                "`invoke reap` takes a run's resources for abandoned "
                f"{DEFAULT_STALE.total_seconds() / 60:.0f} minutes after their last stamp"
            )
            self._stop.set()
            if self.on_lost is not None:
                self.on_lost(self.lost)
        return False

    def start(self) -> Heartbeat:
        """Beat every ``interval`` in a daemon thread until ``stop``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating (cleanup: the run's resources are about to go)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval.total_seconds()):
            self.beat()
