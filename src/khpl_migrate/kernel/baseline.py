"""The baseline of a record: each unit as the run that last wrote it wrote it.

Nothing new with personal data is stored for it. An item names the run that
created it (`migrationRunId`) and, for what a sync run wrote since, the run per
field and per image (`migrationFieldRuns`, `migrationImageRuns`); each run's
manifest names the backup of the source it took before writing; that backup
holds the record as the run read it, and the run's line of the record says where
(offset and length). So the baseline is rebuilt from ranged GETs of just those
records (neighbours coalesced), keeping only the units' digests; a run of 0.1.0
located nothing, and its backup is streamed, once.

It also knows which records a run of the tool wrote and no rollback undid
since, so that a record the app deleted from the table is not written again.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.layout import backup_key_of_run
from khpl_migrate.core.threeway import Baseline
from khpl_migrate.core.transform import RunStamp, Transformed, record_id, transform
from khpl_migrate.core.units import (
    Unit,
    Units,
    digest,
    item_units,
    provenance,
    record_units,
    runs_of,
)
from khpl_migrate.kernel.manifest import Manifest, Outcome
from khpl_migrate.kernel.runs import list_runs, rollback_records
from khpl_migrate.kernel.source import Source, iter_records
from khpl_migrate.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class History:
    """Every run recorded in the bucket, and the records runs wrote and did not undo."""

    runs: dict[str, Manifest] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    # id -> the last run that wrote to its record: whose copy is the baseline of a record
    # whose item is gone (the item, which names its runs unit by unit, cannot say).
    last_wrote: dict[str, str] = field(default_factory=dict)


def history(store: Store, bucket: str, state_dir: Path | None = None) -> History:
    """The runs by id, and the ids whose item a run created, in the order things happened:
    a run's items are written, a rollback's deleted items and a sync's deletions are not.

    Runs cut off before their manifest reached S3 are read from `state_dir`.
    """
    found = History()
    events: list[tuple[str, str, str]] = []  # (when, add or remove, id)
    for run in list_runs(store, bucket, state_dir):
        found.runs[run.run_id] = run
        for line in run.records:
            rid = line.id
            if rid is None:
                continue
            if line.item_written:
                events.append((run.started, "add", rid))
            if line.item_written or line.outcome in _MOVES_BASELINE:
                found.last_wrote[rid] = run.run_id
            if line.outcome == Outcome.DELETED:
                events.append((run.started, "remove", rid))
    for when, rid in rollback_records(store, bucket, state_dir, found.runs):
        events.append((when, "remove", rid))
    for _, change, rid in sorted(events):
        if change == "add":
            found.written.add(rid)
        else:
            found.written.discard(rid)
    return found


# A sync's outcomes after which the record's baseline is that run's copy of it.
_MOVES_BASELINE = frozenset({Outcome.UPDATED, Outcome.ADOPTED, Outcome.SETTLED})


def backups_needed(
    items: Mapping[str, Mapping[str, Any]], gone: Iterable[str], past: History
) -> dict[str, set[str]]:
    """Which ids each run's backup must give (run -> ids): every item a run wrote needs the
    copies of the runs that wrote it, unit by unit; a record whose item a run wrote and
    the app deleted (`gone`), the last such run's. Sync's plan and `verify --deep` ask."""
    needs: dict[str, set[str]] = {}
    for rid, item in items.items():
        for run in runs_of(item):
            needs.setdefault(run, set()).add(rid)
    for rid in gone:
        last = past.last_wrote.get(rid)
        if rid in past.written and last is not None:
            needs.setdefault(last, set()).add(rid)
    return needs


@dataclass
class Baselines:
    """Per record, the units of each run's copy of it; and why, where it could not be read."""

    by_run: dict[str, dict[str, Units]] = field(default_factory=dict)  # id -> run -> units
    problems: dict[str, str] = field(default_factory=dict)  # id -> why no baseline

    def of(self, item: Mapping[str, Any], others: Iterable[Unit]) -> Baseline | None:
        """The baseline of `item`'s record, over its own units, `others` (the source's, and
        the whole item's where `item` is only its slim view) and every unit a run wrote;
        None where a run it needs could not be read."""
        rid = str(item["id"])
        if rid in self.problems:
            return None
        per_run = self.by_run.get(rid, {})
        units = set(others) | {unit for units in per_run.values() for unit in units}
        units |= set(item_units(item))
        out: dict[Unit, bytes | None] = {}
        for unit in units:
            run = provenance(item, unit)
            if run is None:
                continue  # no run of the tool wrote it: no baseline
            if run not in per_run:
                return None
            out[unit] = per_run[run].get(unit)
        return out


def read_baselines(
    store: Store,
    settings: Settings,
    needs: Mapping[str, set[str]],
    past: History,
    *,
    masked: set[str] | None = None,
    known: Mapping[str, tuple[bytes, Units]] | None = None,
) -> Baselines:
    """Stream each needed run's backup once (`needs`: run -> the ids it must give) and keep
    the units of those records. `masked` are the ids stored with --mask-aadhaar.

    `known` gives, by id, the digest of the whole source record now and its units: a
    backup's copy with the same digest has the same units, and is not transformed again
    (most records are unchanged since the run; decoding their images twice would double
    the CPU a sync spends)."""
    found = Baselines()
    masked = masked or set()

    def keep(rid: str, run_id: str, record: Any) -> None:
        same = (known or {}).get(rid)
        if same is not None and digest(record) == same[0]:
            units = same[1]
        else:
            stamp = RunStamp("baseline", "", mask_aadhaar=rid in masked)
            units = record_units(transform(record, stamp))
        found.by_run.setdefault(rid, {})[run_id] = units

    found.problems = _stream(store, settings, needs, past, keep)
    return found


