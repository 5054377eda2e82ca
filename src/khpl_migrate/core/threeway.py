"""Three-way judgement of one record: baseline, source now, item now. Pure.

Like rclone bisync and Unison, `sync` compares both sides with the state it
last synced (the baseline), but unit by unit (a top-level field, or an image),
so that the app and the source can both have edited one record without either
edit being lost:

| source vs baseline | item vs baseline | side | sync does |
|---|---|---|---|
| same | same | SAME | nothing |
| changed | same | SOURCE | carries the source's value over |
| same | changed | TABLE | keeps the item's value (the app's edit) |
| changed | changed, equal | AGREED | writes no value; the baseline moves to it |
| changed | changed, differently | CONFLICT | writes nothing; reports it |

A unit no run of the tool wrote (the app's own item, or a field the app added)
has no baseline: equal on both sides it is SAME, else NO_BASELINE, a conflict.

An image nested inside a field (a list of children, each with a photo) belongs
to that field: where the app changed the field or any image in it, a source
change anywhere in the group is a CONFLICT, never a write at a path that may
now line up with another element.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from khpl_migrate.core.units import Unit, Units

# A unit's baseline: its digest where the run that last wrote it had it, None where
# that run had no such unit. A unit with no entry has no baseline at all.
Baseline = Mapping[Unit, bytes | None]


class Side(StrEnum):
    """Which side changed one unit since its baseline (stable codes; the words are the
    renderers')."""

    SAME = "same"
    SOURCE = "source"  # changed in the source
    TABLE = "table"  # changed in DynamoDB
    AGREED = "agreed"  # changed on both sides, the same way
    CONFLICT = "conflict"  # changed on both sides, differently
    NO_BASELINE = "no_baseline"  # differs, and no run of the tool wrote it


CONFLICTS = frozenset({Side.CONFLICT, Side.NO_BASELINE})


def side(base: bytes | None, source: bytes | None, item: bytes | None, *, known: bool) -> Side:
    """One unit's side; `known` is whether it has a baseline (None values: absent)."""
    if source == item:
        if not known or source == base:
            return Side.SAME
        return Side.AGREED
    if not known:
        return Side.NO_BASELINE
    if item == base:
        return Side.SOURCE
    if source == base:
        return Side.TABLE
    return Side.CONFLICT


class RecordState(StrEnum):
    """Where one record stands in a sync: stable codes (`sync --json`'s "kind", the
    manifest's planned counts); `report/cutover.py` has the words."""

    IN_STEP = "in_step"
    UPDATE = "to_update"  # source edits to carry over, or a baseline to move
    CONFLICT = "conflict"  # nothing to write, but units changed on both sides
    NEW = "new"  # new in the source, never written by the tool: migrate it
    APP_EQUAL = "app_equal"  # written by the app, equal to the source
    APP_CONFLICT = "app_conflict"  # written by the app, different from the source
    DELETED_IN_TABLE = "deleted_in_table"  # since the migration: the app's deletion stands
    TABLE_DELETE_CONFLICT = "table_delete_conflict"  # deleted in DynamoDB, changed in the source
    DELETED_IN_SOURCE = "deleted_in_source"  # the item still equals its baseline
    DELETE_CONFLICT = "delete_conflict"  # deleted in the source, changed in DynamoDB
    # Not judgements: what keeps a record from being judged at all.
    UNUSABLE = "unusable"  # the source record cannot be migrated (its reason is given)
    NO_BASELINE = "no_baseline"  # a backup it needs is gone or unreadable


@dataclass(frozen=True)
class Verdict:
    kind: RecordState
    sides: dict[Unit, Side] = field(default_factory=dict)  # every unit that is not SAME

    def units(self, *wanted: Side) -> list[Unit]:
        return sorted(unit for unit, found in self.sides.items() if found in wanted)

    @property
    def carry(self) -> list[Unit]:
        """The source's edits to carry over."""
        return self.units(Side.SOURCE)

    @property
    def agreed(self) -> list[Unit]:
        """Units both sides changed the same way: the baseline moves to their value."""
        return self.units(Side.AGREED)

    @property
    def kept(self) -> list[Unit]:
        """The app's edits, kept."""
        return self.units(Side.TABLE)

    @property
    def conflicts(self) -> list[Unit]:
        return self.units(*CONFLICTS)


def judge(
    source: Units | None,
    item: Units | None,
    baseline: Baseline,
    *,
    tool_item: bool,
    written_before: bool = False,
    groups: Mapping[Unit, str] | None = None,
) -> Verdict:
    """The verdict on one record.

    `source` and `item` are None where the record is not in the source or not in
    the table; `tool_item` says whether a run of the tool created the item
    (`migrationRunId`); `written_before` whether one did for a record whose item
    is gone (its baseline is then the record as the last run that wrote it had it:
    the app's deletion stands unless the source changed since); `groups` names the
    top-level field each nested image unit sits in.
    """
    if item is None:
        if not written_before:
            return Verdict(RecordState.NEW)
        edited = {
            unit: Side.SOURCE
            for unit in set(source or {}) | set(baseline)
            if (source or {}).get(unit) != baseline.get(unit)
        }
        return Verdict(
            RecordState.TABLE_DELETE_CONFLICT if edited else RecordState.DELETED_IN_TABLE, edited
        )
    if source is None:
        changed = {
            unit: Side.TABLE
            for unit in set(item) | set(baseline)
            if unit not in baseline or item.get(unit) != baseline[unit]
        }
        return Verdict(
            RecordState.DELETE_CONFLICT if changed else RecordState.DELETED_IN_SOURCE, changed
        )
    sides: dict[Unit, Side] = {}
    for unit in set(source) | set(item) | set(baseline):
        found = side(baseline.get(unit), source.get(unit), item.get(unit), known=unit in baseline)
        if found is not Side.SAME:
            sides[unit] = found
    _group(sides, groups or {})
    if not tool_item and not any(s in (Side.SOURCE, Side.AGREED) for s in sides.values()):
        kind = RecordState.APP_CONFLICT if sides else RecordState.APP_EQUAL
    elif any(s in (Side.SOURCE, Side.AGREED) for s in sides.values()):
        kind = RecordState.UPDATE
    elif any(s in CONFLICTS for s in sides.values()):
        kind = RecordState.CONFLICT
    else:
        kind = RecordState.IN_STEP
    return Verdict(kind, sides)


def _group(sides: dict[Unit, Side], groups: Mapping[Unit, str]) -> None:
    """Within a top-level field and the images nested in it, a source change next to the
    app's is a conflict."""
    members: dict[str, list[Unit]] = {}
    for unit, name in groups.items():
        members.setdefault(name, [("field", name)]).append(unit)
    for group in members.values():
        found = {sides.get(unit, Side.SAME) for unit in group}
        if Side.SOURCE in found and found & {Side.TABLE, *CONFLICTS}:
            for unit in group:
                if sides.get(unit) is Side.SOURCE:
                    sides[unit] = Side.CONFLICT
