"""Carries out a migration plan: backup, images, items, manifest.

The run itself is the kernel's guarded run (`kernel/engine.py`: cut-off runs
closed, the backup taken and checked before the first write, the manifest, the
pool, Ctrl-C, fatal errors); this module is migrate's side of it: each record
to create has its images stored and its item handed to the `ItemWriter`
(`kernel/writer.py`: images never replace other bytes, items never replace
items); the plan's skips and failures are recorded as they are read; every
record's outcome is counted once, by the `Tally`, which also records it in the
manifest and moves the progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from khpl_migrate.aws import TRANSACT_ITEMS, Store
from khpl_migrate.core.ratelimit import UNLIMITED, WriteRate
from khpl_migrate.kernel.engine import Context, Pace, RunFacts, RunSpec, Task, guarded_run
from khpl_migrate.kernel.manifest import (
    Manifest,
    Outcome,
    RecordLine,
    RunHeader,
    SummaryLine,
    run_header,
)
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Runner, make_runner
from khpl_migrate.kernel.writer import STOPPED, ItemWriter, Staged, stage_record
from khpl_migrate.migrate.plan import Action, Plan
from khpl_migrate.settings import Settings

AGAIN = "run `khpl-migrate migrate --apply` again: it resumes where this run stopped"


@dataclass(frozen=True)
class Failure:
    index: int
    id: str | None
    reason: str


@dataclass
class RunResult(RunFacts):
    """The summary of a run (or of a dry run's plan): every record counted once."""

    run_id: str
    dry_run: bool
    total: int
    migrated: int = 0
    skipped: int = 0
    failed: list[Failure] = field(default_factory=list)
    images: int = 0
    image_bytes: int = 0
    warnings: list[tuple[int, str | None, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and self.stopped is None

    def count(self, line: RecordLine) -> None:
        """One record's outcome, counted once."""
        if line.outcome == Outcome.MIGRATED:
            self.migrated += 1
            self.images += len(line.images)
            self.image_bytes += sum(i.size for i in line.images)
        elif line.outcome == Outcome.SKIPPED:
            self.skipped += 1
        else:
            self.failed.append(Failure(line.index or 0, line.id, line.reason or ""))

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
            **self.facts_json(),
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
    result = RunResult(
        run_id=manifest.run_id,
        dry_run=False,
        total=sum(manifest.header.planned.values()) or len(manifest.records),
        backup_key=manifest.header.backup_key,
        manifest_key=manifest.key,
        seconds=seconds,
        stopped=manifest.stopped if manifest.summary else "shards still running",
    )
    for line in manifest.records:
        result.count(line)
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
    store.require_table(plan.table)
    runner = runner or make_runner(settings.workers)
    pace = Pace(runner, progress or NullProgress(), item_batch, rate)
    if plan.count(Action.CREATE) == 0:  # nothing to write: the plan's counts are the run's
        result = result_of_plan(plan)
        result.dry_run = False
    else:
        result = RunResult(run_id=plan.stamp.run_id, dry_run=False, total=plan.total)
        result.warnings = plan.warnings
    migrate_records(store, plan, run_spec(plan, settings), pace, result)
    return result


def run_spec(plan: Plan, settings: Settings, **shard: Any) -> RunSpec:
    """The guarded run of `plan`: a whole run's, or (`shard`: its part's header, snapshot,
    part and fix) one shard's."""
    spec = RunSpec(
        header=header_of(plan),
        source=plan.source,
        digest=plan.digest,
        records=plan.read,
        to_write=plan.count(Action.CREATE),
        phase="Migrating",
        again=AGAIN,
        state_dir=settings.state_dir,
    )
    return replace(spec, **shard)


def header_of(plan: Plan) -> RunHeader:
    """The manifest's header of a run of `plan` (its backup's key comes with the run)."""
    planned = {a.value: plan.count(a) for a in Action}
    return run_header("migrate", plan.stamp, plan.table, plan.source, plan.digest, planned)


def migrate_records(store: Store, plan: Plan, spec: RunSpec, pace: Pace, result: RunResult) -> None:
    """The guarded run of `plan` (a whole run's, or one shard's: `sharded.py`), its
    outcomes counted in `result`."""
    guarded_run(store, spec, lambda ctx: Migration(plan, ctx, result), pace, result)
    result.failed.sort(key=lambda f: f.index)


class Migration:
    """Migrate's side of the guarded run: each record to create is staged (its images
    stored) and its item handed to the writer; the Tally of every outcome."""

    def __init__(self, plan: Plan, ctx: Context, result: RunResult) -> None:
        self.plan, self.ctx, self.result = plan, ctx, result
        self._lock = threading.Lock()
        self.writer = ItemWriter(
            ctx.store, plan.table, plan.stamp.run_id, self._written, ctx.pace.batch, ctx.pace.rate
        )

    def take(self, index: int, record: Any) -> Task | None:
        entry = self.plan.entry(index)
        if entry is None:
            return None  # another shard's record
        if entry.action is not Action.CREATE:
            outcome = Outcome.SKIPPED if entry.action is Action.SKIP else Outcome.FAILED
            self._count(RecordLine(id=entry.id, index=index, outcome=outcome, reason=entry.reason))
            return None
        at = self.ctx.where.of(index)
        return Task(index, entry.id, lambda: self._stage(index, record, at))

    def rest(self) -> Iterable[Task]:
        return ()

    def _stage(self, index: int, record: Any, at: tuple[int, int] | None) -> bool:
        """Store the record's images, then hand its item to the writer (True: held there)."""
        stop, progress = self.ctx.stop, self.ctx.pace.progress
        staged = stage_record(
            self.ctx.store, self.plan, index, record, halt=lambda: stop.now, at=at
        )
        if isinstance(staged, RecordLine):  # it ended before its item: failed, or taken
            self._count(staged)
            progress.advance(
                images=len(staged.images),
                nbytes=sum(i.size for i in staged.images),
                failed=staged.outcome == Outcome.FAILED,
            )
            return False
        if stop.now:
            self._count(staged.line(Outcome.FAILED, STOPPED))  # its images named, not its item
            nbytes = sum(w.size for w in staged.writes)
            progress.advance(images=len(staged.writes), nbytes=nbytes, failed=True)
            return False
        # Its images are stored: the bar moves now, not when its batch is written.
        progress.advance(images=len(staged.writes), nbytes=sum(w.size for w in staged.writes))
        self.writer.add(staged)  # the writer ends it once its item is written
        return True

    def _written(self, staged: Staged, line: RecordLine) -> None:
        """The item writer's verdict on a staged record: only a failure is news to the bar."""
        self._count(line)
        self.ctx.flight.end()
        if line.outcome == Outcome.FAILED:
            self.ctx.pace.progress.advance(records=0, failed=True)

    def failed(self, task: Task, reason: str) -> None:
        self._count(RecordLine(id=task.id, index=task.index, reason=reason))
        self.ctx.pace.progress.advance(failed=True)

    def _count(self, line: RecordLine) -> None:
        self.ctx.manifest.write(line)
        with self._lock:
            self.result.count(line)

    def drain(self, now: bool) -> None:
        if now:
            self.writer.abandon(STOPPED)
        else:
            self.writer.flush()

    def summary(self, stopped: str | None) -> SummaryLine:
        result = self.result
        return SummaryLine(
            migrated=result.migrated,
            skipped=result.skipped,
            failed=len(result.failed),
            stopped=stopped,
        )

    def interrupted(self, manifest: str) -> str:
        """The counts of a run stopped by Ctrl-C: each record is in exactly one of them."""
        result = self.result
        halted = sum(1 for f in result.failed if f.reason == STOPPED)
        failed = f"{len(result.failed)} failed" + (
            f" ({halted} of them stopped before their item was written)" if halted else ""
        )
        counted = result.migrated + result.skipped + len(result.failed)
        return (
            f"Interrupted: {result.migrated} records migrated, {result.skipped} skipped, "
            f"{failed}, {self.plan.total - counted} not reached; the manifest is {manifest}"
        )
