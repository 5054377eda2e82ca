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
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from typing import Any

from khpl_migrate.aws import ABSENT, ItemRejected, Store, Update
from khpl_migrate.aws.items import Path
from khpl_migrate.core import errors
from khpl_migrate.core.errors import reason_of
from khpl_migrate.core.layout import image_version_key
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.core.threeway import CONFLICTS, Kind, Side, Verdict, judge
from khpl_migrate.core.transform import (
    FIELD_RUNS,
    IMAGE_RUNS,
    Image,
    RunStamp,
    Transformed,
    extension,
    transform,
)
from khpl_migrate.core.units import Unit, label, nested_groups, provenance, record_units, references
from khpl_migrate.kernel.changes import REFS, Change, bare
from khpl_migrate.kernel.manifest import Journal, RecordOutcome
from khpl_migrate.kernel.progress import Progress
from khpl_migrate.kernel.writer import put_new_item, stage_record
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


@dataclass(frozen=True)
class _Source:
    """The source record as sync writes it: values and images, and their units."""

    done: Transformed

    @property
    def units(self) -> dict[Unit, bytes]:
        return record_units(self.done)

    def image(self, name: str) -> Image | None:
        return next((image for image in self.done.images if image.name == name), None)


class RecordWriter:
    """The real writes of one run: thread-safe, one record per task."""

    def __init__(
        self,
        store: Store,
        plan: SyncPlan,
        journal: Journal,
        result: SyncResult,
        rate: WriteRate | None = None,
    ):
        self.store, self.plan, self.journal, self.result = store, plan, journal, result
        self.bucket, self.run_id, self.options = plan.source.bucket, plan.stamp.run_id, plan.options
        self.fatal: list[errors.KhplError] = []
        self._lock = threading.Lock()
        # --max-write-rate: every item write waits for its slot (the app is live).
        self.rate = rate or WriteRate(plan.options.max_write_rate)

    def task(self, entry: SyncEntry, record: Any) -> Callable[[], None]:
        return lambda: self.sync(entry, record)

    def done(self, entry: SyncEntry, progress: Progress) -> Callable[[Future[None]], None]:
        def done(future: Future[None]) -> None:
            exc = future.exception()
            if isinstance(exc, errors.FATAL):
                self.fatal.append(exc)
            elif exc is not None:
                log.debug("record %s failed", entry.id, exc_info=exc)
                self.fail(entry, reason_of(exc))
            progress.advance(failed=entry.id in self.result.failed)

        return done

    def settle(self, entry: SyncEntry, final: SyncEntry, outcome: str, **line: Any) -> None:
        """Record what was done to a record, and how it stands now."""
        self.journal.line(
            {"type": "record", "id": entry.id, "index": entry.index, "outcome": outcome, **line}
        )
        written = [*line.get("carried", []), *line.get("adopted", [])]
        self.result.settle(entry, final, outcome, line.get("superseded", []), written)

    def fail(self, entry: SyncEntry, reason: str) -> None:
        self.journal.line(
            {
                "type": "record",
                "id": entry.id,
                "index": entry.index,
                "outcome": "failed",
                "reason": reason,
            }
        )
        self.result.fail(entry.id, reason)

    # -- one record -----------------------------------------------------------------

    def sync(self, entry: SyncEntry, record: Any) -> None:
        if entry.kind is Kind.NEW:
            self.migrate(entry, record)
            return
        if entry.kind is Kind.TABLE_DELETE_CONFLICT:
            self.settle_deleted_in_table(entry, record)
            return
        for _ in range(ATTEMPTS):
            item = self.store.get_item(self.plan.table, entry.id)
            if item is None:
                self.gone(entry)
                return
            seen = ItemView(item)
            source = None
            if record is not None:
                stamp = RunStamp(self.run_id, "", mask_aadhaar=seen.masked)
                source = _Source(transform(record, stamp))
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
        kind = Kind.TABLE_DELETE_CONFLICT if edited else Kind.DELETED_IN_TABLE
        final = replace(entry, kind=kind, sides=edited, damaged=())
        self.settle(entry, final, "unchanged", reason="deleted in DynamoDB during the run")

    def settle_deleted_in_table(self, entry: SyncEntry, record: Any) -> None:
        """--take for a record the app deleted and the source edited: `source` migrates it
        again, `table` accepts the deletion (this run's copy becomes its baseline)."""
        if self.options.take == "source":
            self.migrate(entry, record, outcome="settled")
            return
        final = replace(entry, kind=Kind.DELETED_IN_TABLE, sides={})
        self.settle(entry, final, "settled", deletionAccepted=True)

    def migrate(self, entry: SyncEntry, record: Any, outcome: str = "migrated") -> None:
        """A record new in the source (or the app deleted, taken from the source again):
        migrated as `migrate` would, by this run."""
        staged = stage_record(self.store, self.plan, entry.index or 0, record)
        if isinstance(staged, RecordOutcome):  # it ended before its item: failed, or taken
            self.journal.record(staged)
            if staged.outcome == "failed":
                self.result.fail(entry.id, staged.reason or "")
            else:
                self.result.settle(entry, entry, "left untouched")
            return
        try:
            self.rate.acquire()
            written = put_new_item(self.store, self.plan.table, staged.item, self.run_id)
        except ItemRejected as exc:
            self.fail(entry, f"DynamoDB refused the item: {exc}")
            return
        images = [asdict(w) for w in staged.writes]
        if not written:
            self.settle(
                entry,
                entry,
                "left untouched",
                images=images,
                reason="an item with this id appeared during the run",
            )
            return
        final = replace(entry, kind=Kind.IN_STEP, sides={})
        self.settle(entry, final, outcome, itemWritten=True, images=images)

    def update(
        self, entry: SyncEntry, item: dict[str, Any], source: _Source, verdict: Verdict
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
            self.settle(entry, final, "repaired" if repaired else "unchanged")
            return True
        change, uploads = self.change_of(entry.id, item, source, carry, adopt)
        self.journal.line(
            {
                "type": "intent",
                "id": entry.id,
                "set": [label(u) for u in carry if _present(source, u)],
                "removed": [label(u) for u in carry if not _present(source, u)],
                "adopted": [label(u) for u in adopt],
                "prev": {label(u): provenance(item, u) for u in carry + adopt},
                "images": change.images,
            }
        )
        for image in uploads:  # after the intent: a run cut off here left keys it names
            self.upload(entry.id, image)
        self.rate.acquire()
        if not self.store.update_item_if(self.plan.table, entry.id, change.update):
            return False
        repaired = self.repair(entry, item, source, repairs)
        done = set(carry) | set(adopt)
        sides = {u: s for u, s in verdict.sides.items() if u not in done}
        kind = Kind.CONFLICT if any(s in CONFLICTS for s in sides.values()) else Kind.IN_STEP
        final = replace(entry, kind=kind, sides=sides, damaged=_left(entry, repaired))
        settled = take is not None and bool(verdict.conflicts)
        self.settle(
            entry,
            final,
            "settled" if settled else "updated" if carry else "adopted",
            carried=[label(u) for u in carry],
            adopted=[label(u) for u in adopt],
            superseded=change.superseded,
        )
        return True

    def change_of(
        self,
        rid: str,
        item: dict[str, Any],
        source: _Source,
        carry: list[Unit],
        adopt: list[Unit],
    ) -> tuple[Change, list[Image]]:
        """The UpdateItem that carries `carry` over and moves the baseline of both, and the
        images to upload before it."""
        change = Change(owner=item.get("migrationRunId", ABSENT))
        uploads = []
        for unit in carry:
            kind, name = unit
            if kind == "field":
                change.field(name, source.done.item.get(name, ABSENT), item.get(name, ABSENT))
                continue
            image = source.image(name)
            change.image(item, name, _reference(rid, image) if image is not None else ABSENT)
            if image is not None:
                uploads.append(image)
        for kind, name in adopt:  # the value stays; only its baseline moves
            current = (
                item.get(name, ABSENT) if kind == "field" else references(item).get(name, ABSENT)
            )
            change.expect[(name,) if kind == "field" else (REFS, name)] = current
        for unit in carry + adopt:
            change.runs(item, unit, self.run_id)
        # An image nested in a field was judged with that field: the write holds only while
        # the field is as read (the app reshaping the list in between must not shift it).
        groups = nested_groups(item, source.done.item)
        for unit in carry + adopt:
            group = groups.get(unit)
            if group is not None and (group,) not in change.set:
                change.expect.setdefault((group,), item.get(group, ABSENT))
        if "maskedFields" in item:  # a masked item lists the fields carried in masked
            now = list(item["maskedFields"])
            carried = {name for kind, name in carry if kind == "field"}
            masked = set(now) | (set(source.done.item.get("maskedFields", [])) & carried)
            if masked != set(now):
                change.set[("maskedFields",)] = sorted(masked)
                change.expect[("maskedFields",)] = now
        return change, uploads

    def upload(self, rid: str, image: Image) -> None:
        """The source's new image at a key of its own, never over other bytes."""
        key = image_version_key(rid, image.name, extension(image.mime), image.sha256)
        outcome = self.store.put_object_if_absent(
            self.bucket, key, image.data, image.mime, self.run_id
        )
        if outcome == "conflict":
            raise errors.RecordError(
                f"image s3://{self.bucket}/{key} exists with other bytes (not the tool's); not "
                "overwritten. Fix: move that object out of registration-images/, run again"
            )

    def repair(
        self, entry: SyncEntry, item: dict[str, Any], source: _Source, damaged: list[Damage]
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
                self.journal.line(
                    {"type": "repair", "id": entry.id, "key": damage.key, "sha256": image.sha256}
                )
                repaired.append(damage)
        return repaired

    def delete_or_release(self, entry: SyncEntry, item: dict[str, Any], verdict: Verdict) -> bool:
        """A record deleted in the source: the item goes (--delete, still its baseline), or,
        settled with --take table, it is released to the app (no longer the migration's)."""
        take = self.options.take if entry.selected else None
        if take == "table" and verdict.kind is Kind.DELETE_CONFLICT:
            return self.release(entry, item)
        deletable = verdict.kind is Kind.DELETED_IN_SOURCE or (
            take == "source" and verdict.kind is Kind.DELETE_CONFLICT
        )
        if entry.deletion is not Deletion.PLANNED or not deletable:
            self.settle(entry, replace(entry, kind=verdict.kind, sides=verdict.sides), "unchanged")
            return True
        kept = {k: item[k] for k in _KEPT_ON_DELETE if k in item}
        kept[REFS] = {name: bare(ref) for name, ref in references(item).items()}
        self.journal.line({"type": "intent", "id": entry.id, "delete": True, "item": kept})
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
        self.settle(entry, replace(entry, kind=Kind.IN_STEP, sides={}, deletion=None), "deleted")
        return True

    def release(self, entry: SyncEntry, item: dict[str, Any]) -> bool:
        """--take table on a record deleted in the source that the app changed: the item
        stays, as the app's own (no longer the migration's to delete or update)."""
        owner = {k: item[k] for k in ("migrationRunId", FIELD_RUNS, IMAGE_RUNS) if k in item}
        # Who wrote it (run ids, no values): what a rollback of this run puts back.
        self.journal.line({"type": "intent", "id": entry.id, "release": True, "owner": owner})
        update = Update(
            remove=(("migrationRunId",), (FIELD_RUNS,), (IMAGE_RUNS,)),
            expect={(k,): v for k, v in owner.items()},
        )
        self.rate.acquire()
        if not self.store.update_item_if(self.plan.table, entry.id, update):
            return False
        self.settle(entry, replace(entry, kind=Kind.APP_EQUAL, sides={}), "released")
        return True


def _reference(rid: str, image: Image) -> dict[str, Any]:
    """The reference of a changed image: a key of its own, from its bytes."""
    key = image_version_key(rid, image.name, extension(image.mime), image.sha256)
    entry: dict[str, Any] = {
        "s3Key": key,
        "mimeType": image.mime,
        "size": image.size,
        "sha256": image.sha256,
        "field": list(image.path),
    }
    if image.header is not None:
        entry["dataUrlHeader"] = image.header
    return entry


def _present(source: _Source, unit: Unit) -> bool:
    kind, name = unit
    return name in source.done.item if kind == "field" else source.image(name) is not None


def _left(entry: SyncEntry, repaired: list[Damage]) -> tuple[Damage, ...]:
    return tuple(d for d in entry.damaged if d not in repaired)
