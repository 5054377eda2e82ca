"""`khpl-migrate sync`: the source's edits carried over to the table, field by field.

The app keeps running on `registrations.json` after `migrate --apply` until it
is switched to DynamoDB-only mode, and admins keep editing on both sides. Sync
closes that window without losing either side's edit: for every record it
compares the baseline (`baseline.py`), the source now and the item now unit by
unit (`threeway.py`), carries over what only the source changed, keeps what
only the app changed, and writes nothing where both changed differently (a
conflict, reported until the two sides agree or the operator settles it with
`--take source|table` for listed ids).

Like `migrate`, it plans first, reading only (`plan_sync`); the plan is either
shown (dry run) or carried out by `sync_apply.apply_sync`, so the two cannot
drift apart. Field values are never shown, only field names: they are personal
data.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from khpl_migrate import source as source_mod
from khpl_migrate.aws import ObjectInfo, Store
from khpl_migrate.baseline import Baselines, History, history, read_baselines
from khpl_migrate.errors import RecordError
from khpl_migrate.plan import describe_id, new_stamp
from khpl_migrate.progress import NullProgress, Progress
from khpl_migrate.runner import Runner, make_runner
from khpl_migrate.settings import Settings
from khpl_migrate.source import Digest, Source
from khpl_migrate.threeway import CONFLICTS, Baseline, Kind, Side, Verdict, judge
from khpl_migrate.transform import FIELD_RUNS, IMAGE_RUNS, RunStamp, record_id, transform
from khpl_migrate.units import Unit, Units, item_units, label, record_units, references, runs_of

Take = Literal["source", "table"]
# An item's attributes that sync reads besides its units: who wrote what, and its images.
_SLIM = ("id", "migrationRunId", FIELD_RUNS, IMAGE_RUNS, "maskedFields", "imageUploadResults")


@dataclass(frozen=True)
class SyncOptions:
    delete: bool = False  # delete items whose record was deleted in the source
    max_delete: float = 10.0  # ... but refuse all deletions above this share of the table (%)
    repair_images: bool = False  # put back the source's bytes of a damaged image object
    take: Take | None = None  # settle the conflicts of the listed ids this way
    only_ids: frozenset[str] | None = None
    mask_aadhaar: bool = False  # for records new in the source, as migrate --mask-aadhaar


class Deletion(StrEnum):
    PLANNED = "to delete"
    WAITING = "not deleted: pass --delete"
    REFUSED = "not deleted: more than --max-delete of the table"


@dataclass(frozen=True)
class Damage:
    """An image object that does not hold what its reference says."""

    name: str
    key: str
    problem: str
    etag: str | None  # the version that was checked (None: the object is missing)
    repairable: bool  # the source still has the reference's bytes


@dataclass(frozen=True)
class SyncEntry:
    """One record's verdict, and what sync does about it."""

    id: str
    index: int | None  # in the source; None for an item whose record left the source
    kind: Kind
    sides: Mapping[Unit, Side] = field(default_factory=dict)
    reason: str | None = None
    damaged: tuple[Damage, ...] = ()
    deletion: Deletion | None = None
    selected: bool = True  # False: not in --only-ids

    def units(self, *wanted: Side) -> list[Unit]:
        return sorted(unit for unit, found in self.sides.items() if found in wanted)

    @property
    def conflicts(self) -> list[Unit]:
        return self.units(*CONFLICTS)

    def writes(self, options: SyncOptions) -> bool:
        """Whether applying the plan writes anything for this record."""
        if not self.selected:
            return False
        repair = options.repair_images and any(d.repairable for d in self.damaged)
        settled = options.take is not None and self.kind in _SETTLED_BY_TAKE
        return (
            self.kind in (Kind.NEW, Kind.UPDATE)
            or self.deletion is Deletion.PLANNED
            or settled
            or repair
        )

    def problem(self, repair: bool = False) -> bool:
        """Not in step, and not something sync settles by itself: a conflict, a deletion
        waiting or refused, a record it cannot judge, damage it will not repair."""
        if not self.selected:
            return not self.in_step
        if self.conflicts or self.kind in _PROBLEMS:
            return True
        if self.deletion in (Deletion.WAITING, Deletion.REFUSED):
            return True
        return any(not (repair and d.repairable) for d in self.damaged)

    @property
    def in_step(self) -> bool:
        """Nothing is left to do and nothing to look at for this record."""
        return (
            self.kind in _IN_STEP
            and not self.conflicts
            and not self.damaged
            and self.deletion is None
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "index": self.index,
            "kind": self.kind.value,
            "fromSource": [label(u) for u in self.units(Side.SOURCE)],
            "keptFromTable": [label(u) for u in self.units(Side.TABLE)],
            "agreed": [label(u) for u in self.units(Side.AGREED)],
            "conflicts": [label(u) for u in self.conflicts],
            "damaged": [
                {"image": d.name, "key": d.key, "problem": d.problem} for d in self.damaged
            ],
            "deletion": self.deletion.value if self.deletion else None,
            "selected": self.selected,
            "reason": self.reason,
        }


