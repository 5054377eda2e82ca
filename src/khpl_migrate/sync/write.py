"""One record's writes in a sync run, never overwriting what the app wrote.

Every change to an item is one UpdateItem (or DeleteItem) that sets or removes
only the units it carries over, conditional on each of them still holding the
value that was read (absent where it had none), on the run each one's baseline
came from, and on the item's owner being unchanged. Where the app changed one in
between, the condition fails, the item is read again and the record judged
again. No transaction groups records: one conflict never cancels another
record's change.

A changed image goes to a key of its own (`layout.image_version_key`) before
the reference moves to it; the old object is kept ("superseded"). The run's
manifest gets an intent line before each change, uploads included (what it will
set, the keys it will write, and which run each unit's baseline came from, so
`rollback` can put it back), and an outcome line after: ids, unit names, keys
and hashes only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from khpl_migrate.aws import Path, Update
from khpl_migrate.core import errors
from khpl_migrate.core.threeway import CONFLICTS, RecordState, Side, Verdict, judge
from khpl_migrate.core.transform import (
    FIELD_RUNS,
    IMAGE_RUNS,
    Image,
    RunStamp,
    transform,
)
from khpl_migrate.core.units import label, nested_groups, provenance, references
from khpl_migrate.kernel.changes import REFS, bare
from khpl_migrate.kernel.engine import Context
from khpl_migrate.kernel.manifest import ImageLine, IntentLine, Outcome, RecordLine, RepairLine
from khpl_migrate.kernel.writer import STOPPED, ItemWriter, Staged, stage_record
from khpl_migrate.sync.change import SourceRecord, change_of, version_key
from khpl_migrate.sync.model import Damage, Deletion, ItemView, SyncEntry, SyncPlan, SyncResult

log = logging.getLogger(__name__)
ATTEMPTS = 3  # reads and conditional writes of one record before it is left for the next sync
# What an item's deletion leaves in the manifest, so that rollback can put it back:
# who wrote what, and where its images are (no field values: those are in the backups).
_KEPT_ON_DELETE = (
    "migrationRunId",
    "migrationDate",
    "migratedFrom",
    "maskedFields",
    FIELD_RUNS,
    IMAGE_RUNS,
)


class RecordWriter:
    """The real writes of one run: thread-safe, one record per task. A record new in the
    source goes through the kernel's `ItemWriter`, as a migration's records do."""

    def __init__(self, ctx: Context, plan: SyncPlan, result: SyncResult) -> None:
        self.store, self.plan, self.result = ctx.store, plan, result
        self.manifest, self.flight, self.progress = ctx.manifest, ctx.flight, ctx.pace.progress
        self.bucket, self.run_id, self.options = plan.source.bucket, plan.stamp.run_id, plan.options
        # --max-write-rate: every item write waits for its slot (the app is live).
        self.rate = ctx.pace.rate
        self.items = ItemWriter(
            ctx.store, plan.table, self.run_id, self._written, ctx.pace.batch, self.rate
        )
        self._new: dict[str, tuple[SyncEntry, Outcome]] = {}  # staged, waiting for their item
        self._at: dict[str, tuple[int, int]] = {}  # where records in flight lie in the source

    def located(self, rid: str, at: tuple[int, int] | None) -> None:
        """Where the record about to be written lies in the source: its line says so."""
        if at is not None:
            self._at[rid] = at

    def done(
        self,
        entry: SyncEntry,
        final: SyncEntry,
        outcome: Outcome,
        *,
        reason: str | None = None,
        carried: tuple[str, ...] = (),
        adopted: tuple[str, ...] = (),
        superseded: tuple[str, ...] = (),
        images: tuple[ImageLine, ...] = (),
        item_written: bool = False,
        deletion_accepted: bool = False,
        at: tuple[int, int] | None = None,
    ) -> None:
        """Record what was done to a record, and how it stands now."""
        self.manifest.write(
            RecordLine(
                id=entry.id,
                index=entry.index,
                outcome=outcome,
                reason=reason,
                item_written=item_written,
                images=images,
                carried=carried,
                adopted=adopted,
                superseded=superseded,
                deletion_accepted=deletion_accepted,
                at=self._at.pop(entry.id, at),
            )
        )
        self.result.record(entry, final, outcome, superseded, [*carried, *adopted])

    def fail(self, entry: SyncEntry, reason: str, images: tuple[ImageLine, ...] = ()) -> None:
        self.fail_id(entry.id, entry.index, reason, images)

    def fail_id(
        self, rid: str, index: int | None, reason: str, images: tuple[ImageLine, ...] = ()
    ) -> None:
        """A record's failure: its line (naming the images it stored), its count."""
        self.manifest.write(RecordLine(id=rid, index=index, reason=reason, images=images))
        self.result.fail(rid, reason)

    def drain(self, now: bool) -> None:
        """The last batch of new records' items: written, or (a second Ctrl-C) left."""
        if now:
            self.items.abandon(STOPPED)
        else:
            self.items.flush()

    # -- one record -----------------------------------------------------------------

    def sync(self, entry: SyncEntry, record: Any) -> bool:
        """One record's task; True when it is held in the item writer's batch."""
        try:
            if entry.kind is RecordState.NEW:
                return self.migrate(entry, record)
            if entry.kind is RecordState.TABLE_DELETE_CONFLICT:
                return self.settle_deleted_in_table(entry, record)
            self.judged(entry, record)
            return False
        finally:
            if entry.id not in self._new:
                self.progress.advance(failed=entry.id in self.result.failed)

    def judged(self, entry: SyncEntry, record: Any) -> None:
        """Judge the record again against the item as it is now, and write the verdict."""
        for _ in range(ATTEMPTS):
            item = self.store.get_item(self.plan.table, entry.id)
            if item is None:
                self.gone(entry)
                return
            seen = ItemView(item)
            source = None
            if record is not None:
                stamp = RunStamp(self.run_id, "", mask_aadhaar=seen.masked)
                source = SourceRecord(transform(record, stamp))
            others = [*(source.units if source else {}), *seen.units]
            baseline = self.plan.baselines.of(seen.slim, others)
            if baseline is None:
                self.fail(entry, "a run that wrote this item since the plan left no baseline")
                return
            units = source.units if source else None
            groups = nested_groups(seen.slim, source.done.item if source else {})
            now = seen.with_replaced(entry.replaced)
            verdict = judge(units, now, baseline, tool_item=seen.tool, groups=groups)
            written = (
                self.update(entry, item, source, verdict)
                if source is not None
                else self.delete_or_release(entry, item, verdict)
            )
            if written:
                return
        self.fail(entry, f"the item changed {ATTEMPTS} times while sync wrote it: run sync again")

    def gone(self, entry: SyncEntry) -> None:
        """The app deleted the item during the run: its deletion stands, and the source's
        edits the plan would have carried over are reported, not lost."""
        edited = {u: s for u, s in entry.sides.items() if s is Side.SOURCE}
        kind = RecordState.TABLE_DELETE_CONFLICT if edited else RecordState.DELETED_IN_TABLE
        final = replace(entry, kind=kind, sides=edited, damaged=())
        self.done(entry, final, Outcome.UNCHANGED, reason="deleted in DynamoDB during the run")

    def settle_deleted_in_table(self, entry: SyncEntry, record: Any) -> bool:
        """--take for a record the app deleted and the source edited: `source` migrates it
        again, `table` accepts the deletion (this run's copy becomes its baseline)."""
        if self.options.take == "source":
            return self.migrate(entry, record, Outcome.SETTLED)
        final = replace(entry, kind=RecordState.DELETED_IN_TABLE, sides={})
        self.done(entry, final, Outcome.SETTLED, deletion_accepted=True)
        return False

    def migrate(self, entry: SyncEntry, record: Any, outcome: Outcome = Outcome.MIGRATED) -> bool:
        """A record new in the source (or the app deleted, taken from the source again):
        migrated as `migrate` would, by this run: its images, then its item in the
        `ItemWriter`'s next batch (True: held there until it is written)."""
        at = self._at.pop(entry.id, None)
        staged = stage_record(self.store, self.plan, entry.index or 0, record, at=at)
        if isinstance(staged, RecordLine):  # it ended before its item: failed, or taken
            self._ended(entry, outcome, staged)
            return False
        self._new[staged.id] = (entry, outcome)
        self.items.add(staged)
        return True

    def _written(self, staged: Staged, line: RecordLine) -> None:
        """The item writer's verdict on a new record it held."""
        entry, outcome = self._new.pop(staged.id)
        self._ended(entry, outcome, line)
        self.flight.end()
        self.progress.advance(failed=entry.id in self.result.failed)

    def _ended(self, entry: SyncEntry, outcome: Outcome, line: RecordLine) -> None:
        if line.outcome == Outcome.FAILED:
            self.fail(entry, line.reason or "", line.images)
        elif line.outcome == Outcome.SKIPPED:  # the app registered the id during the run
            reason = "an item with this id appeared during the run"
            self.done(entry, entry, Outcome.LEFT_UNTOUCHED, reason=reason, images=line.images)
        else:
            final = replace(entry, kind=RecordState.IN_STEP, sides={})
            self.done(entry, final, outcome, images=line.images, item_written=True, at=line.at)

    def update(
        self, entry: SyncEntry, item: dict[str, Any], source: SourceRecord, verdict: Verdict
    ) -> bool:
        """One conditional UpdateItem for the record as judged now; False: it changed."""
        take = self.options.take if entry.selected else None
        carry = verdict.carry + (verdict.conflicts if take == "source" else [])
        adopt = verdict.agreed + (verdict.conflicts if take == "table" else [])
        repairs = [
            d
            for d in entry.damaged
            if self.options.repair_images and d.repairable and ("image", d.name) not in carry
        ]
        if not carry and not adopt:
            repaired = self.repair(entry, item, source, repairs)
            final = replace(
                entry, kind=verdict.kind, sides=verdict.sides, damaged=_left(entry, repaired)
            )
            self.done(entry, final, Outcome.REPAIRED if repaired else Outcome.UNCHANGED)
            return True
        change, uploads = change_of(entry.id, item, source, carry, adopt, self.run_id)
        self.manifest.write(
            IntentLine(
                id=entry.id,
                set=tuple(label(u) for u in carry if source.has(u)),
                removed=tuple(label(u) for u in carry if not source.has(u)),
                adopted=tuple(label(u) for u in adopt),
                prev={label(u): provenance(item, u) for u in carry + adopt},
                images=change.moves(),
            )
        )
        for image in uploads:  # after the intent: a run cut off here left keys it names
            self.upload(entry.id, image)
        self.rate.acquire()
        if not self.store.update_item_if(self.plan.table, entry.id, change.update):
            return False
        repaired = self.repair(entry, item, source, repairs)
        done = set(carry) | set(adopt)
        sides = {u: s for u, s in verdict.sides.items() if u not in done}
        conflict = any(s in CONFLICTS for s in sides.values())
        kind = RecordState.CONFLICT if conflict else RecordState.IN_STEP
        final = replace(entry, kind=kind, sides=sides, damaged=_left(entry, repaired))
        settled = take is not None and bool(verdict.conflicts)
        self.done(
            entry,
            final,
            Outcome.SETTLED if settled else Outcome.UPDATED if carry else Outcome.ADOPTED,
            carried=tuple(label(u) for u in carry),
            adopted=tuple(label(u) for u in adopt),
            superseded=tuple(change.superseded),
        )
        return True

    def upload(self, rid: str, image: Image) -> None:
        """The source's new image at a key of its own, never over other bytes."""
        key = version_key(rid, image)
        outcome = self.store.put_object_if_absent(
            self.bucket, key, image.data, image.mime, self.run_id
        )
        if outcome == "conflict":
            raise errors.RecordError(
                f"image s3://{self.bucket}/{key} exists with other bytes (not the tool's); not "
                "overwritten. Fix: move that object out of registration-images/, run again"
            )

    def repair(
        self, entry: SyncEntry, item: dict[str, Any], source: SourceRecord, damaged: list[Damage]
    ) -> list[Damage]:
        """Put back the source's bytes where the reference still points at the damaged
        object and that object is still the version that was checked. A repair that
        fails leaves the damage reported; the record's other changes stand."""
        repaired = []
        refs = references(item)
        for damage in damaged:
            ref, image = refs.get(damage.name), source.image(damage.name)
            if ref is None or image is None or ref.get("s3Key") != damage.key:
                continue
            if ref.get("sha256") != image.sha256:
                continue
            try:
                done = self.store.replace_object_if(
                    self.bucket,
                    damage.key,
                    image.data,
                    str(ref["mimeType"]),
                    damage.etag,
                    self.run_id,
                )
            except errors.FATAL:
                raise
            except errors.KhplError as exc:
                log.warning("could not repair %s: %s", damage.key, exc)
                continue
            if done:
                self.manifest.write(RepairLine(id=entry.id, key=damage.key, sha256=image.sha256))
                repaired.append(damage)
        return repaired

    def delete_or_release(self, entry: SyncEntry, item: dict[str, Any], verdict: Verdict) -> bool:
        """A record deleted in the source: the item goes (--delete, still its baseline), or,
        settled with --take table, it is released to the app (no longer the migration's)."""
        take = self.options.take if entry.selected else None
        if take == "table" and verdict.kind is RecordState.DELETE_CONFLICT:
            return self.release(entry, item)
        deletable = verdict.kind is RecordState.DELETED_IN_SOURCE or (
            take == "source" and verdict.kind is RecordState.DELETE_CONFLICT
        )
        if entry.deletion is not Deletion.PLANNED or not deletable:
            final = replace(entry, kind=verdict.kind, sides=verdict.sides)
            self.done(entry, final, Outcome.UNCHANGED)
            return True
        kept = {k: item[k] for k in _KEPT_ON_DELETE if k in item}
        kept[REFS] = {name: bare(ref) for name, ref in references(item).items()}
        self.manifest.write(IntentLine(id=entry.id, delete=True, item=kept))
        expect: dict[Path, Any] = {(k,): v for k, v in item.items() if k != "id"}
        self.rate.acquire()
        deleted = self.store.delete_item_if(self.plan.table, entry.id, expect)
        if deleted is None:
            return False
        if set(deleted) - set(item):
            # The app added a field between the read and the delete (no condition can say
            # "nothing else"): the item goes back as the app left it, and is judged again.
            if self.store.put_item_if_absent(self.plan.table, deleted):
                return False
            self.fail(entry, "the app changed the item while it was deleted; put back")
            return True
        final = replace(entry, kind=RecordState.IN_STEP, sides={}, deletion=None)
        self.done(entry, final, Outcome.DELETED)
        return True

    def release(self, entry: SyncEntry, item: dict[str, Any]) -> bool:
        """--take table on a record deleted in the source that the app changed: the item
        stays, as the app's own (no longer the migration's to delete or update)."""
        owner = {k: item[k] for k in ("migrationRunId", FIELD_RUNS, IMAGE_RUNS) if k in item}
        # Who wrote it (run ids, no values): what a rollback of this run puts back.
        self.manifest.write(IntentLine(id=entry.id, release=True, owner=owner))
        update = Update(
            remove=(("migrationRunId",), (FIELD_RUNS,), (IMAGE_RUNS,)),
            expect={(k,): v for k, v in owner.items()},
        )
        self.rate.acquire()
        if not self.store.update_item_if(self.plan.table, entry.id, update):
            return False
        self.done(entry, replace(entry, kind=RecordState.APP_EQUAL, sides={}), Outcome.RELEASED)
        return True


def _left(entry: SyncEntry, repaired: list[Damage]) -> tuple[Damage, ...]:
    return tuple(d for d in entry.damaged if d not in repaired)
