"""`verify --deep`: every field and every image byte, record by record, naming the side.

`deep_verify` proves the guide's "no data loss" rather than counting: for every
source record it rebuilds the item the migration should have written (the same
pure `transform`, with the item's own run id and date) and compares every field
and image (`compare.py`), like rclone's `check` and restic's `check
--read-data`. It reports one line per record in rclone's `--combined` notation.

Each difference then says which side changed since the migration (`sides.py`),
and the sweep looks for image objects no item references (`sweep.py`); the
entries and the report they make are `model.py`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.transform import FirstIds, RunStamp, record_id, transform
from khpl_migrate.core.units import Units, record_units
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.baseline import history
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Flight, Runner, Stop, make_runner
from khpl_migrate.kernel.source import Source
from khpl_migrate.settings import Settings
from khpl_migrate.verify.compare import Comparison, compare_record
from khpl_migrate.verify.model import DeepEntry, DeepReport
from khpl_migrate.verify.sides import name_sides as name_sides_of
from khpl_migrate.verify.status import VerifyReport, verify
from khpl_migrate.verify.sweep import sweep

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
    source = source_mod.open_source(store, settings)
    entries = _Entries(progress, Flight())
    seen = _compare_all(store, settings, source, summary, entries, runner, on_record)
    progress.start("Looking for orphans", None)
    past = history(store, source.bucket, settings.state_dir)
    if name_sides:
        deep.entries = name_sides_of(store, settings, entries.found, entries.gone, past)
    else:
        deep.entries = sorted((e for e, _ in entries.found), key=lambda e: e.index)
    if on_entry is not None:
        for entry in deep.entries:
            on_entry(entry)
    if summary.table_exists:
        sweep(store, settings, seen, past, deep)
    deep.seconds = time.monotonic() - began
    return summary, deep


def _compare_all(
    store: Store,
    settings: Settings,
    source: Source,
    summary: VerifyReport,
    entries: _Entries,
    runner: Runner | None,
    on_record: Callable[[int, Any], None] | None,
) -> set[str]:
    """Every source record compared on the pool; Ctrl-C stops it (`runner.Stop`). The ids
    seen."""
    flight, progress = entries.flight, entries.progress
    runner = runner or make_runner(settings.workers)
    ids = FirstIds("compared")
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
                found = _comparable(index, record, ids, summary.table_exists)
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
    return ids.ids()


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


def _comparable(index: int, record: Any, ids: FirstIds, table_exists: bool) -> DeepEntry | str:
    """The record's id when it can be compared with an item; else its entry, saying why not."""
    try:
        rid = record_id(record)
    except RecordError as exc:
        shown = record.get("id") if isinstance(record, dict) else None
        return DeepEntry(index, None if shown is None else str(shown), "!", (str(exc),))
    try:
        ids.claim(rid, index)
    except RecordError as exc:
        return DeepEntry(index, rid, "!", (str(exc),))
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