_IN_STEP = frozenset({Kind.IN_STEP, Kind.APP_EQUAL, Kind.DELETED_IN_TABLE})
_PROBLEMS = frozenset({Kind.UNUSABLE, Kind.NO_BASELINE, Kind.APP_CONFLICT, Kind.DELETE_CONFLICT})
_SETTLED_BY_TAKE = frozenset({Kind.CONFLICT, Kind.UPDATE, Kind.APP_CONFLICT, Kind.DELETE_CONFLICT})


@dataclass(frozen=True)
class SyncPlan:
    stamp: RunStamp
    started: datetime
    source: Source
    digest: Digest
    table: str
    options: SyncOptions
    entries: tuple[SyncEntry, ...]
    baselines: Baselines
    past: History
    tool_items: int  # items a run of the tool created: the base of --max-delete

    @property
    def total(self) -> int:
        return sum(1 for e in self.entries if e.index is not None)

    def to_write(self) -> list[SyncEntry]:
        return [e for e in self.entries if e.writes(self.options)]


def plan_sync(
    store: Store,
    settings: Settings,
    options: SyncOptions | None = None,
    *,
    runner: Runner | None = None,
    progress: Progress | None = None,
) -> SyncPlan:
    """Read the source, the table and the backups, and judge every record. Writes nothing."""
    options = options or SyncOptions()
    progress = progress or NullProgress()
    source = source_mod.open_source(store, settings)
    store.require_table(settings.table)
    stamp, started = new_stamp(mask_aadhaar=options.mask_aadhaar)
    items = {
        str(item["id"]): seen_item(item) for item in store.scan(settings.table, consistent=True)
    }
    digest = Digest()
    read = _read_source(store, source, digest, items, options, progress)
    past = history(store, source.bucket, settings.state_dir)
    baselines = read_baselines(
        store,
        settings,
        _needs(items),
        past,
        masked={rid for rid, seen in items.items() if seen.masked},
    )
    damage = _check_images(
        store, source.bucket, items, read, runner or make_runner(settings.workers)
    )
    judged = [
        _entry(rid, read, items, baselines, past, damage.get(rid, ()))
        for rid in [*read.order, *(rid for rid in items if rid not in read.units)]
    ]
    entries = [e for e in judged if e is not None] + read.unusable
    entries = _select(sorted(entries, key=_order), options)
    tool_items = sum(1 for seen in items.values() if seen.tool)
    entries = _guard_deletions(entries, options, tool_items)
    return SyncPlan(
        stamp,
        started,
        source,
        digest,
        settings.table,
        options,
        tuple(entries),
        baselines,
        past,
        tool_items,
    )


class ItemView:
    """What sync keeps of an item: its units, and who wrote what (no other values)."""

    def __init__(self, item: Mapping[str, Any]) -> None:
        self.units = item_units(item)
        self.slim = {k: item[k] for k in _SLIM if k in item}

    @property
    def tool(self) -> bool:
        return "migrationRunId" in self.slim

    @property
    def tracked(self) -> bool:
        """A run of the tool wrote some of it: it has a baseline, whole or in part."""
        return self.tool or FIELD_RUNS in self.slim or IMAGE_RUNS in self.slim

    @property
    def masked(self) -> bool:
        return bool(self.slim.get("maskedFields"))


def seen_item(item: Mapping[str, Any]) -> ItemView:
    return ItemView(item)


@dataclass
class _Read:
    """The source, as sync needs it: units and images of each record, in order."""

    units: dict[str, Units] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> name -> sha256
    order: list[str] = field(default_factory=list)
    unusable: list[SyncEntry] = field(default_factory=list)