def read_copies(
    store: Store,
    settings: Settings,
    needs: Mapping[str, set[str]],
    past: History,
    *,
    masked: set[str] | None = None,
) -> tuple[dict[tuple[str, str], Transformed], dict[str, str]]:
    """The records themselves, as each run's backup holds them, by (id, run); and why
    some could not be read. For putting values back (rollback of a sync): few records."""
    copies: dict[tuple[str, str], Transformed] = {}

    def keep(rid: str, run_id: str, record: Any) -> None:
        stamp = RunStamp("baseline", "", mask_aadhaar=rid in (masked or set()))
        copies[(rid, run_id)] = transform(record, stamp)

    problems = _stream(store, settings, needs, past, keep)
    return copies, problems


Keep = Callable[[str, str, Any], None]  # (id, run, the record as its backup holds it)


def _stream(
    store: Store,
    settings: Settings,
    needs: Mapping[str, set[str]],
    past: History,
    keep: Keep,
) -> dict[str, str]:
    problems: dict[str, str] = {}
    bucket = settings.require_bucket()
    for run_id, ids in sorted(needs.items()):
        manifest = past.runs.get(run_id)
        # A run killed before its manifest was uploaded: its id names its backup.
        key = (manifest.header.backup_key if manifest else None) or ""
        key = key or backup_key_of_run(settings.source_key, run_id) or ""
        if not key:
            _give_up(problems, ids, f"run {run_id} left no manifest naming its backup")
            continue
        info = store.head_object(bucket, key)
        if info is None:
            _give_up(problems, ids, f"the backup {key} of run {run_id} is gone")
            continue
        path = manifest.header.records_path if manifest else settings.records_path
        wanted = set(ids)
        try:
            if manifest is not None:  # the records its lines locate: by range
                _by_range(store, Source(bucket, info, path), manifest, wanted, keep, problems)
            if wanted:  # the rest (a run of 0.1.0 located none): the backup streamed
                for _, record in iter_records(store, Source(bucket, info, path)):
                    _take(record, run_id, wanted, keep, problems)
                    if not wanted:
                        # The rest is not needed: the backup's checksum was checked when made.
                        break
        except errors.SourceInvalid as exc:
            _give_up(problems, wanted, f"the backup {key} of run {run_id} cannot be read ({exc})")
            continue
        _give_up(problems, wanted, f"the backup {key} of run {run_id} has no such record")
    return problems


# Ranges closer than this are read in one GET: a round trip costs about as much as
# this many bytes on a broadband line (20 ms at 50 Mbps).
COALESCE_GAP = 128 * 1024
COALESCE_MAX = 16 * 1024 * 1024  # and no GET holds more than this
STREAM_SHARE = 0.5  # above this share of the backup wanted, it is streamed instead


def _by_range(
    store: Store,
    backup: Source,
    run: Manifest,
    wanted: set[str],
    keep: Keep,
    problems: dict[str, str],
) -> None:
    """The wanted records whose run's lines say where they lie: ranged GETs of the backup,
    neighbours coalesced; each copy is taken only when it is the record asked for."""
    spans = sorted(_located(run, wanted))
    if sum(length for _, length, _ in spans) > backup.info.size * STREAM_SHARE:
        return  # most of the backup: one streamed GET reads it at the link's full speed
    for group in _coalesced(spans):
        start, stop = group[0][0], group[-1][0] + group[-1][1]
        data = store.read_range(backup.bucket, backup.info, start, stop)
        for offset, length, rid in group:
            record = _parsed(data[offset - start : offset - start + length])
            if record is not None and _id_of(record) == rid:
                _take(record, run.run_id, wanted, keep, problems)
            # else: the line does not locate this record; the streamed backup will


def _located(run: Manifest, wanted: set[str]) -> list[tuple[int, int, str]]:
    """(offset, length, id) of each wanted record, as the run's first line of it says."""
    found: dict[str, tuple[int, int]] = {}
    for line in run.records:
        if line.id in wanted and line.at is not None and line.id not in found:
            found[line.id] = line.at
    return [(offset, length, rid) for rid, (offset, length) in found.items()]


def _coalesced(spans: list[tuple[int, int, str]]) -> list[list[tuple[int, int, str]]]:
    groups: list[list[tuple[int, int, str]]] = []
    for span in spans:
        if groups:
            first, last = groups[-1][0], groups[-1][-1]
            end = last[0] + last[1]
            if span[0] - end <= COALESCE_GAP and span[0] + span[1] - first[0] <= COALESCE_MAX:
                groups[-1].append(span)
                continue
        groups.append([span])
    return groups


def _parsed(raw: bytes) -> Any:
    """One record's bytes as `iter_records` gives it (numbers exact), or None."""
    try:
        return next(ijson.items(io.BytesIO(raw), "", use_float=False), None)
    except ijson.JSONError:
        return None


def _id_of(record: Any) -> str | None:
    try:
        return record_id(record)
    except errors.RecordError:
        return None


def _take(record: Any, run_id: str, wanted: set[str], keep: Keep, problems: dict[str, str]) -> None:
    try:
        rid = record_id(record)
    except errors.RecordError:
        return
    if rid not in wanted:
        return
    wanted.discard(rid)  # a duplicate id further on: the first one is the one migrated
    try:
        keep(rid, run_id, record)
    except errors.RecordError as exc:
        problems[rid] = f"run {run_id}'s copy of the record cannot be read: {exc}"


def _give_up(problems: dict[str, str], ids: Iterable[str], why: str) -> None:
    for rid in ids:
        problems.setdefault(rid, why)
