"""`verify --deep`: every field and every image byte, record by record, naming the side.

`deep_verify` proves the guide's "no data loss" rather than counting: for every
source record it rebuilds the item the migration should have written (the same
pure `transform`, with the item's own run id and date) and compares every field
and image (`compare.py`), like rclone's `check` and restic's `check
--read-data`. It reports one line per record in rclone's `--combined` notation.

Each difference then says which side changed since the migration, from the
record's baseline (`baseline.py`: the record as the tool last wrote it): the
source (run `sync`), DynamoDB (the app, or damage), or both; an image object
that does not hold what its reference says is damage in S3. The baselines are
read only for records that differ, so a clean check costs nothing more.

Image objects no item references are orphans, and fail the check, unless a
sync kept them on purpose (bytes it superseded, images of a record it deleted)
or the migration did not write them (no `x-amz-meta-khpl-run`): those two are
listed and do not fail it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.layout import IMAGE_PREFIX, record_of_image_key
from khpl_migrate.core.threeway import Side, side
from khpl_migrate.core.transform import MIGRATED_FROM, RunStamp, record_id, transform
from khpl_migrate.core.units import Units, item_units, provenance, record_units, references, runs_of
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.baseline import Baselines, History, history, read_baselines
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Flight, Runner, Stop, make_runner
from khpl_migrate.settings import Settings
from khpl_migrate.verify.compare import Comparison, Difference, compare_record
from khpl_migrate.verify.status import VerifyReport, verify

Status = Literal["=", "-", "*", "!"]
STATUS_WORDS = {
    "=": "identical",
    "-": "missing in DynamoDB",
    "*": "differs",
    "!": "could not be checked",
}
SOURCE_SIDE = "changed in the source since the migration: run `khpl-migrate sync`"
TABLE_SIDE = "changed in DynamoDB since the migration: the app, or damage"
BOTH_SIDES = "changed in the source and in DynamoDB since the migration: see `khpl-migrate sync`"
DAMAGE_SIDE = "damage in S3: `khpl-migrate sync --repair-images` puts the source's bytes back"
REPLACED_SIDE = "replaced in S3 since the migration by another writer: the app's, never repaired"
_WORDS = {Side.SOURCE: SOURCE_SIDE, Side.TABLE: TABLE_SIDE, Side.CONFLICT: BOTH_SIDES}


@dataclass(frozen=True)
class DeepEntry:
    """One source record's line in the reconciliation report."""

    index: int
    id: str | None
    status: Status
    details: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    images: int = 0
    image_bytes: int = 0
    # For the review page's checklist: images that exist, match and decode, and
    # whether every field matched (details mix both kinds of difference).
    images_ok: int = 0
    fields_ok: bool = False
    # The sides of its differences: "source", "table", "both", "damage" (for sync's review).
    sides: tuple[str, ...] = ()

    def line(self) -> str:
        who = self.id if self.id is not None else f"#{self.index} (no id)"
        text = f"{self.status} {who}"
        notes = self.details + tuple(f"warning: {w}" for w in self.warnings)
        return f"{text}: {'; '.join(notes)}" if notes else text

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "status": self.status,
            "details": list(self.details),
            "warnings": list(self.warnings),
            "sides": list(self.sides),
        }


