"""Carries out a sync plan: backup, manifest, and each record to write handed to the pool.

Nothing is written before the plan exists (`sync_plan.plan_sync`, reads only);
a plan with nothing to write writes no backup and no manifest. Otherwise the
source is backed up (checked) before the first write, read again (the same
pinned version), and each record to write is handed to a `RecordWriter`
(`sync_write.py`) on the bounded pool; the manifest is uploaded however the
run ends. Ctrl-C (or SIGTERM) stops it as `migrate --apply` stops (`runner.Stop`):
the first lets the records in flight finish, the second leaves those not started.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.core.threeway import Kind
from khpl_migrate.kernel.backups import make_backup
from khpl_migrate.kernel.manifest import Journal, migration_header, resume_cut_off
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Flight, Runner, Stop, make_runner
from khpl_migrate.kernel.source import iter_records
from khpl_migrate.settings import Settings
from khpl_migrate.sync.model import SyncEntry, SyncPlan, SyncResult
from khpl_migrate.sync.write import RecordWriter


def show_sync(plan: SyncPlan) -> SyncResult:
    """The display-only executor: what `apply_sync` would do, nothing done."""
    return SyncResult.of_plan(plan)


def apply_sync(
    store: Store,
    settings: Settings,
    plan: SyncPlan,
    *,
    runner: Runner | None = None,
    progress: Progress | None = None,
    rate: WriteRate | None = None,
) -> SyncResult:
    """Carry out `plan`. Nothing to write: no backup and no manifest (a re-run only reads).
    `rate` caps the item writes (default: the plan's --max-write-rate)."""
    began = time.monotonic()
    bucket, run_id = plan.source.bucket, plan.stamp.run_id
    result = SyncResult.of_plan(plan)
    result.dry_run = False
    result.resumed = resume_cut_off(store, settings.state_dir, bucket, plan.table, run_id)
    work = {e.id: e for e in plan.to_write()}
    if not work:
        result.seconds = time.monotonic() - began
        return result
    backup = make_backup(store, plan.source, plan.digest, plan.stamp.migration_date)
    journal = Journal(store, bucket, run_id, settings.state_dir, _header(plan, backup))
    result.backup_key, result.manifest_key = backup, journal.key
    result.manifest_path = str(journal.path)
    executor = RecordWriter(store, plan, journal, result, rate)
    progress = progress or NullProgress()
    runner = runner or make_runner(settings.workers)
    flight = Flight()
    stop = Stop(flight.count, progress.say)
    pool = _Pool(runner, executor, progress, flight, stop)
    with stop.handling():  # the manifest is closed and uploaded whatever Ctrl-C does
        try:
            progress.start("Syncing", len(work))  # once Ctrl-C is handled
            _feed(store, plan, list(work.values()), pool)
        except KeyboardInterrupt:
            stop.signal()  # raised where no handler could be set (not the main thread)
            stop.cut = True
        finally:
            runner.drain()
            progress.finish()
            result.seconds = time.monotonic() - began
            if executor.fatal:
                result.stopped = str(executor.fatal[0])
            elif stop.early:
                twice = " twice: the records not started were left" if stop.now else ""
                result.stopped = f"interrupted (Ctrl-C or SIGTERM{twice})"
            journal.close(
                {
                    "outcomes": result.tally(),
                    "failed": len(result.failed),
                    "stopped": result.stopped,
                }
            )
    if executor.fatal:
        raise executor.fatal[0]
    if stop.early:
        raise errors.Interrupted(
            f"Interrupted: {len(result.outcomes)} records synced, {len(result.failed)} failed, "
            f"{len(work) - flight.handed + flight.left} not reached; the "
            f"manifest is s3://{bucket}/{journal.key}",
            "run `khpl-migrate sync --apply` again: it judges every record afresh",
        )
    return result


class _Pool:
    """Hands each record to write to the runner, counting those in flight for Ctrl-C; after
    a second Ctrl-C a record not started is left (nothing written, no line)."""

    def __init__(
        self, runner: Runner, executor: RecordWriter, progress: Progress, flight: Flight, stop: Stop
    ) -> None:
        self.runner, self.executor, self.progress = runner, executor, progress
        self.flight, self.stop = flight, stop

    def submit(self, entry: SyncEntry, record: Any) -> None:
        work, done = self.executor.task(entry, record), self.executor.done(entry, self.progress)

        def task() -> None:
            if self.stop.now:
                self.flight.leave()  # nothing written, no line: the next sync does it
                return
            work()

        def ended(future: Future[None]) -> None:
            try:
                done(future)
            finally:
                self.flight.end()

        self.flight.hand()
        self.runner.submit(task, ended)

    def stopping(self) -> bool:
        """Take no more records: a fatal error, or Ctrl-C (then the run is cut short)."""
        if self.stop.requested:
            self.stop.cut = True
        return bool(self.executor.fatal) or self.stop.requested


def _feed(store: Store, plan: SyncPlan, work: list[SyncEntry], pool: _Pool) -> None:
    """Read the source again (the same pinned version) and hand each record to write to the
    runner; then the items whose record left the source. A Ctrl-C after the last record
    was handed cuts nothing short."""
    at_index = {e.index: e for e in work if e.index is not None}
    for index, record in iter_records(store, plan.source):
        if pool.executor.fatal:
            return
        if index in at_index:
            if pool.stopping():
                return
            pool.submit(at_index[index], record)
    for entry in (e for e in work if e.index is None):
        if pool.stopping():
            return
        pool.submit(entry, None)


def _header(plan: SyncPlan, backup: str) -> dict[str, Any]:
    return migration_header(
        kind="sync",
        started=plan.stamp.migration_date,
        table=plan.table,
        source=plan.source,
        digest=plan.digest,
        backup_key=backup,
        planned={kind.value: sum(1 for e in plan.entries if e.kind is kind) for kind in Kind},
    )
