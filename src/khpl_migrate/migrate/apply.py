"""Carries out a plan: backup, images, items, manifest.

The order is the safety contract's (docs/design.md): the backup is taken and
checked before the first write; a record's item is written only after all its
images are stored (`staging.py`); images never replace other bytes (S3
If-None-Match) and items never replace items (`attribute_not_exists(id)`).
Records run on a bounded pool (`runner.py`) that tests can swap for a serial
one; every record's outcome is counted once, by the `Tally`, which also
records it in the run manifest and moves the progress bar.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from khpl_migrate.aws import TRANSACT_ITEMS, Store
from khpl_migrate.core import errors
from khpl_migrate.core.errors import reason_of
from khpl_migrate.core.ratelimit import UNLIMITED, WriteRate
from khpl_migrate.kernel.backups import make_backup
from khpl_migrate.kernel.manifest import (
    Journal,
    Manifest,
    Outcome,
    RecordOutcome,
    migration_header,
    resume_cut_off,
)
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Flight, Runner, Stop, make_runner
from khpl_migrate.kernel.source import iter_records
from khpl_migrate.kernel.writer import STOPPED, ItemWriter, Staged, stage_record
from khpl_migrate.migrate.plan import Action, Plan, PlanEntry
from khpl_migrate.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    index: int
    id: str | None
    reason: str


@dataclass
class RunResult:
    """The summary of a run (or of a dry run's plan): every record counted once."""

    run_id: str
    dry_run: bool
    total: int
    migrated: int = 0
    skipped: int = 0
    failed: list[Failure] = field(default_factory=list)
    images: int = 0
    image_bytes: int = 0
    backup_key: str | None = None
    manifest_key: str | None = None
    manifest_path: str | None = None
    seconds: float = 0.0
    stopped: str | None = None  # why the run stopped early, if it did
    resumed: list[str] = field(default_factory=list)  # earlier runs this one picks up from
    warnings: list[tuple[int, str | None, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and self.stopped is None

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "total": self.total,
            "migrated": self.migrated,
            "skipped": self.skipped,
            "failed": [{"index": f.index, "id": f.id, "reason": f.reason} for f in self.failed],
            "images": self.images,
            "imageBytes": self.image_bytes,
            "backupKey": self.backup_key,
            "manifestKey": self.manifest_key,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
            "resumedFrom": self.resumed,
            "warnings": [{"index": i, "id": rid, "warning": w} for i, rid, w in self.warnings],
        }


def result_of_plan(plan: Plan) -> RunResult:
    """The dry run's result: what the real run would do, nothing done."""
    return RunResult(
        run_id=plan.stamp.run_id,
        dry_run=True,
        total=plan.total,
        migrated=plan.count(Action.CREATE),
        skipped=plan.count(Action.SKIP),
        failed=[Failure(e.index, e.id, e.reason or "") for e in plan.failures],
        images=plan.image_count,
        image_bytes=plan.image_bytes,
        warnings=plan.warnings,
    )


def result_of_manifest(manifest: Manifest, seconds: float) -> RunResult:
    """A run's result as its manifest tells it: how a sharded run's shards add up."""
    planned = manifest.header.get("planned") or {}
    result = RunResult(
        manifest.run_id,
        dry_run=False,
        total=sum(int(n) for n in planned.values()) or len(manifest.records),
        backup_key=manifest.header.get("backupKey"),
        manifest_key=manifest.key,
        seconds=seconds,
        stopped=manifest.stopped if manifest.summary else "shards still running",
    )
    for line in manifest.records:
        outcome = line.get("outcome")
        if outcome == "migrated":
            result.migrated += 1
            result.images += len(line.get("images") or [])
            result.image_bytes += sum(int(i.get("size") or 0) for i in line.get("images") or [])
        elif outcome == "skipped":
            result.skipped += 1
        else:
            index = int(line.get("index") or 0)
            result.failed.append(Failure(index, line.get("id"), str(line.get("reason") or "")))
    return result


class Tally:
    """Counts every record's outcome exactly once, records it in the manifest, and moves
    the progress bar. It also keeps the error that stops the run, if one does, and how
    many records are in flight (handed to the pool, not yet settled) for Ctrl-C."""

    def __init__(self, result: RunResult, journal: Journal, progress: Progress) -> None:
        self.result = result
        self.journal = journal
        self.progress = progress
        self.read = 0  # records read from the source
        self.fatal: list[errors.KhplError] = []
        self.flight = Flight()
        self.stop = Stop(self.flight.count, progress.say)
        self._lock = threading.Lock()

    def planned(self, entry: PlanEntry) -> None:
        """A record the plan skips or fails: counted, recorded; the bar counts only creates."""
        outcome: Outcome = "skipped" if entry.action is Action.SKIP else "failed"
        self._count(RecordOutcome(entry.index, entry.id, outcome, entry.reason))

    def staged(self, staged: Staged) -> None:
        """Its images are stored: the bar moves now, not when its batch is written."""
        self.progress.advance(images=len(staged.writes), nbytes=sum(w.size for w in staged.writes))

    def written(self, outcome: RecordOutcome) -> None:
        """The item writer's verdict on a staged record: only a failure is news to the bar."""
        self._count(outcome)
        self.flight.end()
        if outcome.outcome == "failed":
            self.progress.advance(records=0, failed=True)

    def settled(self, outcome: RecordOutcome) -> None:
        """A record that ended before its item was staged (failed, or skipped)."""
        self._count(outcome)
        self.flight.end()
        self.progress.advance(
            images=len(outcome.images),
            nbytes=sum(i.size for i in outcome.images),
            failed=outcome.outcome == "failed",
        )

    def left(self) -> None:
        """A record handed to the pool that a second Ctrl-C stopped before it started:
        nothing written, no line; the next run does it."""
        self.flight.leave()
        self.flight.end()

    def _count(self, outcome: RecordOutcome) -> None:
        self.journal.record(outcome)
        result = self.result
        with self._lock:
            if outcome.outcome == "migrated":
                result.migrated += 1
                result.images += len(outcome.images)
                result.image_bytes += sum(i.size for i in outcome.images)
            elif outcome.outcome == "skipped":
                result.skipped += 1
            else:
                result.failed.append(Failure(outcome.index, outcome.id, outcome.reason or ""))

    def on_done(self, entry: PlanEntry) -> Callable[[Future[RecordOutcome | None]], None]:
        """What to do when a record's task ends: settle it, or stop the run."""

        def done(future: Future[RecordOutcome | None]) -> None:
            exc = future.exception()
            if exc is None:
                outcome = future.result()
                if outcome is not None:  # None: staged, the writer settles it
                    self.settled(outcome)
            elif isinstance(exc, errors.FATAL):
                self.fatal.append(exc)
            else:
                log.debug("record %s failed", entry.index, exc_info=exc)
                self.settled(RecordOutcome(entry.index, entry.id, "failed", reason_of(exc)))

        return done

    def close(self, stopped: str | None, seconds: float) -> RunResult:
        """Write the manifest's summary and upload it; the result, failures in source order."""
        result = self.result
        result.stopped, result.seconds = stopped, seconds
        result.failed.sort(key=lambda f: f.index)
        self.progress.finish()
        self.journal.close(
            {
                "migrated": result.migrated,
                "skipped": result.skipped,
                "failed": len(result.failed),
                "stopped": stopped,
            }
        )
        return result


def apply_plan(
    store: Store,
    settings: Settings,
    plan: Plan,
    *,
    runner: Runner | None = None,
    progress: Progress | None = None,
    item_batch: int = TRANSACT_ITEMS,
    rate: WriteRate = UNLIMITED,
) -> RunResult:
    """Carry out `plan` for real. Raises the fatal error that stopped it, after the manifest.

    `item_batch` is how many items go in one conditional transaction (1: one
    PutItem per item); `rate` caps the items written a second.
    """
    began = time.monotonic()
    bucket, run_id = plan.source.bucket, plan.stamp.run_id
    store.require_table(plan.table)
    resumed = resume_cut_off(store, settings.state_dir, bucket, plan.table, run_id)
    if plan.count(Action.CREATE) == 0:
        # Nothing to write: no backup copy, no manifest, so re-runs cost nothing.
        seconds = time.monotonic() - began
        return replace(result_of_plan(plan), dry_run=False, resumed=resumed, seconds=seconds)
    backup = make_backup(store, plan.source, plan.digest, plan.stamp.migration_date)
    journal = Journal(store, bucket, run_id, settings.state_dir, run_header(plan, backup))
    return carry_out(
        store,
        plan,
        journal,
        _empty_result(plan, backup, journal, resumed),
        Pace(runner or make_runner(settings.workers), progress or NullProgress(), item_batch, rate),
        began=began,
    )


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


def carry_out(
    store: Store,
    plan: Plan,
    journal: Journal,
    result: RunResult,
    pace: Pace,
    *,
    began: float,
    again: str = "run `khpl-migrate migrate --apply` again: it resumes where this run stopped",
) -> RunResult:
    """The apply pass, once the backup is taken and the manifest begun: a whole run's, or
    one shard's (`sharded.py`). `again` is the fix an interrupted run suggests."""
    tally = Tally(result, journal, pace.progress)
    run_id = plan.stamp.run_id
    writer = ItemWriter(store, plan.table, run_id, tally.written, pace.batch, pace.rate)
    runner, stop = pace.runner, tally.stop
    # Ctrl-C or SIGTERM: the first takes no new record and lets those in flight finish,
    # the second stops them at their next step; either way the manifest is closed and
    # uploaded, naming every object written, before the bar stops and the counts print.
    with stop.handling():
        try:
            # The first frame, once Ctrl-C is handled: an operator who sees the bar can stop.
            tally.progress.start("Migrating", plan.count(Action.CREATE))
            _feed(store, plan, runner, writer, tally)
        except KeyboardInterrupt:
            stop.signal()  # raised where no handler could be set (not the main thread)
            stop.cut = True
        finally:
            runner.drain()
            if not tally.fatal:
                try:
                    if stop.now:
                        writer.abandon(STOPPED)
                    else:
                        writer.flush()
                except errors.FATAL as exc:
                    tally.fatal.append(exc)
            result = tally.close(_why_stopped(tally, plan), time.monotonic() - began)
    if tally.fatal:
        raise tally.fatal[0]
    if stop.early:
        raise errors.Interrupted(_interrupted(result, plan), again)
    return result


def _interrupted(result: RunResult, plan: Plan) -> str:
    """The counts of a run stopped by Ctrl-C: each record is in exactly one of them."""
    halted = sum(1 for f in result.failed if f.reason == STOPPED)
    failed = f"{len(result.failed)} failed" + (
        f" ({halted} of them stopped before their item was written)" if halted else ""
    )
    counted = result.migrated + result.skipped + len(result.failed)
    return (
        f"Interrupted: {result.migrated} records migrated, {result.skipped} skipped, {failed}, "
        f"{plan.total - counted} not reached; the manifest is "
        f"s3://{plan.source.bucket}/{result.manifest_key}"
    )


def run_header(plan: Plan, backup: str) -> dict[str, Any]:
    """The manifest's header of a run of `plan` whose backup is `backup`."""
    return migration_header(
        started=plan.stamp.migration_date,
        table=plan.table,
        source=plan.source,
        digest=plan.digest,
        backup_key=backup,
        planned={a.value: plan.count(a) for a in Action},
    )


def _empty_result(plan: Plan, backup: str, journal: Journal, resumed: list[str]) -> RunResult:
    return RunResult(
        run_id=plan.stamp.run_id,
        dry_run=False,
        total=plan.total,
        backup_key=backup,
        manifest_key=journal.key,
        manifest_path=str(journal.path),
        warnings=plan.warnings,
        resumed=resumed,
    )


def _feed(store: Store, plan: Plan, runner: Runner, writer: ItemWriter, tally: Tally) -> None:
    """The apply pass: read the source again (the same pinned version) and hand each
    record to be created to the runner; the plan's skips and failures are counted."""
    for index, record in iter_records(store, plan.source):
        if tally.stop.requested:
            tally.stop.cut = True
            return
        if tally.fatal:
            return
        entry = plan.entry(index)
        if entry is None:
            continue  # another shard's record
        tally.read += 1
        if entry.action is Action.CREATE:
            tally.flight.hand()
            runner.submit(_task(store, plan, entry, record, writer, tally), tally.on_done(entry))
        else:
            tally.planned(entry)


def _task(
    store: Store, plan: Plan, entry: PlanEntry, record: Any, writer: ItemWriter, tally: Tally
) -> Callable[[], RecordOutcome | None]:
    def task() -> RecordOutcome | None:
        stop = tally.stop
        if stop.now:
            tally.left()  # not started: nothing written, left for the next run
            return None
        staged = stage_record(store, plan, entry.index, record, halt=lambda: stop.now)
        if isinstance(staged, RecordOutcome):
            return staged
        if stop.now:
            return staged.outcome("failed", STOPPED)  # its images are named, not its item
        tally.staged(staged)
        writer.add(staged)  # the writer settles it once its item is written
        return None

    return task


def _why_stopped(tally: Tally, plan: Plan) -> str | None:
    if tally.fatal:
        return str(tally.fatal[0])
    if tally.stop.now:
        return "interrupted (Ctrl-C or SIGTERM twice: the records in flight were stopped)"
    if tally.stop.cut:
        return "interrupted (Ctrl-C or SIGTERM)"
    if tally.read != plan.total:
        return f"read {tally.read} records, the plan has {plan.total}"
    return None