@dataclass
class DeepReport:
    entries: list[DeepEntry] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # migrated items in no source record
    superseded: list[str] = field(default_factory=list)  # objects a sync kept on purpose
    not_written: list[str] = field(default_factory=list)  # objects the migration did not write
    # The migration's images of items the app deleted: not orphans with --allow-table-edits
    # (without it they are in `orphans` too).
    of_deleted_items: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # verify --deep --allow-table-edits: what changed in DynamoDB since the migration (the
    # app's edits, after the cut-over) does not fail the check; damage in S3 still does.
    allow_table_edits: bool = False

    def count(self, status: Status) -> int:
        return sum(1 for e in self.entries if e.status == status)

    @property
    def images(self) -> int:
        return sum(e.images for e in self.entries)

    @property
    def image_bytes(self) -> int:
        return sum(e.image_bytes for e in self.entries)

    @property
    def ok(self) -> bool:
        return not self.failing() and not self.orphans and not self.unexplained

    def failing(self) -> list[DeepEntry]:
        """The entries that fail the check."""
        allowed = {e.index for e in self.allowed()}
        return [e for e in self.entries if e.status != "=" and e.index not in allowed]

    def table_edits(self) -> list[DeepEntry]:
        """The records that differ only by edits made in DynamoDB since the migration (the
        app's, after the cut-over; a photo it replaced in S3 included), whether or not
        --allow-table-edits accepts them. A lost record, damage in S3, a change in the
        source or a difference whose side could not be named is never one."""
        return [
            e for e in self.entries if e.status != "=" and e.sides and set(e.sides) == {"table"}
        ]

    def allowed(self) -> list[DeepEntry]:
        """Differences --allow-table-edits lets pass: changed in DynamoDB only, no damage."""
        return self.table_edits() if self.allow_table_edits else []

    def passes(self, summary: VerifyReport) -> bool:
        """The verdict of verify --deep (exit 0), of review's checklist and of
        archive-source --remove-original: every record is there and nothing fails."""
        return self.complete(summary) and self.ok

    def accepting_table_edits(self) -> DeepReport:
        """This report judged with --allow-table-edits: the app's edits pass, and the
        images of items the app deleted are no longer orphans."""
        deleted = set(self.of_deleted_items)
        orphans = [key for key in self.orphans if key not in deleted]
        return replace(self, allow_table_edits=True, orphans=orphans)

    def only_table_edits(self, summary: VerifyReport) -> bool:
        """It fails, and every difference that fails it is an edit made in DynamoDB since
        the migration: --allow-table-edits would let it pass (the hint the commands give)."""
        return not self.passes(summary) and self.accepting_table_edits().passes(summary)

    def accepted(self) -> int:
        """How many records' differences --allow-table-edits accepted as the app's edits
        (the images of items the app deleted are counted in `of_deleted_items`)."""
        return len(self.allowed())

    def complete(self, summary: VerifyReport) -> bool:
        """Every usable source record is in the table, or was deleted there by the app and
        --allow-table-edits accepts that."""
        if summary.complete:
            return True
        gone = {e.id for e in self.allowed() if e.status == "-"}
        missing = {rid for rid, _ in summary.only_in_s3}
        return summary.table_exists and not summary.unusable and missing <= gone

    def attention_ids(self) -> list[str]:
        """Ids that need attention: what --failed-ids writes, for `sync --only-ids`."""
        ordered = sorted(self.failing(), key=lambda e: e.index)
        return [e.id for e in ordered if e.id is not None]

    def lines(self) -> list[str]:
        """The reconciliation report: `=`, `-`, `*`, `!` per record, `+` for extras."""
        out = [e.line() for e in sorted(self.entries, key=lambda e: e.index)]
        deleted = set(self.of_deleted_items)
        out += [
            f"+ {key}: image of an item deleted in DynamoDB (an orphan unless "
            "--allow-table-edits accepts the app's deletion)"
            if key in deleted
            else f"+ {key}: image object no item references (orphan)"
            for key in self.orphans
        ]
        out += [
            f"+ {rid}: item marked migratedFrom S3 but in no source record "
            "(deleted in the source: see `khpl-migrate sync`)"
            for rid in self.unexplained
        ]
        out += [
            f"+ {key}: kept by a sync (superseded, or its record deleted; not an orphan)"
            for key in self.superseded
        ]
        out += [
            f"+ {key}: not written by the migration (no x-amz-meta-khpl-run; not checked)"
            for key in self.not_written
        ]
        if self.allow_table_edits:
            out += [
                f"+ {key}: image of an item deleted in DynamoDB (allowed by --allow-table-edits)"
                for key in self.of_deleted_items
            ]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "identical": self.count("="),
            "missing": self.count("-"),
            "differs": self.count("*"),
            "unchecked": self.count("!"),
            "imagesChecked": self.images,
            "imageBytesChecked": self.image_bytes,
            "orphans": self.orphans,
            "unexplained": self.unexplained,
            "allowedTableEdits": len(self.allowed()),
            "tableEdits": len(self.table_edits()),
            "superseded": self.superseded,
            "notWrittenByTheMigration": self.not_written,
            "imagesOfDeletedItems": self.of_deleted_items,
            "seconds": round(self.seconds, 3),
            "records": [e.to_json() for e in sorted(self.entries, key=lambda e: e.index)],
        }