def _read_source(
    store: Store,
    source: Source,
    digest: Digest,
    items: Mapping[str, ItemView],
    options: SyncOptions,
    progress: Progress,
) -> _Read:
    """Read and validate the whole source (nothing is written before), keeping digests only."""
    read = _Read()
    progress.start("Reading the source", source.info.size, by_bytes=True)
    for index, record in source_mod.iter_records(store, source, digest):
        progress.advance(position=digest.read)
        try:
            rid = record_id(record)
            if rid in read.units:
                first = read.index[rid]
                raise RecordError(
                    f"duplicate id: the record at index {first} has the same id "
                    "and is the one synced"
                )
            seen = items.get(rid)
            masked = seen.masked if seen is not None else options.mask_aadhaar
            done = transform(record, RunStamp("sync", "", mask_aadhaar=masked))
        except RecordError as exc:
            read.unusable.append(
                SyncEntry(describe_id(record) or f"#{index}", index, Kind.UNUSABLE, reason=str(exc))
            )
            continue
        read.units[rid] = record_units(done)
        read.index[rid] = index
        read.images[rid] = {image.name: image.sha256 for image in done.images}
        read.order.append(rid)
    progress.finish()
    return read


def _needs(items: Mapping[str, ItemView]) -> dict[str, set[str]]:
    """Which ids each run's backup must give: every tracked item needs its runs' copies."""
    needs: dict[str, set[str]] = {}
    for rid, seen in items.items():
        if seen.tracked:
            for run in runs_of(seen.slim):
                needs.setdefault(run, set()).add(rid)
    return needs


def _check_images(
    store: Store,
    bucket: str,
    items: Mapping[str, ItemView],
    read: _Read,
    runner: Runner,
) -> dict[str, tuple[Damage, ...]]:
    """Every referenced image object: does it hold the bytes and type its reference says?"""
    found: dict[str, list[Damage]] = {}

    def check(rid: str, name: str, entry: dict[str, Any]) -> Callable[[], Damage | None]:
        def task() -> Damage | None:
            problem, etag = _object_problem(store, bucket, entry)
            if problem is None:
                return None
            repairable = read.images.get(rid, {}).get(name) == entry.get("sha256")
            return Damage(name, str(entry["s3Key"]), problem, etag, repairable)

        return task

    def done_for(rid: str) -> Callable[[Future[Damage | None]], None]:
        def done(future: Future[Damage | None]) -> None:
            damage = future.result()
            if damage is not None:
                found.setdefault(rid, []).append(damage)

        return done

    try:
        for rid, seen in items.items():
            for name, entry in references(seen.slim).items():
                runner.submit(check(rid, name, entry), done_for(rid))
    finally:
        runner.drain()
    return {rid: tuple(sorted(d, key=lambda x: x.name)) for rid, d in found.items()}


