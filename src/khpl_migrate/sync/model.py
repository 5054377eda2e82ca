"""`khpl-migrate sync`: the source's edits carried over to the table, field by field.

The app keeps running on `registrations.json` after `migrate --apply` until it
is switched to DynamoDB-only mode, and admins keep editing on both sides. Sync
closes that window without losing either side's edit: for every record it
compares the baseline (`baseline.py`), the source now and the item now unit by
unit (`threeway.py`), carries over what only the source changed, keeps what
only the app changed, and writes nothing where both changed differently (a
conflict, reported until the two sides agree or the operator settles it with
`--take source|table` for listed ids).

Like `migrate`, it plans first, reading only (`sync_plan.plan_sync`); the plan
is either shown (dry run) or carried out by `sync_apply.apply_sync`, so the two
cannot drift apart. This module holds what they share: the options, each
record's entry, the plan and the result. Field values are never shown, only
field names: they are personal data.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from khpl_migrate.core.limits import attribute_sizes
from khpl_migrate.core.threeway import CONFLICTS, RecordState, Side
from khpl_migrate.core.transform import FIELD_RUNS, IMAGE_RUNS, RunStamp
from khpl_migrate.core.units import Unit, Units, item_units, label, replaced_unit
from khpl_migrate.kernel.baseline import Baselines, History
from khpl_migrate.kernel.engine import RunFacts
from khpl_migrate.kernel.source import Digest, Source

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
    max_write_rate: float | None = None  # items written a second (the live app keeps the rest)


class Deletion(StrEnum):
    """What happens to an item whose record left the source (stable codes)."""

    PLANNED = "planned"  # to delete
    WAITING = "waiting"  # not deleted: pass --delete
    REFUSED = "refused"  # not deleted: more than --max-delete of the table


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
    kind: RecordState
    sides: Mapping[Unit, Side] = field(default_factory=dict)
    reason: str | None = None
    damaged: tuple[Damage, ...] = ()
    deletion: Deletion | None = None
    selected: bool = True  # False: not in --only-ids
    # Images whose object another writer replaced (the app updating a photo in place):
    # the app's, judged as changed in the table, never moved away from or repaired.
    replaced: tuple[str, ...] = ()

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
            self.kind in (RecordState.NEW, RecordState.UPDATE)
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


_IN_STEP = frozenset({RecordState.IN_STEP, RecordState.APP_EQUAL, RecordState.DELETED_IN_TABLE})
DELETE_CONFLICTS = frozenset({RecordState.DELETE_CONFLICT, RecordState.TABLE_DELETE_CONFLICT})
_PROBLEMS = frozenset(
    {RecordState.UNUSABLE, RecordState.NO_BASELINE, RecordState.APP_CONFLICT, *DELETE_CONFLICTS}
)
_SETTLED_BY_TAKE = frozenset(
    {RecordState.CONFLICT, RecordState.UPDATE, RecordState.APP_CONFLICT, *DELETE_CONFLICTS}
)


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


class ItemView:
    """What sync keeps of an item: its units, and who wrote what (no other values)."""

    def __init__(self, item: Mapping[str, Any]) -> None:
        self.units = item_units(item)
        self.slim = {k: item[k] for k in _SLIM if k in item}
        # Each attribute's share of the item's size: whether an update would take the
        # item past DynamoDB's 400 KB is known in the plan, not found out by the write.
        self.sizes = attribute_sizes(item)

    def with_replaced(self, names: tuple[str, ...]) -> Units:
        """The item's units, where the object of each image in `names` is another
        writer's: that image is the app's (an image is its reference with its object)."""
        units = dict(self.units)
        for name in names:
            units[("image", name)] = replaced_unit(name)
        return units

    @property
    def tool(self) -> bool:
        return "migrationRunId" in self.slim

    @property
    def tracked(self) -> bool:
        """A run of the tool wrote some of it: it has a baseline, whole or in part."""
        return self.tool or FIELD_RUNS in self.slim or IMAGE_RUNS in self.slim

    @property
    def masked(self) -> bool:
        """Written with --mask-aadhaar: what is carried into it is masked too."""
        return "maskedFields" in self.slim


@dataclass
class SyncResult(RunFacts):
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

    def record(
        self,
        entry: SyncEntry,
        final: SyncEntry,
        outcome: str,
        superseded: Sequence[str] = (),
        written: Sequence[str] = (),
    ) -> None:
        """`entry`, the plan's, now stands as `final` (a duplicate id's own entry stays)."""
        with self._lock:
            self.outcomes[entry.id] = outcome
            self.superseded += superseded
            if written:
                self.written[entry.id] = list(written)
            self.entries = [final if e is entry else e for e in self.entries]

    def fail(self, rid: str, reason: str) -> None:
        with self._lock:
            self.failed[rid] = reason

    def count(self, *kinds: RecordState) -> int:
        return sum(1 for e in self.entries if e.kind in kinds)

    def tally(self) -> dict[str, int]:
        """How many records each outcome had."""
        return dict(Counter(self.outcomes.values()))

    def kept(self) -> list[SyncEntry]:
        """Records in step with edits made in DynamoDB, kept: the "kept" of "In step"."""
        return [e for e in self.entries if e.in_step and e.units(Side.TABLE)]

    def named(self) -> list[SyncEntry]:
        """The records the plan or run names, one by one: those not in step, those it wrote
        to, and those in step with the app's edits kept (so that the count is theirs)."""
        kept = {id(e) for e in self.kept()}
        return [e for e in self.entries if not e.in_step or e.id in self.outcomes or id(e) in kept]

    def problems(self) -> list[SyncEntry]:
        """Records not in step that this sync did not (or, dry, would not) settle."""
        # After a run, damage it did not repair is a problem, repairable or not.
        return [e for e in self.entries if e.problem(self.repair and self.dry_run)]

    @property
    def ok(self) -> bool:
        """Source and table in step: nothing to look at, and (a dry run) nothing to write."""
        return (
            not self.problems()
            and not self.failed
            and self.stopped is None
            and not (self.dry_run and self.pending)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "total": self.total,
            "inStep": sum(1 for e in self.entries if e.in_step),
            "toUpdate": self.count(RecordState.UPDATE),
            "new": self.count(RecordState.NEW),
            "conflicts": sum(1 for e in self.entries if e.conflicts),
            "deletedInSource": self.count(
                RecordState.DELETED_IN_SOURCE, RecordState.DELETE_CONFLICT
            ),
            "deletedInDynamoDB": self.count(
                RecordState.DELETED_IN_TABLE, RecordState.TABLE_DELETE_CONFLICT
            ),
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
                for e in self.named()
            ],
            **self.facts_json(),
            "ok": self.ok,
        }
