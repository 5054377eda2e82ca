"""Carries out a plan: backup, images, items, manifest.

The order is the safety contract's (DESIGN.md): the backup is taken and checked
before the first write; a record's item is written only after all its images
are stored; images never replace other bytes (S3 If-None-Match) and items never
replace items (`attribute_not_exists(id)`). Records run on a bounded pool
(`BoundedRunner`) that tests can swap for a serial one; every record's outcome
goes to the run manifest as it happens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from khpl_migrate import errors
from khpl_migrate import source as source_mod
from khpl_migrate.journal import ImageWrite, Journal, RecordOutcome, manifest_key
from khpl_migrate.plan import Action, NullProgress, Plan, PlanEntry, Progress
from khpl_migrate.runner import Runner, make_runner
from khpl_migrate.settings import Settings
from khpl_migrate.store import ItemRejected, Store
from khpl_migrate.transform import RecordError, transform

log = logging.getLogger(__name__)

# These stop the whole run: retrying the next record would fail the same way.
FATAL = (
    errors.CredentialsError,
    errors.EndpointError,
    errors.AccessDenied,
    errors.BucketMissing,
    errors.TableMissing,
    errors.SourceChanged,
)


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
    )


def apply_plan(
    store: Store,
    settings: Settings,
    plan: Plan,
    *,
    runner: Runner | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Carry out `plan` for real. Raises the fatal error that stopped it, after the manifest."""
    progress = progress or NullProgress()
    began = time.monotonic()
    source = plan.source
    store.require_table(plan.table)
    if plan.count(Action.CREATE) == 0:
        # Nothing to write: no backup copy, no manifest, so re-runs cost nothing.
        result = result_of_plan(plan)
        result.dry_run = False
        result.seconds = time.monotonic() - began
        return result
    backup = source_mod.make_backup(store, source, plan.digest, plan.stamp.migration_date)
    journal = Journal(
        store,
        source.bucket,
        plan.stamp.run_id,
        settings.state_dir,
        {
            "startedAt": plan.stamp.migration_date,
            "table": plan.table,
            "bucket": source.bucket,
            "source": {
                "key": source.info.key,
                "etag": source.info.etag,
                "versionId": source.info.version_id,
                "size": plan.digest.size,
                "sha256": plan.digest.sha256,
            },
            "backupKey": backup,
            "planned": {a.value: plan.count(a) for a in Action},
        },
    )
    result = RunResult(
        run_id=plan.stamp.run_id,
        dry_run=False,
        total=plan.total,
        backup_key=backup,
        manifest_key=manifest_key(plan.stamp.run_id),
        manifest_path=str(journal.path),
    )
    lock = threading.Lock()
    fatal: list[errors.KhplError] = []

    def settle(outcome: RecordOutcome) -> None:
        journal.record(outcome)
        with lock:
            if outcome.outcome == "migrated":
                result.migrated += 1
                result.images += len(outcome.images)
                result.image_bytes += sum(i.size for i in outcome.images)
            elif outcome.outcome == "skipped":
                result.skipped += 1
            else:
                result.failed.append(Failure(outcome.index, outcome.id, outcome.reason or ""))
        progress.advance(
            images=len(outcome.images),
            nbytes=sum(i.size for i in outcome.images),
            failed=outcome.outcome == "failed",
        )

    def on_done(entry: PlanEntry) -> Callable[[Future[RecordOutcome]], None]:
        def done(future: Future[RecordOutcome]) -> None:
            exc = future.exception()
            if exc is None:
                settle(future.result())
            elif isinstance(exc, FATAL):
                fatal.append(exc)
            else:
                log.debug("record %s failed", entry.index, exc_info=exc)
                settle(RecordOutcome(entry.index, entry.id, "failed", _reason(exc)))

        return done

    progress.start("Migrating", plan.count(Action.CREATE))
    runner = runner or make_runner(settings.workers)
    seen = 0
    try:
        for index, record in source_mod.iter_records(store, source):
            if fatal:
                break
            seen += 1
            entry = plan.entries[index]
            if entry.action is Action.SKIP:
                journal.record(RecordOutcome(index, entry.id, "skipped", entry.reason))
                with lock:
                    result.skipped += 1
            elif entry.action is Action.FAIL:
                journal.record(RecordOutcome(index, entry.id, "failed", entry.reason))
                with lock:
                    result.failed.append(Failure(index, entry.id, entry.reason or ""))
            else:
                runner.submit(_task(store, plan, entry, record), on_done(entry))
    finally:
        runner.drain()
        progress.finish()
        result.seconds = time.monotonic() - began
        if fatal:
            result.stopped = str(fatal[0])
        elif seen != plan.total:
            result.stopped = f"read {seen} records, the plan has {plan.total}"
        journal.close(
            {
                "migrated": result.migrated,
                "skipped": result.skipped,
                "failed": len(result.failed),
                "stopped": result.stopped,
            }
        )
    result.failed.sort(key=lambda f: f.index)
    if fatal:
        raise fatal[0]
    return result


def _reason(exc: BaseException) -> str:
    if isinstance(exc, errors.KhplError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _task(store: Store, plan: Plan, entry: PlanEntry, record: Any) -> Callable[[], RecordOutcome]:
    return lambda: migrate_record(store, plan, entry, record)


def migrate_record(store: Store, plan: Plan, entry: PlanEntry, record: Any) -> RecordOutcome:
    """Images first, then the item, each without replacing anything."""
    try:
        result = transform(record, plan.stamp)
    except RecordError as exc:  # the plan said create; only a changed source gets here
        return RecordOutcome(entry.index, entry.id, "failed", str(exc))
    bucket = plan.source.bucket
    writes: list[ImageWrite] = []
    for image in result.images:
        outcome = store.put_object_if_absent(bucket, image.key, image.data, image.mime)
        if outcome == "conflict":
            return RecordOutcome(
                entry.index,
                result.id,
                "failed",
                f"image s3://{bucket}/{image.key} exists with other bytes; not overwritten",
                images=tuple(writes),
            )
        writes.append(ImageWrite(image.key, image.sha256, image.size, outcome == "written"))
    try:
        written = store.put_item_if_absent(plan.table, result.item)
    except ItemRejected as exc:
        return RecordOutcome(
            entry.index,
            result.id,
            "failed",
            f"DynamoDB refused the item: {exc}",
            images=tuple(writes),
        )
    if not written:
        return RecordOutcome(
            entry.index,
            result.id,
            "skipped",
            "an item with this id appeared in the table during the run; left untouched",
            images=tuple(writes),
        )
    return RecordOutcome(
        entry.index, result.id, "migrated", item_written=True, images=tuple(writes)
    )
