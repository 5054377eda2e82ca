"""`sync`'s plan: every record judged, reading only.

The whole source is read and validated first (nothing is written before), the
table read consistently, the backups the baselines need streamed once each, and
every referenced image object checked; each record then gets its verdict
(`threeway.judge`) and, for deletions, the guard of --delete and --max-delete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.limits import MAX_ITEM_BYTES, attribute_sizes
from khpl_migrate.core.ownership import object_is_tools
from khpl_migrate.core.threeway import Baseline, RecordState, Verdict, judge
from khpl_migrate.core.transform import FirstIds, RunStamp, describe_id, record_id, transform
from khpl_migrate.core.units import (
    Unit,
    Units,
    is_tool_key,
    nested_groups,
    record_units,
    references,
)
from khpl_migrate.core.units import digest as digest_of
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.baseline import (
    Baselines,
    History,
    backups_needed,
    history,
    read_baselines,
)
from khpl_migrate.kernel.clock import new_stamp
from khpl_migrate.kernel.heads import Heads
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Runner, make_runner
from khpl_migrate.kernel.source import Digest, Source
from khpl_migrate.settings import Settings
from khpl_migrate.sync.model import Damage, Deletion, ItemView, SyncEntry, SyncOptions, SyncPlan


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
    items = {
        str(item["id"]): ItemView(item) for item in store.scan(settings.table, consistent=True)
    }
    # Records new in the source are masked as the migrated ones were, flag or not: an
    # operator who forgets --mask-aadhaar on a sync must not store full numbers.
    mask_new = options.mask_aadhaar or any(seen.masked for seen in items.values() if seen.tool)
    past = history(store, source.bucket, settings.state_dir)
    _require_a_run(settings.table, items, past)
    stamp, started = new_stamp(mask_aadhaar=mask_new)
    digest = Digest()
    read = _read_source(store, source, digest, items, mask_new, progress)
    baselines = read_baselines(
        store,
        settings,
        backups_needed(
            {rid: seen.slim for rid, seen in items.items() if seen.tracked},
            [rid for rid in read.order if rid not in items],
            past,
        ),
        past,
        masked={rid for rid, seen in items.items() if seen.masked}
        | ({rid for rid in read.order if rid not in items} if mask_new else set()),
        known={rid: (whole, read.units[rid]) for rid, whole in read.whole.items()},
    )
    objects = _check_images(
        store, source.bucket, items, read, runner or make_runner(settings.workers), set(past.runs)
    )
    judged = [
        _entry(rid, read, items, baselines, past, objects)
        for rid in [*read.order, *(rid for rid in items if rid not in read.present)]
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


def _require_a_run(table: str, items: Mapping[str, ItemView], past: History) -> None:
    """Sync carries edits over after a migration; on a table no run has written it would
    migrate every record without the plan, the review and the guide's order of steps."""
    if any(seen.tracked for seen in items.values()):
        return
    if any(run.table == table for run in past.runs.values()):
        return
    raise errors.FirstMigration(
        f"No run of khpl-migrate has written table {table}: this is a first migration, "
        "not a sync; nothing was written",
        "run `khpl-migrate migrate` (the plan, writing nothing), then `khpl-migrate migrate "
        "--apply` (it backs up the source first), then `khpl-migrate verify --deep` and "
        "`khpl-migrate review`; sync is for the edits made after that",
    )


@dataclass
class _Read:
    """The source, as sync needs it: units and images of each record, in order."""

    units: dict[str, Units] = field(default_factory=dict)
    whole: dict[str, bytes] = field(default_factory=dict)  # id -> digest of the whole record
    index: dict[str, int] = field(default_factory=dict)
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> name -> sha256
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # id -> attribute -> bytes
    groups: dict[str, dict[Unit, str]] = field(default_factory=dict)  # id -> nested images
    order: list[str] = field(default_factory=list)
    unusable: list[SyncEntry] = field(default_factory=list)
    # Every id the source has, usable or not: an item whose record cannot be read now
    # is not one whose record left the source (it must never be deleted for that).
    present: set[str] = field(default_factory=set)


def _read_source(
    store: Store,
    source: Source,
    digest: Digest,
    items: Mapping[str, ItemView],
    mask_new: bool,
    progress: Progress,
) -> _Read:
    """Read and validate the whole source (nothing is written before), keeping digests only."""
    read = _Read()
    ids = FirstIds("synced")
    progress.start("Reading the source", source.info.size, by_bytes=True)
    for index, record in source_mod.iter_records(store, source, digest):
        progress.advance(position=digest.read)
        try:
            rid = record_id(record)
            seen = items.get(rid)
            masked = seen.masked if seen is not None else mask_new
            done = transform(record, RunStamp("sync", "", mask_aadhaar=masked))
            ids.claim(rid, index)
        except RecordError as exc:
            shown = describe_id(record)
            read.present.add(shown or "")
            read.present |= _spellings(record)
            read.unusable.append(
                SyncEntry(shown or f"#{index}", index, RecordState.UNUSABLE, reason=str(exc))
            )
            continue
        read.present.add(rid)
        read.units[rid] = record_units(done)
        read.whole[rid] = digest_of(record)
        read.index[rid] = index
        read.images[rid] = {image.name: image.sha256 for image in done.images}
        read.sizes[rid] = attribute_sizes(done.item)
        if nested := nested_groups(done.item):
            read.groups[rid] = nested
        read.order.append(rid)
    progress.finish()
    return read


def _spellings(record: Any) -> set[str]:
    """An id the source holds as a JSON number, as the string ids it may have been: the
    item of "12345" is not deleted in the source because the source now says 12345."""
    rid = record.get("id") if isinstance(record, dict) else None
    if isinstance(rid, bool) or not isinstance(rid, int | float | Decimal):
        return set()
    number = Decimal(str(rid))
    found = {str(rid), str(number), format(number, "f")}
    if number == number.to_integral_value():
        found.add(str(int(number)))
    return found


