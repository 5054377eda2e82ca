"""A run's manifest as it goes: appended (and flushed) locally, uploaded when the run ends."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec

from khpl_migrate.aws import Store
from khpl_migrate.core import layout
from khpl_migrate.kernel.clock import now_iso
from khpl_migrate.kernel.manifest.lines import NDJSON, SCHEMA, Line, RunHeader, SummaryLine, encode


class ManifestWriter:
    """Appends a run's lines to its local manifest as they happen; `close` uploads it."""

    def __init__(
        self,
        store: Store,
        header: RunHeader,
        state_dir: Path,
        *,
        part: tuple[int, str] | None = None,
    ) -> None:
        """`part`: (index, attempt) of a shard, whose manifest is a part of its run's."""
        self._store = store
        self._bucket = str(header.bucket)
        self.run_id = header.run_id
        self.part = part
        if part is None:
            self.key = layout.manifest_key(self.run_id)
            self.path = layout.local_manifest(state_dir, self.run_id)
        else:
            self.key = layout.shard_part_key(self.run_id, part[0])
            self.path = layout.local_shard_part(state_dir, self.run_id, *part)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = self.path.open("ab")
        self.write(msgspec.structs.replace(header, schema=SCHEMA))

    def write(self, line: Line) -> None:
        with self._lock:
            self._file.write(encode(line) + b"\n")
            self._file.flush()

    def close(self, summary: SummaryLine) -> None:
        """Write the summary line and upload the manifest (the run's record for rollback)."""
        self.write(msgspec.structs.replace(summary, finished_at=now_iso()))
        with self._lock:
            self._file.close()
        body = self.path.read_bytes()
        if self.part is None:
            self._store.put_object(self._bucket, self.key, body, NDJSON)
            return
        # A shard's part is written once; an index that ran before (killed and re-run,
        # or started twice at once) keeps its first part and adds this attempt's.
        if self._store.put_object_if_absent(self._bucket, self.key, body, NDJSON) != "written":
            self.key = layout.shard_part_key(self.run_id, *self.part)
            self._store.put_object_if_absent(self._bucket, self.key, body, NDJSON)
