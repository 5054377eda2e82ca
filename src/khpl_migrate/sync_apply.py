"""Carries out a sync plan: backup, manifest, and each record to write handed to the pool.

Nothing is written before the plan exists (`sync_plan.plan_sync`, reads only);
a plan with nothing to write writes no backup and no manifest. Otherwise the
source is backed up (checked) before the first write, read again (the same
pinned version), and each record to write is handed to a `RecordWriter`
(`sync_write.py`) on the bounded pool; the manifest is uploaded however the
run ends.
"""

from __future__ import annotations

import time
from typing import Any

from khpl_migrate import errors
from khpl_migrate.aws import Store
from khpl_migrate.backups import make_backup
from khpl_migrate.journal import Journal, migration_header, resume_cut_off
from khpl_migrate.progress import NullProgress, Progress
from khpl_migrate.ratelimit import WriteRate
from khpl_migrate.runner import Runner, make_runner
from khpl_migrate.settings import Settings
from khpl_migrate.source import iter_records
from khpl_migrate.sync import SyncEntry, SyncPlan, SyncResult
from khpl_migrate.sync_write import RecordWriter
from khpl_migrate.threeway import Kind


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
    progress.start("Syncing", len(work))
    runner = runner or make_runner(settings.workers)
    interrupted = False
    try:
        _feed(store, plan, list(work.values()), runner, executor, progress)
    except KeyboardInterrupt:
        interrupted = True  # Ctrl-C or SIGTERM: no new record; those in flight finish
    finally:
        runner.drain()
        progress.finish()
        result.seconds = time.monotonic() - began
        if executor.fatal:
            result.stopped = str(executor.fatal[0])
        elif interrupted:
            result.stopped = "interrupted (Ctrl-C or SIGTERM)"
        journal.close(
            {"outcomes": result.tally(), "failed": len(result.failed), "stopped": result.stopped}
        )
    if executor.fatal:
        raise executor.fatal[0]
    if interrupted:
        raise errors.Interrupted(
            f"Interrupted: {len(result.outcomes)} records synced before the stop; the manifest "
            f"is s3://{bucket}/{journal.key}",
            "run `khpl-migrate sync --apply` again: it judges every record afresh",
        )
    return result


def _feed(
    store: Store,
    plan: SyncPlan,
    work: list[SyncEntry],
    runner: Runner,
    executor: RecordWriter,
    progress: Progress,
) -> None:
    """Read the source again (the same pinned version) and hand each record to write to the
    runner; then the items whose record left the source."""
    at_index = {e.index: e for e in work if e.index is not None}
    for index, record in iter_records(store, plan.source):
        if executor.fatal:
            return
        if index in at_index:
            entry = at_index[index]
            runner.submit(executor.task(entry, record), executor.done(entry, progress))
    for entry in work:
        if entry.index is None and not executor.fatal:
            runner.submit(executor.task(entry, None), executor.done(entry, progress))


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
