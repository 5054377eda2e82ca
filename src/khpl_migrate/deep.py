"""`verify --deep`: every field and every image byte, record by record.

`deep_verify` proves the guide's "no data loss" rather than counting: for every
source record it rebuilds the item the migration should have written (the same
pure `transform`, with the item's own run id and date) and compares every field
and every image object (exists, SHA-256, size, Content-Type, decodes), like
rclone's `check` and restic's `check --read-data`. It reports one line per
record in rclone's `--combined` notation, image objects nothing references
(orphans) and migrated items that no source record explains.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from khpl_migrate import source as source_mod
from khpl_migrate.aws import Store
from khpl_migrate.errors import RecordError
from khpl_migrate.layout import IMAGE_PREFIX
from khpl_migrate.runner import Runner, make_runner
from khpl_migrate.settings import Settings
from khpl_migrate.transform import MIGRATED_FROM, Image, RunStamp, record_id, transform
from khpl_migrate.verify import VerifyReport, verify

Status = Literal["=", "-", "*", "!"]
STATUS_WORDS = {
    "=": "identical",
    "-": "missing in DynamoDB",
    "*": "differs",
    "!": "could not be checked",
}
# Formats Pillow must be able to decode for the image to count as an image.
DECODABLE = {"image/jpeg": "JPEG", "image/png": "PNG"}


@dataclass(frozen=True)
class DeepEntry:
    """One source record's line in the reconciliation report."""

    index: int
    id: str | None
    status: Status
    details: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    images: int = 0
    image_bytes: int = 0
    # For the review page's checklist: images that exist, match and decode, and
    # whether every field matched (details mix both kinds of difference).
    images_ok: int = 0
    fields_ok: bool = False

    def line(self) -> str:
        who = self.id if self.id is not None else f"#{self.index} (no id)"
        text = f"{self.status} {who}"
        notes = self.details + tuple(f"warning: {w}" for w in self.warnings)
        return f"{text}: {'; '.join(notes)}" if notes else text

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "status": self.status,
            "details": list(self.details),
            "warnings": list(self.warnings),
        }


@dataclass
class DeepReport:
    entries: list[DeepEntry] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # migrated items in no source record
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for e in self.entries if e.status == status)

    @property
    def images(self) -> int:
        return sum(e.images for e in self.entries)

    @property
    def image_bytes(self) -> int:
        return sum(e.image_bytes for e in self.entries)

    @property
    def ok(self) -> bool:
        return (
            all(e.status == "=" for e in self.entries) and not self.orphans and not self.unexplained
        )

    def attention_ids(self) -> list[str]:
        """Ids that need attention: what --failed-ids writes, for `migrate --only-ids`."""
        ordered = sorted(self.entries, key=lambda e: e.index)
        return [e.id for e in ordered if e.status != "=" and e.id is not None]

    def lines(self) -> list[str]:
        """The reconciliation report: `=`, `-`, `*`, `!` per record, `+` for extras."""
        out = [e.line() for e in sorted(self.entries, key=lambda e: e.index)]
        out += [f"+ {key}: image object no item references (orphan)" for key in self.orphans]
        out += [
            f"+ {rid}: item marked migratedFrom S3 but in no source record"
            for rid in self.unexplained
        ]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "identical": self.count("="),
            "missing": self.count("-"),
            "differs": self.count("*"),
            "unchecked": self.count("!"),
            "imagesChecked": self.images,
            "imageBytesChecked": self.image_bytes,
            "orphans": self.orphans,
            "unexplained": self.unexplained,
            "seconds": round(self.seconds, 3),
            "records": [e.to_json() for e in sorted(self.entries, key=lambda e: e.index)],
        }


def deep_verify(
    store: Store,
    settings: Settings,
    *,
    runner: Runner | None = None,
    on_entry: Callable[[DeepEntry], None] | None = None,
    on_record: Callable[[int, Any], None] | None = None,
) -> tuple[VerifyReport, DeepReport]:
    """The guide's report plus every field and image byte checked.

    `on_record` sees every source record as it is read (the review page keeps
    each record's name from it, so the source is read once, not twice).
    """
    began = time.monotonic()
    summary = verify(store, settings)
    deep = DeepReport()
    entries = _Entries(deep, on_entry)
    source = source_mod.open_source(store, settings)
    runner = runner or make_runner(settings.workers)
    seen: dict[str, int] = {}
    try:
        for index, record in source_mod.iter_records(store, source):
            if on_record is not None:
                on_record(index, record)
            found = _comparable(index, record, seen, summary.table_exists)
            if isinstance(found, DeepEntry):
                entries.add(found)
            else:
                runner.submit(_checker(store, settings, index, record), entries.done(index, found))
    finally:
        runner.drain()
    if summary.table_exists:
        deep.orphans, deep.unexplained = _extras(store, settings, set(seen))
    deep.seconds = time.monotonic() - began
    return summary, deep


