"""A record as units: its top-level fields and its images, each reduced to a digest. Pure.

Sync and the deep check compare three versions of a record (the baseline the
tool last wrote, the source now, the item now) unit by unit: a field compares
whole (a map or list is one unit), an image by its bytes' SHA-256, its MIME
type, its data URL header and where it sits. Each unit is reduced to a short
digest of a canonical encoding, so equal values give equal digests whichever
side they were read from (DynamoDB gives `Decimal('499.5')` back for the
source's `499.50`), and a baseline can be held for every record in little
memory. Digests stay in memory; they are never written anywhere.

Which run's backup holds a unit's baseline is the unit's provenance: the run
that last wrote it (`provenance`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from khpl_migrate.transform import FIELD_RUNS, IMAGE_RUNS, METADATA_FIELDS, Transformed

Kind = Literal["field", "image"]
Unit = tuple[Kind, str]  # ("field", "paymentStatus"), ("image", "userPhoto")
Units = dict[Unit, bytes]
RUNS_OF: dict[Kind, str] = {"field": FIELD_RUNS, "image": IMAGE_RUNS}
_SKIP = frozenset({"id", *METADATA_FIELDS})


def digest(value: Any) -> bytes:
    """A 16-byte digest of a JSON-like value; equal values (numbers compared as numbers)
    give equal digests."""
    hasher = hashlib.blake2b(digest_size=16)
    _feed(hasher, value)
    return hasher.digest()


def _feed(hasher: Any, value: Any) -> None:
    if value is None:
        hasher.update(b"n")
    elif isinstance(value, bool):
        hasher.update(b"t" if value else b"f")
    elif isinstance(value, int | Decimal | float):
        hasher.update(b"d" + _number(value).encode("ascii") + b";")
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        hasher.update(b"s%d:" % len(raw) + raw)
    elif isinstance(value, list | tuple):
        hasher.update(b"l%d:" % len(value))
        for child in value:
            _feed(hasher, child)
    elif isinstance(value, Mapping):
        hasher.update(b"m%d:" % len(value))
        for key in sorted(value):
            _feed(hasher, str(key))
            _feed(hasher, value[key])
    elif isinstance(value, set | frozenset):
        # DynamoDB's string, number and binary sets (the app may write them): unordered.
        hasher.update(b"S%d:" % len(value) + b"".join(sorted(digest(v) for v in value)))
    elif isinstance(value, bytes | bytearray):
        hasher.update(b"b%d:" % len(value) + bytes(value))
    elif isinstance(getattr(value, "value", None), bytes):
        _feed(hasher, value.value)  # boto3's Binary, as DynamoDB's B attributes come back
    else:
        raise TypeError(f"no digest for {type(value).__name__}")


def _number(value: int | Decimal | float) -> str:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return "0" if number.is_zero() else str(number.normalize())


def image_unit(sha256: str, mime: str, header: str | None, path: Iterable[Any]) -> bytes:
    """An image as a unit: its bytes (by hash), type, data URL header and place in the record."""
    where = [part if isinstance(part, str) else int(part) for part in path]
    return digest([sha256, mime, header or "", where])


def record_units(record: Transformed) -> Units:
    """The units of a source record (now, or as a backup holds it)."""
    units: Units = {("field", k): digest(v) for k, v in record.item.items() if k not in _SKIP}
    for image in record.images:
        units[("image", image.name)] = image_unit(
            image.sha256, image.mime, image.header, image.path
        )
    return units


def item_units(item: Mapping[str, Any]) -> Units:
    """The units of an item as DynamoDB holds it now."""
    units: Units = {("field", k): digest(v) for k, v in item.items() if k not in _SKIP}
    for name, entry in references(item).items():
        units[("image", name)] = image_unit(
            str(entry.get("sha256", "")),
            str(entry.get("mimeType", "")),
            entry.get("dataUrlHeader"),
            entry.get("field") or [],
        )
    return units


def references(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The item's image references (imageUploadResults), by image name."""
    results = item.get("imageUploadResults") or {}
    return {str(k): dict(v) for k, v in results.items() if isinstance(v, Mapping) and "s3Key" in v}


def provenance(item: Mapping[str, Any], unit: Unit) -> str | None:
    """The run whose backup holds this unit's baseline: the run that last wrote it.

    None when no run of the tool wrote it: the app's own item, or a unit the app
    added to it.
    """
    runs = item.get(RUNS_OF[unit[0]]) or {}
    if unit[1] in runs:
        return str(runs[unit[1]])
    owner = item.get("migrationRunId")
    return str(owner) if owner else None


def runs_of(item: Mapping[str, Any]) -> set[str]:
    """Every run whose backup holds part of this item's baseline."""
    found = {str(item["migrationRunId"])} if item.get("migrationRunId") else set()
    for attribute in RUNS_OF.values():
        found |= {str(run) for run in (item.get(attribute) or {}).values()}
    return found


def label(unit: Unit) -> str:
    """How a report names a unit: "field paymentStatus", "image userPhoto"."""
    return f"{unit[0]} {unit[1]}"
