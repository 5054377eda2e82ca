"""Pure: one source record -> one DynamoDB item + its images, and back.

Nothing here does I/O, so everything here is unit- and property-tested: the
round trip `restore(transform(record)) == record` is the proof that the
migration drops nothing but the base64 text it moved to S3.

The rules come from three places: the guide (the field map `image` ->
`userPhoto`, `aadhaarCopy` -> `aadhaar`, the key layout in `layout.py`, the
metadata fields), RFC 2397 (data URLs, `dataurls.py`) and DynamoDB's limits
(`limits.py`: 400 KB items measured its way, 38 significant digits, 32 levels
of nesting, no empty attribute names).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pybase64

from khpl_migrate.core.dataurls import (
    EXTENSIONS,
    DataUrl,
    looks_like_data_url,
    parse_data_url,
    sniff,
)
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.layout import image_key
from khpl_migrate.core.limits import (
    MAX_DEPTH,
    MAX_ID_BYTES,
    MAX_ITEM_BYTES,
    MAX_S3_KEY_BYTES,
    check_number,
    item_size,
)
from khpl_migrate.core.masking import mask_stored_aadhaar

# The guide's names for the two image fields every registration has.
FIELD_NAMES = {"image": "userPhoto", "aadhaarCopy": "aadhaar"}
# Which run last wrote a field or an image reference, where a sync run did (the run
# that created the item, migrationRunId, wrote everything else): see units.py.
FIELD_RUNS = "migrationFieldRuns"
IMAGE_RUNS = "migrationImageRuns"
METADATA_FIELDS = (
    "imageUploadResults",
    "migratedFrom",
    "migrationDate",
    "migrationRunId",
    "maskedFields",
    FIELD_RUNS,
    IMAGE_RUNS,
)
MIGRATED_FROM = "S3"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceProblem:
    """Stands in for a source entry the parser had to change (a duplicate key): not migrated."""

    reason: str
    id: str | None = None


@dataclass(frozen=True)
class Image:
    """One image taken out of a record, ready to be stored as an S3 object."""

    name: str
    path: Path
    key: str
    mime: str
    data: bytes = field(repr=False)
    sha256: str
    header: str | None  # the data URL's header when it was not the canonical one

    @property
    def size(self) -> int:
        return len(self.data)

    def reference(self, key: str | None = None) -> dict[str, Any]:
        """The item's `imageUploadResults` entry for this image, stored at `key` (the
        guide's key by default; a content-derived one where that holds other bytes)."""
        entry: dict[str, Any] = {
            "s3Key": key or self.key,
            "mimeType": self.mime,
            "size": self.size,
            "sha256": self.sha256,
            "field": list(self.path),
        }
        if self.header is not None:
            entry["dataUrlHeader"] = self.header
        return entry


@dataclass(frozen=True)
class Transformed:
    """A record ready to write: the item (no base64 left) and its images."""

    id: str
    item: dict[str, Any]
    images: tuple[Image, ...]
    item_size: int
    warnings: tuple[str, ...] = ()

    @property
    def image_bytes(self) -> int:
        return sum(image.size for image in self.images)


@dataclass(frozen=True)
class RunStamp:
    """What every item of one run carries: its run id and the run's start."""

    run_id: str
    migration_date: str  # ISO 8601 UTC with milliseconds, e.g. 2025-12-19T10:30:00.000Z
    # --mask-aadhaar: store Aadhaar numbers as XXXX XXXX 1234 (UIDAI's masking).
    mask_aadhaar: bool = False


def extension(mime: str) -> str:
    """The key's extension: the guide's `image/jpeg` -> `jpeg`, else the cleaned subtype."""
    known = EXTENSIONS.get(mime)
    if known:
        return known
    subtype = mime.split("/", 1)[-1].split("+", 1)[0]
    return _UNSAFE_NAME.sub("", subtype).lower()[:16] or "bin"