def _object_problem(
    store: Store, bucket: str, entry: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """What is wrong with a referenced image object (None: nothing), and the ETag checked."""
    key = str(entry["s3Key"])
    head = store.head_object(bucket, key)
    if head is None:
        return "the object is missing", None
    if _sha256(store, bucket, head) != entry.get("sha256"):
        return "its bytes differ from its reference (SHA-256)", head.etag
    if (head.content_type or "") != entry.get("mimeType"):
        return (
            f"Content-Type {head.content_type}, its reference says {entry.get('mimeType')}",
            head.etag,
        )
    return None, head.etag


def _sha256(store: Store, bucket: str, head: ObjectInfo) -> str:
    if head.sha256_b64:
        return store.sha256_of(bucket, head)
    found = store.get_object(bucket, head.key)
    return hashlib.sha256(found[0]).hexdigest() if found else ""


def _entry(
    rid: str,
    read: _Read,
    items: Mapping[str, ItemView],
    baselines: Baselines,
    past: History,
    damaged: tuple[Damage, ...],
) -> SyncEntry | None:
    seen = items.get(rid)
    source = read.units.get(rid)
    index = read.index.get(rid)
    if seen is None:
        new = judge(source, None, {}, tool_item=False, written_before=rid in past.written)
        return SyncEntry(rid, index, new.kind)
    if source is None and not seen.tool:
        return None  # the app's own registration: not sync's business
    baseline: Baseline | None = {}
    if seen.tracked:
        baseline = baselines.of(seen.slim, source or {})
    if baseline is None:
        why = baselines.problems.get(rid, "a run it needs left no baseline")
        return SyncEntry(rid, index, Kind.NO_BASELINE, reason=why, damaged=damaged)
    verdict: Verdict = judge(source, seen.units, baseline, tool_item=seen.tool)
    return SyncEntry(rid, index, verdict.kind, verdict.sides, damaged=damaged)


def _order(entry: SyncEntry) -> tuple[int, str]:
    return (entry.index if entry.index is not None else 1 << 62, entry.id)


def _select(entries: list[SyncEntry], options: SyncOptions) -> list[SyncEntry]:
    if options.only_ids is None:
        return entries
    return [e if e.id in options.only_ids else replace(e, selected=False) for e in entries]


def _guard_deletions(
    entries: list[SyncEntry], options: SyncOptions, tool_items: int
) -> list[SyncEntry]:
    """Deletions wait for --delete, and are all refused above --max-delete of the table
    (like rclone bisync's guard: a source emptied by mistake must not empty the table)."""
    deletable = [
        e
        for e in entries
        if e.selected
        and (
            e.kind is Kind.DELETED_IN_SOURCE
            or (e.kind is Kind.DELETE_CONFLICT and options.take == "source")
        )
    ]
    if not deletable:
        return entries
    share = 100.0 * len(deletable) / max(1, tool_items)
    state = (
        Deletion.WAITING
        if not options.delete
        else Deletion.REFUSED
        if share > options.max_delete
        else Deletion.PLANNED
    )
    chosen = {e.id for e in deletable}
    return [replace(e, deletion=state) if e.id in chosen else e for e in entries]


@dataclass
class SyncResult:
    """What a sync did (or, in a dry run, would do) to every record it judged."""

    run_id: str
    dry_run: bool
    total: int  # records in the source
    entries: list[SyncEntry]
    repair: bool = False  # --repair-images: repairable damage is not left behind
    pending: int = 0  # records the plan writes to
    outcomes: dict[str, str] = field(default_factory=dict)  # id -> what was done
    written: dict[str, list[str]] = field(default_factory=dict)  # id -> the units it wrote
    failed: dict[str, str] = field(default_factory=dict)  # id -> why it could not be done
    superseded: list[str] = field(default_factory=list)
    backup_key: str | None = None
    manifest_key: str | None = None
    manifest_path: str | None = None
    seconds: float = 0.0
    stopped: str | None = None
    resumed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of_plan(cls, plan: SyncPlan) -> SyncResult:
        """The display-only executor's result: the plan, nothing done."""
        return cls(
            plan.stamp.run_id,
            True,
            plan.total,
            list(plan.entries),
            plan.options.repair_images,
            len(plan.to_write()),
        )

    def settle(
        self,
        rid: str,
        final: SyncEntry,
        outcome: str,
        superseded: Sequence[str] = (),
        written: Sequence[str] = (),
    ) -> None:
        with self._lock:
            self.outcomes[rid] = outcome
            self.superseded += superseded
            if written:
                self.written[rid] = list(written)
            self.entries = [final if e.id == rid else e for e in self.entries]

    def fail(self, rid: str, reason: str) -> None:
        with self._lock:
            self.failed[rid] = reason

    def count(self, *kinds: Kind) -> int:
        return sum(1 for e in self.entries if e.kind in kinds)

    def tally(self) -> dict[str, int]:
        """How many records each outcome had."""
        return dict(Counter(self.outcomes.values()))

    def problems(self) -> list[SyncEntry]:
        """Records not in step that this sync did not (or, dry, would not) settle."""
        # After a run, damage it did not repair is a problem, repairable or not.
        return [e for e in self.entries if e.problem(self.repair and self.dry_run)]

    @property
    def ok(self) -> bool:
        return not self.problems() and not self.failed and self.stopped is None

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "total": self.total,
            "inStep": sum(1 for e in self.entries if e.in_step),
            "toUpdate": self.count(Kind.UPDATE),
            "new": self.count(Kind.NEW),
            "conflicts": sum(1 for e in self.entries if e.conflicts),
            "deletedInSource": self.count(Kind.DELETED_IN_SOURCE, Kind.DELETE_CONFLICT),
            "damaged": sum(1 for e in self.entries if e.damaged),
            "outcomes": self.tally(),
            "failed": [{"id": rid, "reason": why} for rid, why in sorted(self.failed.items())],
            "superseded": sorted(self.superseded),
            "records": [
                {
                    **e.to_json(),
                    "outcome": self.outcomes.get(e.id),
                    "written": self.written.get(e.id, []),
                }
                for e in self.entries
                if not e.in_step or e.id in self.outcomes
            ],
            "backupKey": self.backup_key,
            "manifestKey": self.manifest_key,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
            "resumedFrom": self.resumed,
            "ok": self.ok,
        }
