"""One source record against its item and its image objects, unit by unit.

Each difference names the unit it belongs to (a field, or an image), so that
`deep.py` can then say which side changed it since the migration. A field is
compared whole, with the place inside it where it differs (`field a.b[2]`);
an image first by its reference (the bytes' SHA-256, type, header and place in
the record), then, where the reference matches the source, the object it points
at: it exists, its bytes hash to the reference, its Content-Type is the
reference's, and a JPEG or PNG decodes. Values are never shown: they are
personal data.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.transform import METADATA_FIELDS, MIGRATED_FROM, Image, RunStamp, transform
from khpl_migrate.core.units import Unit, Units, record_units, reference_unit, references

# Formats Pillow must be able to decode for the image to count as an image.
DECODABLE = {"image/jpeg": "JPEG", "image/png": "PNG"}
_SKIP = frozenset({"id", *METADATA_FIELDS})


@dataclass(frozen=True)
class Difference:
    """One way the item or its objects differ from the source record."""

    unit: Unit
    text: str
    damage: bool = False  # the object the tool wrote is missing (not the item)
    replaced: bool = False  # the object holds what another writer put there: the app's


@dataclass(frozen=True)
class Comparison:
    """A source record against its item (None: there is no item to compare)."""

    differences: tuple[Difference, ...] = ()
    warnings: tuple[str, ...] = ()
    images: int = 0
    image_bytes: int = 0
    images_ok: int = 0  # referenced as the source has them, and the objects hold it
    fields_ok: bool = True
    unchecked: str | None = None  # why the record could not be compared at all
    source: Units = field(default_factory=dict)  # the units, for naming the side
    item: Mapping[str, Any] = field(default_factory=dict)


def compare_record(store: Store, bucket: str, record: Any, item: Mapping[str, Any]) -> Comparison:
    """Compare one source record with the item the migration (or a sync since) wrote."""
    if item.get("migratedFrom") != MIGRATED_FROM or "migrationRunId" not in item:
        return Comparison(
            unchecked="the item was not written by the migration (no migratedFrom S3)"
        )
    stamp = RunStamp(
        str(item["migrationRunId"]),
        str(item.get("migrationDate", "")),
        mask_aadhaar="maskedFields" in item,
    )
    try:
        expected = transform(record, stamp)
    except RecordError as exc:
        return Comparison(unchecked=f"the source record cannot be migrated: {exc}")
    fields = _fields(expected.item, item)
    differences = list(fields)
    found_warnings: list[str] = []
    images_ok = 0
    refs = references(item)
    for image in expected.images:
        mine = reference_unit(expected.id, image.name, references(expected.item)[image.name])
        ref = refs.get(image.name)
        problems = _image(store, bucket, image, mine, ref, item, found_warnings)
        differences += problems
        images_ok += not problems
    differences += [
        Difference(("image", name), f"image {name}: not in the source")
        for name in refs
        if name not in {image.name for image in expected.images}
    ]
    return Comparison(
        tuple(differences),
        tuple(found_warnings),
        images=len(expected.images),
        image_bytes=expected.image_bytes,
        images_ok=images_ok,
        fields_ok=not fields,
        source=record_units(expected),
        item=item,
    )


def _fields(expected: Mapping[str, Any], item: Mapping[str, Any]) -> list[Difference]:
    out = []
    for name in sorted({*expected, *item} - _SKIP):
        unit: Unit = ("field", name)
        if name not in item:
            out.append(Difference(unit, f"field {name}: missing"))
        elif name not in expected:
            out.append(Difference(unit, f"field {name}: not in the source"))
        else:
            out += [
                Difference(unit, text) for text in diff_values(expected[name], item[name], name)
            ]
    return out


def _image(
    store: Store,
    bucket: str,
    image: Image,
    mine: bytes,
    ref: Mapping[str, Any] | None,
    item: Mapping[str, Any],
    found_warnings: list[str],
) -> list[Difference]:
    unit: Unit = ("image", image.name)
    label = f"image {image.name}"
    if ref is None:
        return [Difference(unit, f"{label}: the item has no reference to it")]
    if mine != reference_unit(str(item.get("id", "")), image.name, ref):
        return [Difference(unit, f"{label}: the item references other bytes than the source's")]
    key = str(ref["s3Key"])
    found = store.get_object(bucket, key)
    if found is None:
        return [Difference(unit, f"{label}: object {key} is missing", damage=True)]
    data, info = found
    changed = []
    if len(data) != image.size or hashlib.sha256(data).hexdigest() != image.sha256:
        changed.append("other bytes")
    if (info.content_type or "") != image.mime:
        changed.append(f"Content-Type {info.content_type}, expected {image.mime}")
    if changed:
        # Not what the tool wrote: another writer (the app updating a photo in place).
        text = f"{label}: object {key} replaced since the migration ({', '.join(changed)})"
        return [Difference(unit, text, replaced=True)]
    if image.mime in DECODABLE:
        # The bytes are the source's own: a decode failure is the source's problem.
        reason = decode_problem(data, image.mime)
        if reason:
            found_warnings.append(f"{label}: {reason}")
    return []


def decode_problem(data: bytes, mime: str) -> str | None:
    """Why these bytes are not a decodable image of type `mime`, or None when they are."""
    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(io.BytesIO(data)) as picture:
                actual = picture.format
                picture.load()
    except Exception as exc:  # Pillow raises many types for bad data
        return f"does not decode as {mime} ({type(exc).__name__})"
    expected = DECODABLE[mime]
    if actual != expected:
        return f"labelled {mime} but the bytes are {actual}"
    return None


def diff_values(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two values differ, by path. Values are not shown: they are personal data."""
    where = path or "item"
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in expected:
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                out.append(f"field {sub}: missing")
            else:
                out += diff_values(expected[key], actual[key], sub)
        out += [
            f"field {f'{path}.{k}' if path else k}: not in the source"
            for k in actual
            if k not in expected
        ]
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"field {where}: {len(actual)} elements, the source has {len(expected)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += diff_values(e, a, f"{path}[{i}]")
        return out
    if _kind(expected) != _kind(actual):
        return [f"field {where}: a {_kind(actual)}, the source has a {_kind(expected)}"]
    if expected != actual:
        return [f"field {where}: value differs"]
    return []


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__