def image_name(path: Path) -> str:
    """The guide's name for an image at `path` in the record, safe for an S3 key."""
    if len(path) == 1 and path[0] in FIELD_NAMES:
        return FIELD_NAMES[str(path[0])]
    joined = ".".join(str(part) for part in path)
    return _UNSAFE_NAME.sub("_", joined).strip(".") or "image"


def record_id(record: object) -> str:
    """The record's id, checked to be usable as a DynamoDB key and in S3 keys."""
    if isinstance(record, SourceProblem):
        raise RecordError(record.reason)
    if not isinstance(record, dict):
        kind = type(record).__name__ if record is not None else "null"
        raise RecordError(f"not a registration object (found a JSON {_json_kind(kind)})")
    if "id" not in record:
        raise RecordError("record has no id")
    rid = record["id"]
    if not isinstance(rid, str):
        raise RecordError(f"id is a JSON {_json_kind(type(rid).__name__)}, not a string")
    if not rid.strip():
        raise RecordError("id is empty")
    if "/" in rid or rid in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in rid):
        raise RecordError("id contains '/', control characters or is '.'/'..'; unsafe in S3 keys")
    if len(rid.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise RecordError(f"id is longer than {MAX_ID_BYTES} bytes")
    return rid


def _json_kind(python_type: str) -> str:
    return {
        "dict": "object",
        "list": "array",
        "str": "string",
        "int": "number",
        "Decimal": "number",
        "float": "number",
        "bool": "boolean",
        "null": "null",
        "NoneType": "null",
    }.get(python_type, python_type)


def transform(record: object, stamp: RunStamp) -> Transformed:
    """Record -> item + images. Raises RecordError with the reason when it cannot be migrated."""
    rid = record_id(record)
    assert isinstance(record, dict)
    for name in METADATA_FIELDS:
        if name in record:
            raise RecordError(f"record already has the field {name!r}, which the migration writes")
    found: list[tuple[Path, DataUrl]] = []
    body = _strip(record, (), found, depth=0)
    images: list[Image] = []
    used: set[str] = set()
    results: dict[str, Any] = {}
    for path, url in found:
        name = _unique(image_name(path), used)
        key = image_key(rid, name, extension(url.mime))
        if len(key.encode("utf-8")) > MAX_S3_KEY_BYTES:
            raise RecordError(f"image key for {_where(path)} is longer than 1,024 bytes")
        digest = hashlib.sha256(url.data).hexdigest()
        header = None if url.canonical else url.header
        image = Image(name, path, key, url.mime, url.data, digest, header)
        images.append(image)
        results[name] = image.reference()
    item = dict(body)
    masked = mask_stored_aadhaar(item) if stamp.mask_aadhaar else []
    item["imageUploadResults"] = results
    if stamp.mask_aadhaar:
        # Listed even when empty: the item says it was written masked, so an Aadhaar
        # number a later sync carries into it is masked too.
        item["maskedFields"] = masked
    item["migratedFrom"] = MIGRATED_FROM
    item["migrationDate"] = stamp.migration_date
    item["migrationRunId"] = stamp.run_id
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise RecordError(
            f"item is {size:,} bytes after the images are taken out; "
            f"DynamoDB's limit is {MAX_ITEM_BYTES:,}"
        )
    warnings = tuple(
        f"{image.name}: labelled {image.mime} but the bytes are {actual} (kept as they are)"
        for image in images
        if (actual := sniff(image.data)) is not None
        and actual != image.mime
        and not (
            actual == "image/jpeg" and image.mime in EXTENSIONS and EXTENSIONS[image.mime] == "jpeg"
        )
    )
    return Transformed(rid, item, tuple(images), size, warnings)


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}-{n}", n + 1
    used.add(candidate)
    return candidate


