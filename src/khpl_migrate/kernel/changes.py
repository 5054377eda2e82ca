"""One conditional UpdateItem of a record, being built: what it sets and removes, and
what it expects to find first.

Sync builds one to carry units over; rollback builds one to put them back. The
rules are DynamoDB's: a map entry can be set only inside a map that is there
(so a map the item does not have yet is written whole, expected absent), and
every path written is expected to hold what was read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from khpl_migrate.aws import ABSENT, Path, Update
from khpl_migrate.core.units import RUNS_OF, Unit, references
from khpl_migrate.kernel.manifest import ImageMove

REFS = "imageUploadResults"


class Change:
    """One UpdateItem being built: what it sets and removes, and what it expects first."""

    def __init__(self, owner: Any) -> None:
        self.set: dict[Path, Any] = {}
        self.remove: list[Path] = []
        self.expect: dict[Path, Any] = {("migrationRunId",): owner}
        self.images: dict[str, dict[str, Any]] = {}  # name -> {"from": ref, "to": ref}
        self.superseded: list[str] = []
        self._new_maps: dict[str, dict[str, Any]] = {}
        self._emptied: dict[str, dict[str, Any]] = {}  # maps whose entries are all removed

    def moves(self) -> dict[str, ImageMove]:
        """The references it moves, as the manifest's intent line keeps them."""
        return {name: ImageMove(move["from"], move["to"]) for name, move in self.images.items()}

    @property
    def update(self) -> Update:
        sets = dict(self.set)
        for attribute, value in self._new_maps.items():
            sets[(attribute,)] = value
        remove, expect = list(self.remove), dict(self.expect)
        for attribute, current in self._emptied.items():
            gone = {p[1] for p in remove if len(p) == 2 and p[0] == attribute}
            kept = any(p[0] == attribute for p in sets)
            if gone == set(current) and not kept:
                # No empty map is left behind: the attribute goes, while it holds just those.
                remove = [p for p in remove if p[0] != attribute] + [(attribute,)]
                expect[(attribute,)] = current
        return Update(sets, tuple(remove), expect)

    def field(self, name: str, value: Any, current: Any) -> None:
        if value is ABSENT:
            self.remove.append((name,))
        else:
            self.set[(name,)] = value
        self.expect[(name,)] = current

    def image(self, item: dict[str, Any], name: str, entry: Any) -> None:
        current = references(item).get(name, ABSENT)
        self.expect[(REFS, name)] = current
        if current is not ABSENT:
            self.superseded.append(str(current["s3Key"]))
        self.images[name] = {"from": bare(current), "to": bare(entry)}
        self._put(item, REFS, name, entry)

    def runs(self, item: dict[str, Any], unit: Unit, run_id: Any) -> None:
        """The unit's baseline is now run `run_id`'s copy (ABSENT: the creating run's),
        while it is still the run that was read (another sync or rollback may race)."""
        attribute = RUNS_OF[unit[0]]
        current = item.get(attribute)
        if isinstance(current, dict):
            self.expect[(attribute, unit[1])] = current.get(unit[1], ABSENT)
        self._put(item, attribute, unit[1], run_id)

    def _put(self, item: dict[str, Any], attribute: str, key: str, value: Any) -> None:
        """Set (or, for ABSENT, remove) one entry of a map attribute; a map the item does
        not have yet is written whole, expected absent (DynamoDB cannot set a path in a
        map that is not there)."""
        if attribute in item and isinstance(item[attribute], dict):
            if value is ABSENT:
                self.remove.append((attribute, key))
                self._emptied[attribute] = item[attribute]
            else:
                self.set[(attribute, key)] = value
            return
        if value is ABSENT:
            return
        self._new_maps.setdefault(attribute, {})[key] = value
        self.expect[(attribute,)] = ABSENT


def bare(ref: Any) -> dict[str, Any] | None:
    """A reference as the manifest keeps it: key, hash, size, type, place (no header, which
    may carry a file name), numbers as JSON numbers."""
    if ref is ABSENT or ref is None:
        return None
    return {k: _plain(v) for k, v in ref.items() if k != "dataUrlHeader"}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