# What to do after Ctrl-C stopped the check.
AGAIN = "run `khpl-migrate verify --deep` again: it checks every record from the start"


def deep_verify(
    store: Store,
    settings: Settings,
    *,
    runner: Runner | None = None,
    on_entry: Callable[[DeepEntry], None] | None = None,
    on_record: Callable[[int, Any], None] | None = None,
    name_sides: bool = True,
    allow_table_edits: bool = False,
    progress: Progress | None = None,
) -> tuple[VerifyReport, DeepReport]:
    """The guide's report plus every field and image byte checked, each difference's side
    named (unless `name_sides` is False: then no baseline is read).

    `on_record` sees every source record as it is read (the review page keeps
    each record's name from it, so the source is read once, not twice).
    `on_entry` sees every record's entry once its side is named. `progress`
    shows the records, images and bytes checked; Ctrl-C stops the check
    (`runner.Stop`) and raises `errors.Interrupted`.
    """
    progress = progress or NullProgress()
    try:
        return _deep_verify(
            store, settings, runner, on_entry, on_record, name_sides, allow_table_edits, progress
        )
    except KeyboardInterrupt:  # before or after the records are compared: it stops at once
        raise errors.Interrupted(
            "Interrupted: verify --deep stopped before it was done; nothing was changed", AGAIN
        ) from None
    finally:
        progress.finish()  # however it ends: nothing redraws after the report


def _deep_verify(
    store: Store,
    settings: Settings,
    runner: Runner | None,
    on_entry: Callable[[DeepEntry], None] | None,
    on_record: Callable[[int, Any], None] | None,
    name_sides: bool,
    allow_table_edits: bool,
    progress: Progress,
) -> tuple[VerifyReport, DeepReport]:
    began = time.monotonic()
    # The first line at once: the guide's counts alone read the whole source and scan
    # the table before the first record is compared.
    progress.start("Counting", None)
    summary = verify(store, settings)
    deep = DeepReport(allow_table_edits=allow_table_edits)
    flight = Flight()
    entries = _Entries(progress, flight)
    source = source_mod.open_source(store, settings)
    runner = runner or make_runner(settings.workers)
    seen: dict[str, int] = {}
    stop = Stop(flight.count, progress.say, writes=False)
    with stop.handling():
        try:
            progress.start("Checking", summary.s3_records)  # once Ctrl-C is handled
            for index, record in source_mod.iter_records(store, source):
                if stop.requested:
                    stop.cut = True
                    break
                if on_record is not None:
                    on_record(index, record)
                found = _comparable(index, record, seen, summary.table_exists)
                if isinstance(found, DeepEntry):
                    entries.add(found, None)
                else:
                    task = _checker(store, settings, index, record, entries, stop)
                    flight.hand()
                    runner.submit(task, entries.done(index, found))
        except KeyboardInterrupt:
            stop.signal()  # raised where no handler could be set (not the main thread)
            stop.cut = True
        finally:
            runner.drain()
    if stop.early:
        raise errors.Interrupted(
            f"Interrupted: verify --deep checked {len(entries.found)} of {summary.s3_records} "
            "records before the stop; nothing was changed",
            AGAIN,
        )
    progress.start("Looking for orphans", None)
    past = history(store, source.bucket, settings.state_dir)
    if name_sides:
        deep.entries = _name_sides(store, settings, entries, past)
    else:
        deep.entries = sorted((e for e, _ in entries.found), key=lambda e: e.index)
    if on_entry is not None:
        for entry in deep.entries:
            on_entry(entry)
    if summary.table_exists:
        _extras(store, settings, set(seen), past, deep)
    deep.seconds = time.monotonic() - began
    return summary, deep