def _where(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(record)"


def _strip(value: Any, path: Path, found: list[tuple[Path, DataUrl]], depth: int) -> Any:
    """Copy `value` without its data URLs (collected in `found`), checking DynamoDB's rules."""
    if depth > MAX_DEPTH:
        raise RecordError(f"nested deeper than DynamoDB's {MAX_DEPTH} levels at {_where(path)}")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            if not isinstance(key, str) or key == "":
                raise RecordError(f"empty attribute name in {_where(path)}")
            _check_text(key, (*path, key))
            sub = (*path, key)
            if isinstance(child, str) and looks_like_data_url(child):
                found.append((sub, parse_data_url(child, _where(sub))))
                continue
            out[key] = _strip(child, sub, found, depth + 1)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for index, child in enumerate(value):
            sub = (*path, index)
            if isinstance(child, str) and looks_like_data_url(child):
                found.append((sub, parse_data_url(child, _where(sub))))
                continue
            items.append(_strip(child, sub, found, depth + 1))
        return items
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        _check_text(value, path)
        return value
    if isinstance(value, int | float | Decimal):
        return check_number(value, _where(path))
    raise RecordError(f"unsupported value of type {type(value).__name__} at {_where(path)}")


def _check_text(text: str, path: Path) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"text at {_where(path)} is not valid Unicode (lone surrogate)") from None


def restore(item: Mapping[str, Any], images: Mapping[str, bytes]) -> dict[str, Any]:
    """Item + image bytes (by S3 key) -> the source record: the inverse of `transform`."""
    results: Mapping[str, Any] = item.get("imageUploadResults") or {}
    record = {k: _copy(v) for k, v in item.items() if k not in METADATA_FIELDS}
    entries = sorted(results.values(), key=lambda e: tuple(_path_of(e)))
    for entry in entries:
        path = _path_of(entry)
        data = images[entry["s3Key"]]
        header = entry.get("dataUrlHeader") or f"data:{entry['mimeType']};base64,"
        if ";base64" in header.lower():
            text = header + pybase64.b64encode(data).decode("ascii")
        else:
            text = header + urllib.parse.quote_from_bytes(data)
        parent: Any = record
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if isinstance(parent, list):
            assert isinstance(last, int)
            parent.insert(last, text)
        else:
            parent[last] = text
    return record


def _path_of(entry: Mapping[str, Any]) -> list[str | int]:
    return [p if isinstance(p, str) else int(p) for p in entry["field"]]


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """JSON text with numbers written exactly (Decimal('499.50') -> 499.50)."""
    return "".join(_dump(value))


def _dump(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        yield "{"
        for i, (k, v) in enumerate(value.items()):
            if i:
                yield ","
            yield json.dumps(k, ensure_ascii=False)
            yield ":"
            yield from _dump(v)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for i, v in enumerate(value):
            if i:
                yield ","
            yield from _dump(v)
        yield "]"
    elif isinstance(value, Decimal):
        yield str(value)
    else:
        yield json.dumps(value, ensure_ascii=False)


def describe_id(record: Any) -> str | None:
    """The id as the report shows it, even when it is not a usable one."""
    if isinstance(record, SourceProblem):
        return record.id
    if isinstance(record, dict) and "id" in record and record["id"] is not None:
        rid = record["id"]
        return rid if isinstance(rid, str) else str(rid)
    return None


class FirstIds:
    """The ids one pass over the source has seen. The first record with an id is the one
    a run writes; a later record with the same id fails (the guide's promise: nothing is
    overwritten, not even by the source itself). The plan, sync's plan and the deep
    check all judge duplicates with this, so they name the same record."""

    def __init__(self, verb: str) -> None:
        self._verb = verb  # what happens to the first one: migrated, synced, compared
        self._at: dict[str, int] = {}

    def claim(self, rid: str, index: int) -> None:
        """Raises RecordError when an earlier record has `rid`."""
        first = self._at.setdefault(rid, index)
        if first != index:
            raise RecordError(
                f"duplicate id: the record at index {first} has the same id and is the one "
                f"{self._verb}"
            )

    def __contains__(self, rid: object) -> bool:
        return rid in self._at

    def ids(self) -> set[str]:
        return set(self._at)
