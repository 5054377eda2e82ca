"""The review page's records: found and paged, their fields masked, their images
referenced, the originals decoded from the backup, and thumbnails.

Pure but for `original_images`, which streams the backup of the source.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.masking import is_aadhaar_field, mask_field, mask_pii
from khpl_migrate.core.transform import (
    METADATA_FIELDS,
    Image,
    RunStamp,
    dumps,
    record_id,
    transform,
)
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.review.checks import RecordRow
from khpl_migrate.settings import Settings

PER_PAGE = 50
# Longest field value shown; the record page is for looking, not for exporting.
MAX_SHOWN = 200


@dataclass(frozen=True)
class Page:
    rows: list[RecordRow]
    number: int  # 1-based
    pages: int
    matches: int
    query: str


def find(rows: list[RecordRow], query: str = "", page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Rows whose id or name holds every word of `query` (any case), one page of them."""
    words = query.casefold().split()
    hits = [
        row
        for row in rows
        if all(w in f"{row.id or ''} {row.name or ''}".casefold() for w in words)
    ]
    pages = max(1, -(-len(hits) // per_page))
    number = min(max(1, page), pages)
    start = (number - 1) * per_page
    return Page(hits[start : start + per_page], number, pages, len(hits), query)


def shown_fields(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, masked value) for the item's own fields: the name first, then by name."""
    out = []
    for name in sorted(
        (k for k in item if k not in METADATA_FIELDS), key=lambda k: (k != "name", k)
    ):
        masked = mask_field(name, item[name])
        # Text inside a map or list is masked by its own field's name, then by shape.
        text = masked if isinstance(masked, str) else mask_pii(dumps(masked))
        out.append((name, text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"))
    return out


@dataclass(frozen=True)
class ImageRef:
    """One image the item references (its imageUploadResults entry)."""

    name: str
    key: str
    mime: str
    size: int
    sha256: str
    sensitive: bool  # an Aadhaar copy: blurred until clicked


def image_refs(item: Mapping[str, Any]) -> list[ImageRef]:
    results = item.get("imageUploadResults") or {}
    refs = []
    for name, entry in results.items():
        if not isinstance(entry, Mapping) or "s3Key" not in entry:
            continue
        path = entry.get("field") or []
        refs.append(
            ImageRef(
                name=str(name),
                key=str(entry["s3Key"]),
                mime=str(entry.get("mimeType", "")),
                size=int(entry.get("size", 0)),
                sha256=str(entry.get("sha256", "")),
                sensitive=is_aadhaar_field(str(name))
                or any(is_aadhaar_field(str(p)) for p in path),
            )
        )
    return sorted(refs, key=lambda r: r.name)


@dataclass(frozen=True)
class Originals:
    """A record's images as the backup of the source holds them (or why there are none)."""

    backup_key: str | None
    images: dict[str, Image] = field(default_factory=dict)
    problem: str | None = None


def original_images(
    store: Store, settings: Settings, backup_key: str | None, rid: str
) -> Originals:
    """The record's images decoded from the backup its run took, found by streaming it."""
    if backup_key is None:
        return Originals(None, problem="the run that wrote this item recorded no backup")
    bucket = settings.require_bucket()
    info = store.head_object(bucket, backup_key)
    if info is None:
        return Originals(backup_key, problem=f"the backup {backup_key} is gone")
    backup = source_mod.Source(bucket, info, settings.records_path)
    for _, record in source_mod.iter_records(store, backup):
        try:
            if record_id(record) != rid:
                continue
            done = transform(record, RunStamp("original", ""))
        except RecordError as exc:
            if isinstance(record, dict) and record.get("id") == rid:
                return Originals(backup_key, problem=f"the backup's record cannot be read: {exc}")
            continue
        return Originals(backup_key, {image.name: image for image in done.images})
    return Originals(backup_key, problem=f"the backup {backup_key} has no record {rid}")


THUMBNAIL_PX = 192


def thumbnail(data: bytes, size: int = THUMBNAIL_PX) -> bytes | None:
    """A small JPEG of an image, or None where the bytes do not decode as one."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as picture:
                small = ImageOps.exif_transpose(picture)
                small.thumbnail((size, size))
                if small.mode not in {"RGB", "L"}:
                    small = small.convert("RGB")
                out = io.BytesIO()
                small.save(out, "JPEG", quality=80)
                return out.getvalue()
    except Exception:  # Pillow raises many types for bad data; the page says "does not decode"
        return None