class _Entries:
    """Collects the entries the pool's threads produce, and what naming a side needs;
    moves the bar and counts the records in flight (for Ctrl-C)."""

    def __init__(self, progress: Progress, flight: Flight) -> None:
        self.found: list[tuple[DeepEntry, Comparison | None]] = []
        # The source's units of records whose item is missing: did the source change
        # since the app deleted it?
        self.gone: dict[str, Units] = {}
        self.lock = threading.Lock()
        self.progress = progress
        self.flight = flight

    def add(self, entry: DeepEntry, compared: Comparison | None) -> None:
        with self.lock:
            self.found.append((entry, compared))
            self.progress.advance(
                images=entry.images, nbytes=entry.image_bytes, failed=entry.status != "="
            )

    def done(
        self, index: int, rid: str
    ) -> Callable[[Future[tuple[DeepEntry, Comparison | None] | None]], None]:
        def done(future: Future[tuple[DeepEntry, Comparison | None] | None]) -> None:
            exc = future.exception()
            if exc is None:
                found = future.result()
                if found is not None:  # None: left unchecked by a second Ctrl-C
                    self.add(*found)
            else:
                self.add(DeepEntry(index, rid, "!", (f"{type(exc).__name__}: {exc}",)), None)
            self.flight.end()

        return done


def _comparable(
    index: int, record: Any, seen: dict[str, int], table_exists: bool
) -> DeepEntry | str:
    """The record's id when it can be compared with an item; else its entry, saying why not."""
    try:
        rid = record_id(record)
    except RecordError as exc:
        shown = record.get("id") if isinstance(record, dict) else None
        return DeepEntry(index, None if shown is None else str(shown), "!", (str(exc),))
    if rid in seen:
        reason = f"duplicate id: the record at index {seen[rid]} is the one compared"
        return DeepEntry(index, rid, "!", (reason,))
    seen[rid] = index
    if not table_exists:
        return DeepEntry(index, rid, "-", ("the table does not exist",))
    return rid


def _checker(
    store: Store, settings: Settings, index: int, record: Any, entries: _Entries, stop: Stop
) -> Callable[[], tuple[DeepEntry, Comparison | None] | None]:
    def task() -> tuple[DeepEntry, Comparison | None] | None:
        if stop.now:
            entries.flight.leave()
            return None
        entry, compared = check_record(store, settings, index, record)
        if entry.status == "-" and entry.id is not None:
            try:
                units = record_units(transform(record, RunStamp("deep", "")))
            except RecordError:
                return entry, compared  # it cannot be migrated: said so elsewhere
            with entries.lock:
                entries.gone[entry.id] = units
        return entry, compared

    return task


def check_record(
    store: Store, settings: Settings, index: int, record: dict[str, Any]
) -> tuple[DeepEntry, Comparison | None]:
    """Compare one source record with its item and image objects."""
    rid = record_id(record)
    item = store.get_item(settings.table, rid)
    if item is None:
        return DeepEntry(index, rid, "-"), None
    compared = compare_record(store, settings.require_bucket(), record, item)
    if compared.unchecked:
        return DeepEntry(index, rid, "!", (compared.unchecked,)), None
    entry = DeepEntry(
        index,
        rid,
        "*" if compared.differences else "=",
        tuple(d.text for d in compared.differences),
        compared.warnings,
        images=compared.images,
        image_bytes=compared.image_bytes,
        images_ok=compared.images_ok,
        fields_ok=compared.fields_ok,
    )
    return entry, compared if compared.differences else None


def _name_sides(
    store: Store,
    settings: Settings,
    entries: _Entries,
    past: History,
) -> list[DeepEntry]:
    """Say, for each difference, which side changed since the migration. Reads the
    baselines of the records that differ, and only theirs."""
    differing = {e.id: c for e, c in entries.found if c is not None and e.id is not None}
    needs: dict[str, set[str]] = {}
    for rid, compared in differing.items():
        for run in runs_of(compared.item):
            needs.setdefault(run, set()).add(rid)
    for rid in entries.gone:
        last = past.last_wrote.get(rid)
        if rid in past.written and last is not None:
            needs.setdefault(last, set()).add(rid)
    masked = {rid for rid, c in differing.items() if "maskedFields" in c.item}
    baselines = read_baselines(store, settings, needs, past, masked=masked) if needs else None
    out = []
    for entry, found in entries.found:
        if entry.status == "-" and not entry.details and entry.id in past.written:
            entry = _deleted_in_table(entry, entries.gone.get(entry.id), baselines, past)
        elif found is not None and baselines is not None:
            entry = _named(entry, found, baselines)
        out.append(entry)
    return sorted(out, key=lambda e: e.index)


