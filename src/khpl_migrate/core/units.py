"""A record as units: its top-level fields and its images, each reduced to a digest. Pure.

Sync and the deep check compare three versions of a record (the baseline the
tool last wrote, the source now, the item now) unit by unit: a field compares
whole (a map or list is one unit), an image by its whole reference, every key of
it (bytes' SHA-256, size, MIME type, data URL header, where it sits, and any
key the app added), its S3 key counting only as "one of the tool's keys for
these bytes" when it is one. Each unit is reduced to a short digest of a
canonical encoding, so values DynamoDB holds equal give equal digests whichever
side they were read from (DynamoDB gives `Decimal('499.5')` back for the
source's `499.50`) and values it keeps apart never do (numbers to all of their
38 digits), and a baseline can be held for every record in little memory.
Digests stay in memory; they are never written anywhere.

Which run's backup holds a unit's baseline is the unit's provenance: the run
that last wrote it (`provenance`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from khpl_migrate.core.layout import image_key, image_version_key
from khpl_migrate.core.transform import (
    FIELD_RUNS,
    IMAGE_RUNS,
    METADATA_FIELDS,
    Transformed,
    extension,
)

UnitKind = Literal["field", "image"]
Unit = tuple[UnitKind, str]  # ("field", "paymentStatus"), ("image", "userPhoto")
Units = dict[Unit, bytes]
RUNS_OF: dict[UnitKind, str] = {"field": FIELD_RUNS, "image": IMAGE_RUNS}
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
    """A number as DynamoDB keeps it: exact (up to 38 significant digits), without
    trailing zeros, so 1.10, 1.1 and 11e-1 are one number and 38-digit numbers that
    differ in their last digit are two. Exact by construction: no decimal context is
    involved (Python's default one rounds to 28 digits)."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        return str(number)  # DynamoDB refuses these; keep them apart all the same
    if number.is_zero():
        return "0"
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return ("-" if sign else "") + "".join(map(str, digits)) + "e" + str(exponent)


def reference_unit(rid: str, name: str, ref: Mapping[str, Any]) -> bytes:
    """An image as a unit: its whole reference. The key is one of the tool's keys for these
    bytes (the guide's, or the content-derived one sync gives replaced bytes) or it is
    itself: a reference the app pointed at its own upload is another value."""
    entry = dict(ref)
    if is_tool_key(rid, name, entry):
        entry["s3Key"] = _TOOL_KEY
    return digest(entry)


def is_tool_key(rid: str, name: str, ref: Mapping[str, Any]) -> bool:
    """Whether a reference names one of the keys the tool gives these bytes: the guide's
    `{id}/{name}.{ext}` or sync's content-derived `{id}/{name}-{sha}.{ext}`."""
    ext = extension(str(ref.get("mimeType", "")))
    sha = str(ref.get("sha256", ""))
    return ref.get("s3Key") in (image_key(rid, name, ext), image_version_key(rid, name, ext, sha))


# Stands for "a key the tool gives these bytes": no S3 key can be this (a NUL byte).
_TOOL_KEY = "\x00tool-key"


def replaced_unit(name: str) -> bytes:
    """An image whose object another writer replaced: a value no reference digests to."""
    return digest(["an object another writer replaced", name])


def record_units(record: Transformed) -> Units:
    """The units of a source record (now, or as a backup holds it)."""
    units: Units = {("field", k): digest(v) for k, v in record.item.items() if k not in _SKIP}
    for name, entry in references(record.item).items():
        units[("image", name)] = reference_unit(record.id, name, entry)
    return units


def item_units(item: Mapping[str, Any]) -> Units:
    """The units of an item as DynamoDB holds it now."""
    units: Units = {("field", k): digest(v) for k, v in item.items() if k not in _SKIP}
    rid = str(item.get("id", ""))
    for name, entry in references(item).items():
        units[("image", name)] = reference_unit(rid, name, entry)
    return units


def references(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The item's image references (imageUploadResults), by image name."""
    results = item.get("imageUploadResults") or {}
    if not isinstance(results, Mapping):
        return {}  # the app's own shape: no reference of the tool's in it
    return {str(k): dict(v) for k, v in results.items() if isinstance(v, Mapping) and "s3Key" in v}


def nested_groups(*holders: Mapping[str, Any]) -> dict[Unit, str]:
    """The images that sit inside a top-level field (a list of children with photos), by
    the field they belong to, from the references of each item or record given."""
    found: dict[Unit, str] = {}
    for holder in holders:
        for name, ref in references(holder).items():
            path = ref.get("field")
            if isinstance(path, list) and len(path) > 1 and isinstance(path[0], str):
                found[("image", name)] = path[0]
    return found


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