class _Entries:
    """Collects the entries the pool's threads produce, passing each to `on_entry`."""

    def __init__(self, deep: DeepReport, on_entry: Callable[[DeepEntry], None] | None) -> None:
        self._deep, self._on_entry = deep, on_entry
        self._lock = threading.Lock()

    def add(self, entry: DeepEntry) -> None:
        with self._lock:
            self._deep.entries.append(entry)
        if self._on_entry is not None:
            self._on_entry(entry)

    def done(self, index: int, rid: str) -> Callable[[Future[DeepEntry]], None]:
        def done(future: Future[DeepEntry]) -> None:
            exc = future.exception()
            if exc is None:
                self.add(future.result())
            else:
                self.add(DeepEntry(index, rid, "!", (f"{type(exc).__name__}: {exc}",)))

        return done


def _comparable(
    index: int, record: Any, seen: dict[str, int], table_exists: bool
) -> DeepEntry | str:
    """The record's id when it can be compared with an item; else its entry, saying why not."""
    try:
        rid = record_id(record)
    except RecordError as exc:
        shown = record.get("id") if isinstance(record, dict) else None
        return DeepEntry(index, None if shown is None else str(shown), "!", (str(exc),))
    if rid in seen:
        reason = f"duplicate id: the record at index {seen[rid]} is the one compared"
        return DeepEntry(index, rid, "!", (reason,))
    seen[rid] = index
    if not table_exists:
        return DeepEntry(index, rid, "-", ("the table does not exist",))
    return rid


def _checker(store: Store, settings: Settings, index: int, record: Any) -> Callable[[], DeepEntry]:
    return lambda: check_record(store, settings, index, record)


def check_record(store: Store, settings: Settings, index: int, record: dict[str, Any]) -> DeepEntry:
    """Compare one source record with its item and image objects."""
    rid = record_id(record)
    item = store.get_item(settings.table, rid)
    if item is None:
        return DeepEntry(index, rid, "-")
    if item.get("migratedFrom") != MIGRATED_FROM or "migrationRunId" not in item:
        return DeepEntry(
            index, rid, "!", ("the item was not written by the migration (no migratedFrom S3)",)
        )
    stamp = RunStamp(
        str(item["migrationRunId"]),
        str(item.get("migrationDate", "")),
        mask_aadhaar=bool(item.get("maskedFields")),
    )
    try:
        expected = transform(record, stamp)
    except RecordError as exc:
        return DeepEntry(index, rid, "!", (f"the source record cannot be migrated: {exc}",))
    fields = diff_values(expected.item, item)
    details = list(fields)
    warn: list[str] = []
    images_ok = 0
    bucket = settings.require_bucket()
    for image in expected.images:
        before = len(warn)
        problems = _check_image(store, bucket, image, warn)
        details += problems
        images_ok += not problems and len(warn) == before
    return DeepEntry(
        index,
        rid,
        "*" if details else "=",
        tuple(details),
        tuple(warn),
        images=len(expected.images),
        image_bytes=expected.image_bytes,
        images_ok=images_ok,
        fields_ok=not fields,
    )


def _check_image(store: Store, bucket: str, image: Image, warn: list[str]) -> list[str]:
    found = store.get_object(bucket, image.key)
    label = f"image {image.name}"
    if found is None:
        return [f"{label}: object {image.key} is missing"]
    data, info = found
    problems = []
    if len(data) != image.size:
        problems.append(f"{label}: {len(data):,} bytes, the source has {image.size:,}")
    elif hashlib.sha256(data).hexdigest() != image.sha256:
        problems.append(f"{label}: bytes differ from the source (SHA-256 mismatch)")
    if (info.content_type or "") != image.mime:
        problems.append(f"{label}: Content-Type {info.content_type}, expected {image.mime}")
    if not problems and image.mime in DECODABLE:
        # The bytes are the source's own: a decode failure is the source's problem.
        reason = decode_problem(data, image.mime)
        if reason:
            warn.append(f"{label}: {reason}")
    return problems


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


def _extras(store: Store, settings: Settings, source_ids: set[str]) -> tuple[list[str], list[str]]:
    """Image objects no item references, and migrated items no source record explains."""
    bucket = settings.require_bucket()
    referenced: set[str] = set()
    unexplained: list[str] = []
    for item in store.scan(settings.table, ("id", "migratedFrom", "imageUploadResults")):
        for entry in (item.get("imageUploadResults") or {}).values():
            if isinstance(entry, dict) and "s3Key" in entry:
                referenced.add(str(entry["s3Key"]))
        if item.get("migratedFrom") == MIGRATED_FROM and str(item["id"]) not in source_ids:
            unexplained.append(str(item["id"]))
    orphans = [
        info.key for info in store.list_objects(bucket, IMAGE_PREFIX) if info.key not in referenced
    ]
    return sorted(orphans), sorted(unexplained)