def _deleted_in_table(
    entry: DeepEntry, source: Units | None, baselines: Baselines | None, past: History
) -> DeepEntry:
    """An item a run wrote and the app deleted: allowed as the app's edit unless the
    source changed since the last run that wrote the record (then `sync` reports it)."""
    rid = str(entry.id)
    last = past.last_wrote.get(rid)
    copy = baselines.by_run.get(rid, {}).get(last) if baselines and last else None
    if source is not None and copy is not None and source != copy:
        edited = (
            "deleted in DynamoDB since the migration, and changed in the source since: "
            "see `khpl-migrate sync`",
        )
        return replace(entry, details=edited, sides=("both",))
    gone = ("deleted in DynamoDB since the migration (the app, or damage)",)
    return replace(entry, details=gone, sides=("table",))


def _named(entry: DeepEntry, compared: Comparison, baselines: Any) -> DeepEntry:
    item = compared.item
    baseline = baselines.of(item, compared.source)
    if baseline is None:
        why = baselines.problems.get(entry.id, "a run it needs left no baseline")
        note = f"the migration's baseline could not be read ({why})"
        return replace(entry, details=(*entry.details, note))
    units = item_units(item)
    details, sides = [], []
    for difference in compared.differences:
        word, short = _side_of(difference, baseline, compared.source, units, item)
        details.append(f"{difference.text} ({word})")
        sides.append(short)
    return replace(entry, details=tuple(details), sides=tuple(dict.fromkeys(sides)))


def _side_of(
    difference: Difference,
    baseline: Any,
    source: Any,
    units: Any,
    item: Any,
) -> tuple[str, str]:
    if difference.damage:
        return DAMAGE_SIDE, "damage"
    if difference.replaced:
        return REPLACED_SIDE, "table"
    unit = difference.unit
    known = unit in baseline
    found = side(baseline.get(unit), source.get(unit), units.get(unit), known=known)
    if found is Side.NO_BASELINE or provenance(item, unit) is None:
        return "no run of the tool wrote it", "table"
    short = {Side.SOURCE: "source", Side.TABLE: "table", Side.CONFLICT: "both"}.get(found, "table")
    return _WORDS.get(found, TABLE_SIDE), short


def _extras(
    store: Store, settings: Settings, source_ids: set[str], past: History, deep: DeepReport
) -> None:
    """Image objects no item references, and migrated items no source record explains."""
    bucket = settings.require_bucket()
    referenced: set[str] = set()
    in_table: set[str] = set()
    for item in store.scan(
        settings.table, ("id", "migratedFrom", "migrationRunId", "imageUploadResults")
    ):
        in_table.add(str(item["id"]))
        referenced |= {str(ref["s3Key"]) for ref in references(item).values()}
        in_source = str(item["id"]) in source_ids
        if (
            item.get("migratedFrom") == MIGRATED_FROM
            and item.get("migrationRunId")
            and not in_source
        ):
            deep.unexplained.append(str(item["id"]))
    superseded = _superseded(past)
    for info in store.list_objects(bucket, IMAGE_PREFIX):
        if info.key in referenced:
            continue
        if info.key in superseded:
            deep.superseded.append(info.key)
            continue
        head = store.head_object(bucket, info.key)
        owner = record_of_image_key(info.key)
        if head is not None and head.run_id is None:
            deep.not_written.append(info.key)
        elif owner in past.written and owner not in in_table:
            # The app deleted its item: an orphan unless --allow-table-edits accepts that,
            # noted either way so that the check can say the flag would.
            deep.of_deleted_items.append(info.key)
            if not deep.allow_table_edits:
                deep.orphans.append(info.key)
        else:
            deep.orphans.append(info.key)
    for found in (
        deep.orphans,
        deep.unexplained,
        deep.superseded,
        deep.not_written,
        deep.of_deleted_items,
    ):
        found.sort()


def _superseded(past: History) -> set[str]:
    """The image keys a sync keeps on purpose: those whose reference it moved away, those
    of records it deleted, and the new ones it uploaded for a change the app got to
    first. The intent lines count: a run cut off after its write has no outcome line."""
    keys: set[str] = set()
    for run in past.runs.values():
        for line in run.records:
            keys.update(line.superseded)
        for intent in run.intents:
            for move in intent.images.values():
                keys.update(str(ref["s3Key"]) for ref in (move.from_, move.to) if ref)
            deleted = (intent.item or {}).get("imageUploadResults") or {}
            keys.update(str(ref["s3Key"]) for ref in deleted.values() if ref)
    return keys
