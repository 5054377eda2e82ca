"""The source, `registrations.json`: pinned to one version, streamed, validated.

The source is never held whole in memory: ijson (yajl2_c backend) yields one
record at a time from the S3 stream. Every read is pinned to the ETag (and
version id) seen when the run started, so the plan, the backup and the apply
pass all see the same bytes; the stream's SHA-256 is what the backup is checked
against (docs/design.md, safety contract 2 and 3).
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ijson

from khpl_migrate.aws import ObjectInfo, Store
from khpl_migrate.core import errors
from khpl_migrate.core.spans import Spans
from khpl_migrate.core.transform import SourceProblem
from khpl_migrate.settings import Settings

log = logging.getLogger(__name__)

_VALUE_EVENTS = {"start_array", "start_map", "string", "number", "boolean", "null"}
PARSER = f"ijson {ijson.__version__} with the {ijson.backend} backend"  # for --version
if ijson.backend != "yajl2_c":  # pragma: no cover - depends on the wheel installed
    log.warning("ijson's C backend is not available (%s): parsing will be slower", ijson.backend)


@dataclass(frozen=True)
class Source:
    """One exact version of the source object."""

    bucket: str
    info: ObjectInfo
    records_path: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.info.key}"


@dataclass
class Digest:
    """Filled in while a stream is read to its end."""

    sha256: str = ""
    size: int = 0
    read: int = 0  # bytes read so far, while the stream is being read


_BOM = b"\xef\xbb\xbf"


class _HashingReader:
    """A file-like wrapper that hashes and counts what ijson reads.

    The stream comes from `Store.open_stream`, which reopens the pinned version
    where it stopped if the connection drops. A UTF-8 byte-order mark at the
    very start, which JSON forbids but Windows editors write, is skipped (and
    still hashed, so the backup check covers it).
    """

    def __init__(
        self,
        store: Store,
        source: Source,
        digest: Digest | None = None,
        where: Locations | None = None,
    ) -> None:
        self._raw = store.open_stream(source.bucket, source.info)
        self._where = where
        # Only a pass that fills a digest hashes: the apply pass reads the version the plan
        # hashed (pinned by ETag), and a hash costs as much CPU as the parse.
        self._hash = hashlib.sha256() if digest is not None else None
        self._digest = digest
        self.count = 0
        self.had_bom = False

    def _read_raw(self, size: int) -> bytes:
        chunk = self._raw.read(size)
        if self._where is not None:
            self._where.feed(chunk)  # the raw bytes: offsets are the object's own
        return chunk

    def read(self, size: int = -1) -> bytes:
        chunk = self._read_raw(size)
        if self.count == 0 and chunk.startswith(_BOM):
            if self._hash is not None:
                self._hash.update(_BOM)
            self.count += len(_BOM)
            self.had_bom = True
            chunk = chunk[len(_BOM) :]
            if not chunk:
                return self.read(size)
        self.count += len(chunk)
        if self._hash is not None and self._digest is not None:
            self._hash.update(chunk)
            self._digest.read = self.count  # how far the stream is: for progress
        return chunk

    def hexdigest(self) -> str:
        assert self._hash is not None, "a pass without a digest does not hash"
        return self._hash.hexdigest()

    def close(self) -> None:
        self._raw.close()


def open_source(store: Store, settings: Settings) -> Source:
    """Find the source and pin its current version; clear errors when it is not there."""
    bucket = settings.require_bucket()
    store.check_bucket(bucket)
    info = store.head_object(bucket, settings.source_key)
    if info is None:
        raise errors.SourceMissing(
            f"s3://{bucket}/{settings.source_key} does not exist",
            "check --source-key and --bucket (the guide's file is registrations.json; "
            "after archive-source --remove-original, pass --source-key archive/...)",
        )
    return Source(bucket, info, settings.records_path)


class Locations:
    """Where each record of a pass lies in the object (offset, length), from the bytes the
    pass reads (`core/spans.py`): what a run records so that a baseline is later fetched
    by range. Each is handed over once, by index, and forgotten: memory stays bounded."""

    def __init__(self, records_path: str | None) -> None:
        self._scan = Spans(path=records_path, keep=False)
        self._queue: deque[tuple[int, tuple[int, int]]] = deque()
        self._next = 0

    def feed(self, chunk: bytes) -> None:
        for span in self._scan.feed(chunk):
            self._queue.append((self._next, span))
            self._next += 1

    def of(self, index: int) -> tuple[int, int] | None:
        """The record at `index` (read by now): its offset and length; None where the scan
        has none (the top level is not the array)."""
        queue = self._queue
        while queue and queue[0][0] < index:
            queue.popleft()
        if not queue or queue[0][0] != index:
            return None
        start, end = queue.popleft()[1]
        return start, end - start


def iter_records(
    store: Store, source: Source, digest: Digest | None = None, locations: Locations | None = None
) -> Iterator[tuple[int, Any]]:
    """(index, record) for every entry of the source's array, numbers as exact Decimal;
    with `locations`, each record's bytes are located too (`Locations.of`, once yielded).

    Raises SourceInvalid when the source is not complete, valid JSON with an
    array at its top (or at --records-path); that is found only once the stream
    is read to its end, so callers must consume it all before writing anything.
    """
    where = source.uri
    if source.info.size == 0:
        raise errors.SourceInvalid(
            f"{where} is empty (0 bytes)",
            f"restore it from a backup: {errors.RESTORE_FIX}",
            bucket=source.bucket,
            key=source.info.key,
            restorable=True,
        )
    reader = _HashingReader(store, source, digest, locations)
    container = source.records_path or ""
    seen: dict[str, Any] = {}
    prefix = f"{container}.item" if container else "item"
    events = _watch(ijson.parse(reader, use_float=False), container, prefix, seen)
    try:
        yield from _records(events, prefix, seen)
    except ijson.JSONError as exc:
        reason = _parser_message(exc)
        raise errors.SourceInvalid(
            f"{where} is not valid JSON near byte {reader.count:,} of {source.info.size:,} "
            f"({reason}); nothing was written",
            f"fix or restore the file (a truncated upload?) and run again: {errors.RESTORE_FIX}",
            bucket=source.bucket,
            key=source.info.key,
            restorable=True,
        ) from None
    finally:
        reader.close()  # a caller that stops early (it found what it needed) frees the link
    kind = seen.get("kind")
    if kind != "start_array":
        raise errors.SourceInvalid(
            _not_an_array(where, source.records_path, kind, seen),
            _fix(seen),
            bucket=source.bucket,
            key=source.info.key,
            restorable="top_keys" not in seen,
        )
    if reader.count != source.info.size:
        raise errors.SourceChanged(
            f"{where} was {source.info.size:,} bytes but {reader.count:,} were read",
            "run the command again",
        )
    if digest is not None:
        digest.sha256 = reader.hexdigest()
        digest.size = reader.count


def _records(
    events: Iterator[tuple[str, str, Any]], prefix: str, seen: dict[str, Any]
) -> Iterator[tuple[int, Any]]:
    for index, record in enumerate(ijson.items(events, prefix)):
        duplicate = seen.pop("duplicate", None)
        if duplicate is None:
            yield index, record
        else:
            # A parser keeps the last value of a repeated key: the others would be lost.
            reason = f"the key {duplicate!r} appears twice in one object; refusing to guess"
            rid = record.get("id") if isinstance(record, dict) else None
            yield index, SourceProblem(reason, rid if isinstance(rid, str) else None)


def _parser_message(exc: Exception) -> str:
    """yajl's first line ("parse error: premature EOF"); it sometimes comes as bytes."""
    raw = exc.args[0] if exc.args else type(exc).__name__
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.strip().splitlines()[0].strip() if text.strip() else type(exc).__name__


