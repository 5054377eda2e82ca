"""The dry run: one plan entry per source record, built without writing anything.

`build_plan` reads and validates the whole source (safety contract 3), runs
every record through the same pure `transform` the real run uses, and asks
DynamoDB which ids exist already (BatchGetItem). The result is a frozen `Plan`
that is either only displayed (dry run) or handed to `apply.apply_plan`, so
the dry run and the real run cannot drift apart. Building a plan
sends read requests only (safety contract 7).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from khpl_migrate.aws import BATCH_GET_KEYS, Store
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.shards import shard_of
from khpl_migrate.core.transform import FirstIds, RunStamp, describe_id, transform
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.clock import new_stamp
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.source import Digest, Source
from khpl_migrate.settings import Settings

NOT_SELECTED = "not selected by --only-ids"


class Action(StrEnum):
    CREATE = "create"
    SKIP = "skip"
    FAIL = "fail"


@dataclass(frozen=True)
class PlanEntry:
    """What will happen to the record at `index` of the source array, and why."""

    index: int
    id: str | None
    action: Action
    reason: str | None = None
    images: int = 0
    image_bytes: int = 0
    item_size: int | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "warnings": list(self.warnings),
            "index": self.index,
            "id": self.id,
            "action": self.action.value,
            "reason": self.reason,
            "images": self.images,
            "imageBytes": self.image_bytes,
            "itemSize": self.item_size,
        }


@dataclass(frozen=True)
class Plan:
    stamp: RunStamp
    started: datetime
    source: Source
    digest: Digest
    table: str
    entries: tuple[PlanEntry, ...]  # in source order; a shard's plan holds only its own
    shard: Shard | None = None
    read: int = 0  # records in the source, every shard's (the run must read as many)

    def entry(self, index: int) -> PlanEntry | None:
        """The entry of the record at `index` of the source; None: another shard's."""
        if self.shard is None:
            return self.entries[index]
        by_index = self.__dict__.get("_by_index")
        if by_index is None:
            by_index = {e.index: e for e in self.entries}
            object.__setattr__(self, "_by_index", by_index)
        return by_index.get(index)

    def count(self, action: Action) -> int:
        return sum(1 for entry in self.entries if entry.action is action)

    @property
    def total(self) -> int:
        return len(self.entries)

    @property
    def image_count(self) -> int:
        return sum(e.images for e in self.entries if e.action is Action.CREATE)

    @property
    def image_bytes(self) -> int:
        return sum(e.image_bytes for e in self.entries if e.action is Action.CREATE)

    @property
    def warnings(self) -> list[tuple[int, str | None, str]]:
        return [(e.index, e.id, w) for e in self.entries for w in e.warnings]

    @property
    def failures(self) -> list[PlanEntry]:
        return [e for e in self.entries if e.action is Action.FAIL]


@dataclass
class _Pending:
    """The entries so far, and the creates not yet checked against the table (BatchGetItem
    asks for up to 100 ids at once)."""

    store: Store
    table: str
    mine: str | None  # a shard's run id: an item this run wrote is still to create
    entries: list[PlanEntry] = field(default_factory=list)
    unchecked: list[int] = field(default_factory=list)  # positions of CREATE entries to check

    def add(self, entry: PlanEntry) -> None:
        self.entries.append(entry)
        if entry.action is Action.CREATE:
            self.unchecked.append(len(self.entries) - 1)
            if len(self.unchecked) == BATCH_GET_KEYS:
                self.check()

    def check(self) -> None:
        """The unchecked creates whose id is in the table already become skips."""
        if not self.unchecked:
            return
        ids = [str(self.entries[i].id) for i in self.unchecked]
        owners = self.store.owners(self.table, ids)
        for position in self.unchecked:
            entry = self.entries[position]
            if entry.id in owners and not (self.mine and owners[entry.id] == self.mine):
                self.entries[position] = replace(
                    entry, action=Action.SKIP, reason="already in the table", warnings=()
                )
        self.unchecked.clear()


@dataclass(frozen=True)
class Shard:
    """One shard of a sharded run: the records whose id hashes to `index`."""

    index: int
    of: int


def build_plan(
    store: Store,
    settings: Settings,
    *,
    progress: Progress | None = None,
    stamp: tuple[RunStamp, datetime] | None = None,
    only_ids: frozenset[str] | None = None,
    source: Source | None = None,
    shard: Shard | None = None,
) -> Plan:
    """Read and validate the whole source and decide every record's fate. Writes nothing.

    With `only_ids`, records whose id is not in it are skipped ("not selected"):
    how the ids a report flagged are fed back in (`migrate --only-ids FILE`).
    With `shard`, only the records of that shard are planned (from `source`, the
    run's snapshot); an item this very run wrote already (an earlier attempt of
    the shard, killed) stays to create: the apply pass finds it its own and
    records it, so that the run's manifest names it.
    """
    progress = progress or NullProgress()
    source = source or source_mod.open_source(store, settings)
    store.require_table(settings.table)
    run_stamp, started = stamp or new_stamp(mask_aadhaar=settings.mask_aadhaar)
    digest = Digest()
    pending = _Pending(store, settings.table, run_stamp.run_id if shard else None)
    ids = FirstIds("migrated")
    read = 0
    progress.start("Planning", source.info.size, by_bytes=True)
    try:  # the bar stops however the pass ends (Ctrl-C too): nothing redraws after
        for index, record in source_mod.iter_records(store, source, digest):
            read = index + 1
            if shard is not None and shard_of(describe_id(record), shard.of) != shard.index:
                progress.advance(records=0, position=digest.read)
                continue
            if only_ids is not None and describe_id(record) not in only_ids:
                entry = PlanEntry(index, describe_id(record), Action.SKIP, NOT_SELECTED)
            else:
                entry = _plan_one(index, record, run_stamp, ids)
            pending.add(entry)
            progress.advance(
                images=entry.images,
                nbytes=entry.image_bytes,
                failed=entry.action is Action.FAIL,
                position=digest.read,
            )
        pending.check()
    finally:
        progress.finish()
    entries = tuple(pending.entries)
    return Plan(run_stamp, started, source, digest, settings.table, entries, shard, read)


def _plan_one(index: int, record: Any, stamp: RunStamp, ids: FirstIds) -> PlanEntry:
    try:
        result = transform(record, stamp)
    except RecordError as exc:
        return PlanEntry(index, describe_id(record), Action.FAIL, str(exc))
    sizes = (len(result.images), result.image_bytes, result.item_size)
    try:
        ids.claim(result.id, index)
    except RecordError as exc:
        return PlanEntry(index, result.id, Action.FAIL, str(exc), *sizes)
    return PlanEntry(index, result.id, Action.CREATE, None, *sizes, result.warnings)
