"""Carries out a sync plan: the kernel's guarded run, with sync's record writer.

Nothing is written before the plan exists (`sync.plan.plan_sync`, reads only). The
run is `kernel/engine.guarded_run`, as migrate's is: a plan with nothing to
write writes no backup and no manifest; otherwise the source is backed up
(checked) before the first write, read again (the same pinned version; a short
read is said), and each record to write is handed to the `RecordWriter`
(`sync/write.py`) on the bounded pool; the manifest is uploaded however the run
ends, and Ctrl-C (or SIGTERM) stops it as it stops `migrate --apply`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.core.threeway import RecordState
from khpl_migrate.kernel.engine import Context, Pace, RunSpec, Task, guarded_run
from khpl_migrate.kernel.manifest import SummaryLine, run_header
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Runner, make_runner
from khpl_migrate.settings import Settings
from khpl_migrate.sync.model import SyncEntry, SyncPlan, SyncResult
from khpl_migrate.sync.write import RecordWriter

AGAIN = "run `khpl-migrate sync --apply` again: it judges every record afresh"


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
    result = SyncResult.of_plan(plan)
    result.dry_run = False
    work = plan.to_write()
    planned = {
        state.value: sum(1 for e in plan.entries if e.kind is state) for state in RecordState
    }
    spec = RunSpec(
        header=run_header("sync", plan.stamp, plan.table, plan.source, plan.digest, planned),
        source=plan.source,
        digest=plan.digest,
        records=plan.total,
        to_write=len(work),
        phase="Syncing",
        again=AGAIN,
        state_dir=settings.state_dir,
    )
    rate = rate or WriteRate(plan.options.max_write_rate)
    pace = Pace(runner or make_runner(settings.workers), progress or NullProgress(), rate=rate)
    guarded_run(store, spec, lambda ctx: Syncing(plan, work, ctx, result), pace, result)
    return result


class Syncing:
    """Sync's side of the guarded run: each record to write, judged again and written by
    the `RecordWriter`; then the items whose record left the source."""

    def __init__(self, plan: SyncPlan, work: list[SyncEntry], ctx: Context, result: SyncResult):
        self.result, self.work = result, work
        self.writer = RecordWriter(ctx, plan, result)
        self.at_index = {e.index: e for e in work if e.index is not None}
        self.where = ctx.where

    def take(self, index: int, record: Any) -> Task | None:
        entry = self.at_index.get(index)
        if entry is None:
            return None
        self.writer.located(entry.id, self.where.of(index))
        return self._task(entry, record)

    def rest(self) -> Iterable[Task]:
        return (self._task(e, None) for e in self.work if e.index is None)

    def _task(self, entry: SyncEntry, record: Any) -> Task:
        return Task(entry.index, entry.id, lambda: self.writer.sync(entry, record))

    def failed(self, task: Task, reason: str) -> None:
        self.writer.fail_id(str(task.id), task.index, reason)

    def drain(self, now: bool) -> None:
        self.writer.drain(now)

    def summary(self, stopped: str | None) -> SummaryLine:
        return SummaryLine(
            outcomes=self.result.tally(), failed=len(self.result.failed), stopped=stopped
        )

    def interrupted(self, manifest: str) -> str:
        result = self.result
        left = len(self.work) - len(set(result.outcomes) | set(result.failed))
        return (
            f"Interrupted: {len(result.outcomes)} records synced, {len(result.failed)} failed, "
            f"{left} not reached; the manifest is {manifest}"
        )
