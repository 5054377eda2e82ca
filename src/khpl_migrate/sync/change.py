"""The UpdateItem a sync makes of one record: what it carries over, what it expects first.

Pure: built from the item as read and the source record as transformed, so the
write is exactly what was judged (`sync/write.py` sends it, conditional on every
unit it touches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from khpl_migrate.aws import ABSENT
from khpl_migrate.core.layout import image_version_key
from khpl_migrate.core.transform import Image, Transformed, extension
from khpl_migrate.core.units import Unit, nested_groups, record_units, references
from khpl_migrate.kernel.changes import REFS, Change


@dataclass(frozen=True)
class SourceRecord:
    """The source record as sync writes it: values and images, and their units."""

    done: Transformed

    @property
    def units(self) -> dict[Unit, bytes]:
        return record_units(self.done)

    def image(self, name: str) -> Image | None:
        return next((image for image in self.done.images if image.name == name), None)

    def has(self, unit: Unit) -> bool:
        """Whether the source holds the unit (carrying one it lacks removes it)."""
        kind, name = unit
        return name in self.done.item if kind == "field" else self.image(name) is not None


def version_key(rid: str, image: Image) -> str:
    """Where a changed image goes: a key of its own, from its bytes (the old object stays)."""
    return image_version_key(rid, image.name, extension(image.mime), image.sha256)


def change_of(
    rid: str,
    item: dict[str, Any],
    source: SourceRecord,
    carry: list[Unit],
    adopt: list[Unit],
    run_id: str,
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
        change.image(
            item, name, image.reference(version_key(rid, image)) if image is not None else ABSENT
        )
        if image is not None:
            uploads.append(image)
    for kind, name in adopt:  # the value stays; only its baseline moves
        current = item.get(name, ABSENT) if kind == "field" else references(item).get(name, ABSENT)
        change.expect[(name,) if kind == "field" else (REFS, name)] = current
    for unit in carry + adopt:
        change.runs(item, unit, run_id)
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
