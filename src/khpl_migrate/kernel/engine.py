"""The one guarded write run: `migrate --apply`, `sync --apply` and each shard go through it.

What every run that writes does, in the safety contract's order (docs/design.md):
close the runs of this bucket and table that were cut off (so rollback finds
what they wrote); write nothing at all when the plan has nothing to write (no
backup, no manifest: a re-run only reads); take the backup and check it before
the first write; open the manifest; read the pinned source again and hand each
record with work to the bounded pool; on Ctrl-C stop as `runner.Stop` says;
drain; tell a fatal error (the next record would fail the same way: it stops
the run) from a record's own failure (listed, the run goes on); close and
upload the manifest however the run ends; then re-raise what stopped it.

What a record's work is belongs to the capability (`Work`): migrate stages a
record's images and hands its item to the `ItemWriter`; sync judges the record
again and writes one conditional change. A run whose source ends before the
plan's count of records is not done: it says so ("read N records, the plan has
M"), whichever capability ran it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

from khpl_migrate.aws import TRANSACT_ITEMS, Store
from khpl_migrate.core import errors
from khpl_migrate.core.errors import reason_of
from khpl_migrate.core.ratelimit import UNLIMITED, WriteRate
from khpl_migrate.kernel.backups import make_backup
from khpl_migrate.kernel.manifest import ManifestWriter, RunHeader, SummaryLine
from khpl_migrate.kernel.progress import Progress
from khpl_migrate.kernel.runner import Flight, Runner, Stop
from khpl_migrate.kernel.runs import resume_cut_off
from khpl_migrate.kernel.source import Digest, Locations, Source, iter_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pace:
    """How a run goes: its pool, its progress bar, its transactions' size, its cap."""

    runner: Runner
    progress: Progress
    item_batch: int = TRANSACT_ITEMS
    rate: WriteRate = UNLIMITED

    @property
    def batch(self) -> int:
        """Items a transaction: under a cap, no more than a second's worth, so a batch is
        never a burst of many times the cap."""
        if self.rate.per_second is None:
            return self.item_batch
        return max(1, min(self.item_batch, int(self.rate.per_second)))


@dataclass(frozen=True)
class RunSpec:
    """What a guarded run writes, from which pinned source, and how it is told."""

    header: RunHeader  # the manifest's first line (the backup's key is filled in here)
    source: Source  # the pinned version the run reads (a shard's: the run's snapshot)
    digest: Digest  # what the plan read: the backup is checked against it
    records: int  # records the plan read in the source: fewer now is a short read
    to_write: int  # records with something to write: the bar's total
    phase: str  # the bar's name: "Migrating", "Syncing"
    again: str  # the fix an interrupted run suggests
    state_dir: Path
    # A shard of a sharded run: its snapshot is the backup the prepare took and checked,
    # cut-off runs were closed by the prepare, and its part is written even when it has
    # nothing to write (the part is how the run knows the shard is done).
    snapshot: str | None = None
    part: tuple[int, str] | None = None


@dataclass(kw_only=True)
class RunFacts:
    """Where a run's records are, and how it ended: what every run's result reports."""

    backup_key: str | None = None
    manifest_key: str | None = None
    manifest_path: str | None = None
    seconds: float = 0.0
    stopped: str | None = None  # why it stopped early, if it did
    resumed: list[str] = field(default_factory=list)  # cut-off runs this one closed

    def facts_json(self) -> dict[str, Any]:
        return {
            "backupKey": self.backup_key,
            "manifestKey": self.manifest_key,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
            "resumedFrom": self.resumed,
        }


@dataclass(frozen=True)
class Context:
    """What a run's work writes to while it goes."""

    store: Store
    manifest: ManifestWriter
    flight: Flight  # records handed to the pool and not yet ended (Ctrl-C counts them)
    stop: Stop
    pace: Pace
    # Where each record read lies in the source (`Locations.of(index)`, in `Work.take`).
    where: Locations


@dataclass(frozen=True)
class Task:
    """One record's work on the pool. `run` returns True when the record is held past its
    task (its item waits in a writer's batch): the work ends its flight when it writes
    the record's line; otherwise the record ends with its task."""

    index: int | None
    id: str | None
    run: Callable[[], bool]


class Work(Protocol):
    """A capability's side of a guarded run."""

    def take(self, index: int, record: Any) -> Task | None:
        """The record's task, or None: nothing to write for it (its line, if it has one,
        is written now)."""

    def rest(self) -> Iterable[Task]:
        """Tasks with no record of the source (sync: items whose record left it)."""

    def failed(self, task: Task, reason: str) -> None:
        """A record's own failure: its line, its count (the run goes on)."""

    def drain(self, now: bool) -> None:
        """The pool is drained: write what waits (the writer's last batch) or, after a
        second Ctrl-C (`now`), record it as stopped without writing it."""

    def summary(self, stopped: str | None) -> SummaryLine:
        """The manifest's last line: the run's counts."""

    def interrupted(self, manifest: str) -> str:
        """The counts line of a run stopped by Ctrl-C (each record in one of them)."""


INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"
INTERRUPTED_TWICE = "interrupted (Ctrl-C or SIGTERM twice: the records in flight were stopped)"


def guarded_run(
    store: Store, spec: RunSpec, begin: Callable[[Context], Work], pace: Pace, ran: RunFacts
) -> None:
    """Carry out a run whose plan is `spec`, telling `ran` (the run's result) how it goes;
    `begin` makes its work once the manifest is open. Raises the fatal error that stopped
    it, or `errors.Interrupted`, after the manifest is closed and uploaded."""
    began = time.monotonic()
    header = spec.header
    bucket, table = str(header.bucket), str(header.table)
    if spec.snapshot is None:
        ran.resumed = resume_cut_off(store, spec.state_dir, bucket, table, header.run_id)
    if spec.to_write == 0 and spec.part is None:
        ran.seconds = time.monotonic() - began
        return  # nothing to write: no backup copy, no manifest, so re-runs cost nothing
    if spec.snapshot is None:
        ran.backup_key = make_backup(store, spec.source, spec.digest, header.started_at)
        header = msgspec.structs.replace(header, backup_key=ran.backup_key)
    else:
        ran.backup_key = spec.snapshot
    manifest = ManifestWriter(store, header, spec.state_dir, part=spec.part)
    ran.manifest_path = str(manifest.path)
    flight = Flight()
    stop = Stop(flight.count, pace.progress.say)
    where = Locations(spec.source.records_path)
    work = begin(Context(store, manifest, flight, stop, pace, where))
    feed = _Feed(work, pace.runner, flight, stop, where)
    # Ctrl-C or SIGTERM: the first takes no new record and lets those in flight finish,
    # the second stops them at their next step; either way the manifest is closed and
    # uploaded, naming every object written, before the bar stops and the counts print.
    with stop.handling():
        try:
            # The first frame, once Ctrl-C is handled: an operator who sees the bar can stop.
            pace.progress.start(spec.phase, spec.to_write)
            feed.source(store, spec.source)
        except KeyboardInterrupt:
            stop.signal()  # raised where no handler could be set (not the main thread)
            stop.cut = True
        finally:
            pace.runner.drain()
            if not feed.fatal:
                try:
                    work.drain(now=stop.now)
                except errors.FATAL as exc:
                    feed.fatal.append(exc)
            ran.stopped = _why_stopped(feed, stop, spec.records)
            ran.seconds = time.monotonic() - began
            pace.progress.finish()
            manifest.close(work.summary(ran.stopped))
            ran.manifest_key = manifest.key  # a shard's later attempt has a name of its own
    if feed.fatal:
        raise feed.fatal[0]
    if stop.early:
        raise errors.Interrupted(work.interrupted(f"s3://{bucket}/{manifest.key}"), spec.again)


class _Feed:
    """Reads the pinned source again and hands each record with work to the pool."""

    def __init__(
        self, work: Work, runner: Runner, flight: Flight, stop: Stop, where: Locations
    ) -> None:
        self.work, self.runner, self.flight, self.stop = work, runner, flight, stop
        self.where = where
        self.fatal: list[errors.KhplError] = []
        self.read = 0  # records read from the source

    def source(self, store: Store, source: Source) -> None:
        """Each record of the source, then the tasks with no record. A Ctrl-C after the
        last one was handed cuts nothing short: the run waits for those in flight."""
        for index, record in iter_records(store, source, locations=self.where):
            if self._stopping():
                return
            self.read += 1
            task = self.work.take(index, record)
            if task is not None:
                self._submit(task)
        for task in self.work.rest():
            if self._stopping():
                return
            self._submit(task)

    def _stopping(self) -> bool:
        if self.stop.requested:
            self.stop.cut = True
            return True
        return bool(self.fatal)

    def _submit(self, task: Task) -> None:
        flight, stop = self.flight, self.stop

        def run() -> bool:
            if stop.now:
                flight.leave()  # not started: nothing written, no line; the next run does it
                return False
            return task.run()

        def done(future: Future[bool]) -> None:
            exc = future.exception()
            if exc is None:
                if not future.result():
                    flight.end()
                return
            if isinstance(exc, errors.FATAL):
                self.fatal.append(exc)
                return
            log.debug("record %s failed", task.index, exc_info=exc)
            self.work.failed(task, reason_of(exc))
            flight.end()

        flight.hand()
        self.runner.submit(run, done)


def _why_stopped(feed: _Feed, stop: Stop, planned: int) -> str | None:
    if feed.fatal:
        return str(feed.fatal[0])
    if stop.now:
        return INTERRUPTED_TWICE
    if stop.cut:
        return INTERRUPTED
    if feed.read != planned:
        # The same pinned version, fewer (or more) records than the plan read: the records
        # not read were not written, and the run must not say it is done.
        return f"read {feed.read} records, the plan has {planned}"
    return None
