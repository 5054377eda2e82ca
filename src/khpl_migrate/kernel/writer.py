"""One record's writes: its images first (each never replacing anything), then its item.

`stage_record` stores a record's images with S3's conditional write and hands
back a `Staged` record: only its item is left to write (safety contract 5: an
item is written only after all its images are stored). `ItemWriter` writes
staged items in conditional transactions of up to 100 and ends each record as
migrated, skipped (an item appeared meanwhile) or failed. Migrate writes every
record this way; sync writes the records new in the source this way too, so
both recognise their own write answered late and retried (`put_new_item`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from khpl_migrate.aws import TRANSACT_BYTES, TRANSACT_ITEMS, ItemRejected, Store
from khpl_migrate.core import errors
from khpl_migrate.core.errors import RecordError, reason_of
from khpl_migrate.core.layout import image_version_key
from khpl_migrate.core.ratelimit import UNLIMITED, WriteRate
from khpl_migrate.core.transform import RunStamp, describe_id, extension, transform
from khpl_migrate.kernel.manifest import ImageLine, Outcome, RecordLine
from khpl_migrate.kernel.source import Source

# The writer's verdict on a staged record: the record, and its line.
Ended = Callable[["Staged", RecordLine], None]
# A record a second Ctrl-C stopped after some of its images were stored: its line names
# them (so rollback and the next run know them); the next run migrates it.
STOPPED = "stopped by Ctrl-C before its item was written; the next run migrates it"
APPEARED = "an item with this id appeared in the table during the run; left untouched"


@dataclass(frozen=True)
class Staged:
    """A record whose images are all stored: only its item is left to write.

    It holds the item, not the image bytes, so a waiting batch stays small.
    """

    index: int  # in the source
    id: str
    item: dict[str, Any]
    item_size: int
    writes: tuple[ImageLine, ...]
    at: tuple[int, int] | None = None  # where the record lies in the source

    def line(self, outcome: Outcome = Outcome.MIGRATED, reason: str | None = None) -> RecordLine:
        return RecordLine(
            id=self.id,
            index=self.index,
            outcome=outcome,
            reason=reason,
            item_written=outcome == Outcome.MIGRATED,
            images=self.writes,
            at=self.at,
        )


class Target(Protocol):
    """Where a run writes: a migration's plan, or a sync's, which migrates new records too."""

    @property
    def stamp(self) -> RunStamp: ...

    @property
    def source(self) -> Source: ...

    @property
    def table(self) -> str: ...


def stage_record(
    store: Store,
    plan: Target,
    index: int,
    record: Any,
    halt: Callable[[], bool] = lambda: False,
    at: tuple[int, int] | None = None,
) -> Staged | RecordLine:
    """Transform and upload the images, each without replacing anything. When `halt`
    says so between two images, the record stops there, failed, naming those stored."""
    try:
        result = transform(record, plan.stamp)
    except RecordError as exc:  # the plan said create; only a changed source gets here
        return RecordLine(id=describe_id(record), index=index, reason=str(exc))
    bucket = plan.source.bucket
    writes: list[ImageLine] = []
    item = result.item
    for image in result.images:
        if writes and halt():
            return RecordLine(id=result.id, index=index, reason=STOPPED, images=tuple(writes))
        key = image.key
        outcome = store.put_object_if_absent(bucket, key, image.data, image.mime, plan.stamp.run_id)
        if outcome == "conflict":
            if store.get_item(plan.table, result.id) is not None:
                # The app registered this id, with its own images, during the run.
                return RecordLine(
                    id=result.id,
                    index=index,
                    outcome=Outcome.SKIPPED,
                    reason="an item with this id (and its own images) appeared during the run; "
                    "left untouched",
                    images=tuple(writes),
                )
            # The guide's key holds bytes the tool did not write there (the app's, or a
            # record deleted and re-added): the bytes get a key of their own, from their
            # content, as sync's replaced images do, instead of failing on every run.
            key = image_version_key(result.id, image.name, extension(image.mime), image.sha256)
            outcome = store.put_object_if_absent(
                bucket, key, image.data, image.mime, plan.stamp.run_id
            )
            if outcome == "conflict":
                return RecordLine(
                    id=result.id,
                    index=index,
                    reason=f"image s3://{bucket}/{image.key} and s3://{bucket}/{key} both hold "
                    "other bytes; neither is overwritten. Fix: check which of them is wanted, move "
                    "the other out of registration-images/ (it is not the tool's), run again",
                    images=tuple(writes),
                )
            item = _with_key(item, image.name, key)
        writes.append(ImageLine(key, image.sha256, image.size, outcome == "written"))
    return Staged(index, result.id, item, result.item_size, tuple(writes), at)


def _with_key(item: dict[str, Any], name: str, key: str) -> dict[str, Any]:
    refs = dict(item["imageUploadResults"])
    refs[name] = {**refs[name], "s3Key": key}
    return {**item, "imageUploadResults": refs}


class ItemWriter:
    """Writes staged items, up to `batch` at a time in one conditional transaction.

    Measured (bench/transact_vs_put.py, 20 ms per exchange): 300 conditional
    writes take 1.0 s as 16 workers of PutItem and 0.3 s as TransactWriteItems
    of 100. Every put keeps `attribute_not_exists(id)`; a cancelled transaction
    (one item exists, or DynamoDB refused one) writes nothing, and its items are
    then put one by one to give each its own outcome. Items only: a record's
    images are stored before its item joins a batch (safety contract 5).
    """

    def __init__(
        self,
        store: Store,
        table: str,
        run_id: str,
        ended: Ended,
        batch: int = TRANSACT_ITEMS,
        rate: WriteRate = UNLIMITED,
    ) -> None:
        self._store = store
        self._rate = rate  # --max-write-rate: items a second
        self._table = table
        self._run_id = run_id
        self._ended = ended
        self._batch = max(1, min(batch, TRANSACT_ITEMS))
        self._lock = threading.Lock()
        self._pending: list[Staged] = []
        self._bytes = 0

    def add(self, staged: Staged) -> None:
        with self._lock:
            self._pending.append(staged)
            self._bytes += staged.item_size
            full = len(self._pending) >= self._batch or self._bytes >= TRANSACT_BYTES
            ready = self._take() if full else []
        if ready:
            self._write(ready)

    def flush(self) -> None:
        with self._lock:
            ready = self._take()
        if ready:
            self._write(ready)

    def abandon(self, reason: str) -> None:
        """End the waiting records as failed without writing their items (a second
        Ctrl-C): their lines still name the images they stored."""
        with self._lock:
            waiting = self._take()
        for staged in waiting:
            self._ended(staged, staged.line(Outcome.FAILED, reason))

    def _take(self) -> list[Staged]:
        ready, self._pending, self._bytes = self._pending, [], 0
        return ready

    def _write(self, batch: list[Staged]) -> None:
        self._rate.acquire(len(batch))
        try:
            items = [s.item for s in batch]
            if len(batch) > 1 and self._store.transact_put_if_absent(self._table, items):
                for staged in batch:
                    self._ended(staged, staged.line())
                return
            for staged in batch:
                self._ended(staged, self._put_one(staged))
        except errors.FATAL:
            raise
        except Exception as exc:  # end the whole batch: no record may go unaccounted
            for staged in batch:
                self._ended(staged, staged.line(Outcome.FAILED, reason_of(exc)))

    def _put_one(self, staged: Staged) -> RecordLine:
        try:
            written = put_new_item(self._store, self._table, staged.item, self._run_id)
        except ItemRejected as exc:
            return staged.line(Outcome.FAILED, f"DynamoDB refused the item: {exc}")
        if written:
            return staged.line()
        return staged.line(Outcome.SKIPPED, APPEARED)


def put_new_item(store: Store, table: str, item: dict[str, Any], run_id: str) -> bool:
    """Write a new item, never over one; True when it is this run's write. An item with
    this id that names this run is the run's own write, done while its answer was lost
    and the request retried (migrate and sync both write new records this way)."""
    if store.put_item_if_absent(table, item):
        return True
    existing = store.get_item(table, str(item["id"]))
    return existing is not None and existing.get("migrationRunId") == run_id