def _watch(
    events: Iterator[tuple[str, str, Any]], container: str, prefix: str, seen: dict[str, Any]
) -> Iterator[tuple[str, str, Any]]:
    """Pass ijson's events through, noting what sits at the records' container and
    a key repeated within one object of a record."""
    keys: list[str] = []
    maps: list[set[str]] = []
    for path, event, value in events:
        if event == "start_map":
            maps.append(set())
        elif event == "end_map":
            maps.pop()
        elif event == "map_key" and maps:
            if value in maps[-1] and path.startswith(prefix):
                seen.setdefault("duplicate", value)
            maps[-1].add(value)
            if path == "" and len(keys) < 12:
                keys.append(value)
                seen["top_keys"] = keys
        if path == container and event in _VALUE_EVENTS and "kind" not in seen:
            seen["kind"] = event
        yield path, event, value


_KINDS = {
    "start_map": "an object",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _not_an_array(
    where: str, records_path: str | None, kind: str | None, seen: dict[str, Any]
) -> str:
    at = f"at --records-path {records_path}" if records_path else "at its top level"
    if kind is None:
        return f"{where} has nothing {at}; nothing was written"
    found = _KINDS.get(kind, kind)
    return f"{where} holds {found} {at}, not an array of registrations; nothing was written"


def _fix(seen: dict[str, Any]) -> str:
    keys = seen.get("top_keys")
    if keys:
        return (
            "pass --records-path with the key that holds the array (top-level keys: "
            + ", ".join(keys)
            + ")"
        )
    return f"check that this is the registrations file, or restore it: {errors.RESTORE_FIX}"