@dataclass
class _Objects:
    """What the referenced image objects hold: damage (missing objects the tool wrote) and
    the images whose object another writer replaced (the app's), by id."""

    damage: dict[str, tuple[Damage, ...]] = field(default_factory=dict)
    replaced: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _check_images(
    store: Store,
    bucket: str,
    items: Mapping[str, ItemView],
    read: _Read,
    runner: Runner,
    tool_runs: set[str],
) -> _Objects:
    """Every image object an item references under one of the tool's keys: there, and
    still the tool's (a run's tag, the reference's bytes)?"""
    damage: dict[str, list[Damage]] = {}
    replaced: dict[str, list[str]] = {}
    heads = Heads(store, bucket)

    def check(rid: str, name: str, entry: dict[str, Any]) -> Callable[[], Damage | str | None]:
        def task() -> Damage | str | None:
            key = str(entry["s3Key"])
            state = heads.state(key)
            if state is None:
                # Only a missing object is damage: put back with If-None-Match, creating
                # and never replacing.
                repairable = read.images.get(rid, {}).get(name) == entry["sha256"]
                return Damage(name, key, "the object is missing", None, repairable)
            if not object_is_tools(state, tool_runs, str(entry["sha256"])):
                return name  # the app replaced it (a photo updated in place): the app's
            return None

        return task

    def done_for(rid: str) -> Callable[[Future[Damage | str | None]], None]:
        def done(future: Future[Damage | str | None]) -> None:
            found = future.result()
            if isinstance(found, Damage):
                damage.setdefault(rid, []).append(found)
            elif found is not None:
                replaced.setdefault(rid, []).append(found)

        return done

    try:
        for rid, seen in items.items():
            for name, entry in references(seen.slim).items():
                # A reference with no hash, or naming a key the tool never gives, is the
                # app's: there is nothing of the tool's to hold.
                if entry.get("sha256") and is_tool_key(rid, name, entry):
                    runner.submit(check(rid, name, entry), done_for(rid))
    finally:
        runner.drain()
    return _Objects(
        {rid: tuple(sorted(d, key=lambda x: x.name)) for rid, d in damage.items()},
        {rid: tuple(sorted(names)) for rid, names in replaced.items()},
    )


def _entry(
    rid: str,
    read: _Read,
    items: Mapping[str, ItemView],
    baselines: Baselines,
    past: History,
    objects: _Objects,
) -> SyncEntry | None:
    seen = items.get(rid)
    damaged = objects.damage.get(rid, ())
    replaced = objects.replaced.get(rid, ())
    source = read.units.get(rid)
    index = read.index.get(rid)
    if seen is None:
        if rid not in past.written:
            return SyncEntry(rid, index, RecordState.NEW)
        last = past.last_wrote.get(rid)
        copy = baselines.by_run.get(rid, {}).get(last) if last else None
        if copy is None:
            why = baselines.problems.get(rid, "no run's copy of it is known")
            return SyncEntry(rid, index, RecordState.NO_BASELINE, reason=why)
        gone = judge(source, None, copy, tool_item=False, written_before=True)
        return SyncEntry(rid, index, gone.kind, gone.sides)
    if source is None and not seen.tool:
        return None  # the app's own registration: not sync's business
    baseline: Baseline | None = {}
    if seen.tracked:
        baseline = baselines.of(seen.slim, [*(source or {}), *seen.units])
    if baseline is None:
        why = baselines.problems.get(rid, "a run it needs left no baseline")
        return SyncEntry(rid, index, RecordState.NO_BASELINE, reason=why, damaged=damaged)
    groups = nested_groups(seen.slim) | read.groups.get(rid, {})
    units = seen.with_replaced(replaced)
    verdict: Verdict = judge(source, units, baseline, tool_item=seen.tool, groups=groups)
    size = _size_after(seen.sizes, read.sizes.get(rid, {}), verdict.carry)
    if size > MAX_ITEM_BYTES:
        why = (
            f"the item would be about {size:,} bytes after the update; DynamoDB's limit is "
            f"400 KB ({MAX_ITEM_BYTES:,} bytes). Fix: make the record smaller in the source "
            "(or the app's fields of the item), run again"
        )
        return SyncEntry(rid, index, RecordState.UNUSABLE, reason=why, damaged=damaged)
    return SyncEntry(rid, index, verdict.kind, verdict.sides, damaged=damaged, replaced=replaced)


# What a carried unit adds besides its value: its run in migrationFieldRuns or
# migrationImageRuns (name, run id, map overhead), and a content-derived key's suffix.
_RUN_ENTRY_BYTES = 40
_VERSION_KEY_BYTES = 17


def _size_after(now: Mapping[str, int], source: Mapping[str, int], carry: list[Unit]) -> int:
    """The item's size once the source's edits in `carry` are carried over (an estimate
    that errs large: a field's old value and its new one are swapped whole)."""
    size = sum(now.values())
    for kind, name in carry:
        size += _RUN_ENTRY_BYTES + len(name.encode("utf-8"))
        if kind == "field":
            size += source.get(name, 0) - now.get(name, 0)
        else:
            size += _VERSION_KEY_BYTES
    if any(kind == "image" for kind, _ in carry):
        size += max(0, source.get("imageUploadResults", 0) - now.get("imageUploadResults", 0))
    return size


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
            e.kind is RecordState.DELETED_IN_SOURCE
            or (e.kind is RecordState.DELETE_CONFLICT and options.take == "source")
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
