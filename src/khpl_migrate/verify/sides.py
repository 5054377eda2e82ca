"""Each difference `verify --deep` found, with the side that changed since the migration.

From the record's baseline (`kernel/baseline.py`: the record as the tool last
wrote it): the source (run `sync`), DynamoDB (the app, or damage), or both; an
image object that does not hold what its reference says is damage in S3. The
judgement is sync's own (`core/threeway.py`), so the two never disagree about a
record; the baselines are read only for the records that differ, so a clean
check costs nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core.threeway import Baseline, RecordState, Side, judge, side
from khpl_migrate.core.units import Units, item_units, provenance
from khpl_migrate.kernel.baseline import Baselines, History, backups_needed, read_baselines
from khpl_migrate.settings import Settings
from khpl_migrate.verify.compare import Comparison, Difference
from khpl_migrate.verify.model import DeepEntry

SOURCE_SIDE = "changed in the source since the migration: run `khpl-migrate sync`"
TABLE_SIDE = "changed in DynamoDB since the migration: the app, or damage"
BOTH_SIDES = "changed in the source and in DynamoDB since the migration: see `khpl-migrate sync`"
DAMAGE_SIDE = "damage in S3: `khpl-migrate sync --repair-images` puts the source's bytes back"
REPLACED_SIDE = "replaced in S3 since the migration by another writer: the app's, never repaired"
_WORDS = {Side.SOURCE: SOURCE_SIDE, Side.TABLE: TABLE_SIDE, Side.CONFLICT: BOTH_SIDES}


def name_sides(
    store: Store,
    settings: Settings,
    found: list[tuple[DeepEntry, Comparison | None]],
    gone: Mapping[str, Units],
    past: History,
) -> list[DeepEntry]:
    """Say, for each difference, which side changed since the migration. Reads the
    baselines of the records that differ, and only theirs. `gone`: the source's units of
    the records whose item is missing."""
    differing = {e.id: c for e, c in found if c is not None and e.id is not None}
    needs = backups_needed({rid: c.item for rid, c in differing.items()}, gone, past)
    masked = {rid for rid, c in differing.items() if "maskedFields" in c.item}
    baselines = read_baselines(store, settings, needs, past, masked=masked) if needs else None
    out = []
    for entry, compared in found:
        if entry.status == "-" and not entry.details and entry.id in past.written:
            entry = _deleted_in_table(entry, gone.get(str(entry.id)), baselines, past)
        elif compared is not None and baselines is not None:
            entry = _named(entry, compared, baselines)
        out.append(entry)
    return sorted(out, key=lambda e: e.index)


def _deleted_in_table(
    entry: DeepEntry, source: Units | None, baselines: Baselines | None, past: History
) -> DeepEntry:
    """An item a run wrote and the app deleted: allowed as the app's edit unless the
    source changed since the last run that wrote the record (then `sync` reports it):
    sync's own verdict on the record."""
    rid = str(entry.id)
    last = past.last_wrote.get(rid)
    copy = baselines.by_run.get(rid, {}).get(last) if baselines and last else None
    if source is not None and copy is not None:
        verdict = judge(source, None, dict(copy), tool_item=False, written_before=True)
        if verdict.kind is RecordState.TABLE_DELETE_CONFLICT:
            edited = (
                "deleted in DynamoDB since the migration, and changed in the source since: "
                "see `khpl-migrate sync`",
            )
            return replace(entry, details=edited, sides=("both",))
    gone = ("deleted in DynamoDB since the migration (the app, or damage)",)
    return replace(entry, details=gone, sides=("table",))


def _named(entry: DeepEntry, compared: Comparison, baselines: Baselines) -> DeepEntry:
    item = compared.item
    baseline = baselines.of(item, compared.source)
    if baseline is None:
        why = baselines.problems.get(str(entry.id), "a run it needs left no baseline")
        note = f"the migration's baseline could not be read ({why})"
        return replace(entry, details=(*entry.details, note))
    units = item_units(item)
    details, sides = [], []
    for difference in compared.differences:
        word, short = _side_of(difference, baseline, compared.source, units, item)
        details.append(f"{difference.text} ({word})")
        sides.append(short)
    return replace(entry, details=tuple(details), sides=tuple(dict.fromkeys(sides)))


# A unit's side, as an entry's `sides` codes it (what --allow-table-edits judges).
_SHORT = {Side.SOURCE: "source", Side.TABLE: "table", Side.CONFLICT: "both"}


def _side_of(
    difference: Difference,
    baseline: Baseline,
    source: Units,
    units: Units,
    item: Mapping[str, Any],
) -> tuple[str, str]:
    if difference.damage:
        return DAMAGE_SIDE, "damage"
    if difference.replaced:
        return REPLACED_SIDE, "table"
    unit = difference.unit
    found = side(baseline.get(unit), source.get(unit), units.get(unit), known=unit in baseline)
    if found is Side.NO_BASELINE or provenance(item, unit) is None:
        return "no run of the tool wrote it", "table"
    return _WORDS.get(found, TABLE_SIDE), _SHORT.get(found, "table")
