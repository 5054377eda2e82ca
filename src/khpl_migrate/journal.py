"""The run manifest: what one run did to every record, and the keys it wrote.

JSON Lines, one line per record outcome, appended (and flushed) locally as the
run goes and uploaded to `migration-runs/{run_id}/manifest.jsonl` when the run
ends, however it ends. Rollback and verify read it (docs/design.md, "Where
things are stored"). It holds ids, keys, sizes and hashes: no personal data.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from khpl_migrate import layout
from khpl_migrate.aws import Store
from khpl_migrate.layout import manifest_key
from khpl_migrate.source import Digest, Source

Outcome = Literal["migrated", "skipped", "failed"]


@dataclass(frozen=True)
class ImageWrite:
    key: str
    sha256: str
    size: int
    written: bool  # False: an identical object was there already


@dataclass(frozen=True)
class RecordOutcome:
    index: int
    id: str | None
    outcome: Outcome
    reason: str | None = None
    item_written: bool = False
    images: tuple[ImageWrite, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "record",
            "index": self.index,
            "id": self.id,
            "outcome": self.outcome,
            "reason": self.reason,
            "itemWritten": self.item_written,
            "images": [asdict(image) for image in self.images],
        }


def migration_header(
    *,
    started: str,
    table: str,
    source: Source,
    digest: Digest,
    backup_key: str,
    planned: dict[str, int],
    kind: str = "migrate",
) -> dict[str, Any]:
    """The manifest's first line for a run: which source version, which backup."""
    return {
        "kind": kind,
        "startedAt": started,
        "table": table,
        "bucket": source.bucket,
        "recordsPath": source.records_path,
        "source": {
            "key": source.info.key,
            "etag": source.info.etag,
            "versionId": source.info.version_id,
            "size": digest.size,
            "sha256": digest.sha256,
        },
        "backupKey": backup_key,
        "planned": planned,
    }


class Journal:
    """Appends outcomes to the local manifest; `close` uploads it to S3."""

    def __init__(
        self, store: Store, bucket: str, run_id: str, state_dir: Path, header: dict[str, Any]
    ) -> None:
        self._store = store
        self._bucket = bucket
        self.run_id = run_id
        self.key = manifest_key(run_id)
        self.path = layout.local_manifest(state_dir, run_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = self.path.open("a", encoding="utf-8")
        self._write({"type": "run", "runId": run_id, **header})

    def _write(self, line: dict[str, Any]) -> None:
        with self._lock:
            self._file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
            self._file.flush()

    def record(self, outcome: RecordOutcome) -> None:
        self._write(outcome.to_json())

    def line(self, line: dict[str, Any]) -> None:
        """Any other line (a sync's intents and outcomes): ids, names, keys, hashes only."""
        self._write(line)

    def close(self, summary: dict[str, Any]) -> None:
        """Write the summary line and upload the manifest (the run's record for rollback)."""
        self._write({"type": "summary", "finishedAt": now_iso(), **summary})
        with self._lock:
            self._file.close()
        self._store.put_object(
            self._bucket, self.key, self.path.read_bytes(), "application/x-ndjson"
        )


def now_iso() -> str:
    """ISO 8601 UTC with milliseconds, as the guide writes migrationDate."""
    return iso_ms(datetime.now(UTC))


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Manifest:
    """A run's manifest, read back: its header, its record lines, its summary (if it ended)."""

    run_id: str
    key: str
    header: dict[str, Any]
    records: tuple[dict[str, Any], ...]
    summary: dict[str, Any] | None
    intents: tuple[dict[str, Any], ...] = ()  # a sync's, each written before its change
    local: bool = False  # read from this machine's copy: the run never uploaded it

    @property
    def kind(self) -> str:
        return str(self.header.get("kind") or "migrate")

    @property
    def started(self) -> str:
        return str(self.header.get("startedAt", ""))

    @property
    def finished(self) -> str | None:
        return (self.summary or {}).get("finishedAt")

    @property
    def stopped(self) -> str | None:
        """Why the run stopped early, if it did."""
        return (self.summary or {}).get("stopped")

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.records if r.get("outcome") == outcome)

    @property
    def written(self) -> int:
        """Records this run changed: migrated, or for a sync also updated and deleted."""
        return sum(1 for r in self.records if r.get("outcome") in _WRITTEN)

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "startedAt": self.started,
            "finishedAt": self.finished,
            "kind": self.kind,
            "migrated": self.count("migrated"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "outcomes": dict(Counter(str(r.get("outcome")) for r in self.records)),
            "backupKey": self.header.get("backupKey"),
            "manifestKey": self.key,
            "stopped": self.stopped,
            "onlyOnThisMachine": self.local,
        }


# The outcomes of records a run wrote to (a sync's "adopted" moved only a baseline).
_WRITTEN = frozenset(
    {"migrated", "updated", "adopted", "settled", "deleted", "released", "repaired"}
)


def parse_manifest(run_id: str, key: str, body: bytes) -> Manifest:
    header: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    intents: list[dict[str, Any]] = []
    summary: dict[str, Any] | None = None
    for raw in body.decode("utf-8").splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # a line cut short by a crash: the lines before it still count
        kind = line.get("type")
        if kind == "run":
            header = line
        elif kind == "record":
            records.append(line)
        elif kind == "intent":
            intents.append(line)
        elif kind == "summary":
            summary = line
    return Manifest(run_id, key, header, tuple(records), summary, tuple(intents))


def read_manifest(store: Store, bucket: str, run_id: str, state_dir: Path) -> Manifest | None:
    """The run's manifest from S3, or from the local copy when S3 has none (a crashed run)."""
    key = manifest_key(run_id)
    body = store.get_bytes(bucket, key)
    if body is None:
        local = layout.local_manifest(state_dir, run_id)
        if not local.is_file():
            return None
        body = local.read_bytes()
    return parse_manifest(run_id, key, body)


def list_runs(store: Store, bucket: str, state_dir: Path | None = None) -> list[Manifest]:
    """Every run with a manifest in the bucket, oldest first; with `state_dir`, also the
    runs of this bucket cut off before their manifest reached it (their local copy)."""
    runs: dict[str, Manifest] = {}
    for info in store.list_objects(bucket, layout.RUNS_PREFIX):
        run_id = layout.run_of_manifest_key(info.key)
        if run_id is not None:
            body = store.get_bytes(bucket, info.key)
            if body is not None:
                runs[run_id] = parse_manifest(run_id, info.key, body)
    for path in layout.local_manifests(state_dir) if state_dir else []:
        run_id = path.parent.name
        if run_id not in runs:
            found = parse_manifest(run_id, manifest_key(run_id), path.read_bytes())
            if found.header.get("bucket") == bucket:
                runs[run_id] = replace(found, local=True)
    return sorted(runs.values(), key=lambda m: m.started)


def rollback_records(store: Store, bucket: str) -> list[tuple[str, str]]:
    """(when, id) for every item an applied rollback deleted, from the records it left."""
    found = []
    for info in store.list_objects(bucket, layout.RUNS_PREFIX):
        if not layout.is_rollback_key(info.key):
            continue
        body = store.get_bytes(bucket, info.key)
        try:
            record = json.loads(body or b"{}")
        except ValueError:
            continue
        when = str(record.get("rolledBackAt", ""))
        for step in record.get("deleted", []):
            if step.get("kind") == "item":
                found.append((when, str(step.get("target"))))
    return found


def unfinished_runs(store: Store, state_dir: Path, bucket: str, table: str) -> list[Manifest]:
    """Runs of this bucket and table that were cut off: their local manifest has no
    summary, or it never reached S3 (killed while uploading it)."""
    found = []
    for path in layout.local_manifests(state_dir):
        run_id = path.parent.name
        manifest = parse_manifest(run_id, manifest_key(run_id), path.read_bytes())
        header = manifest.header
        if header.get("bucket") != bucket or header.get("table") != table:
            continue
        if manifest.summary is None or store.head_object(bucket, manifest.key) is None:
            found.append(manifest)
    return found


def keep_unfinished(store: Store, state_dir: Path, manifest: Manifest, resumed_by: str) -> None:
    """Close a cut-off run's manifest with a summary and make sure S3 holds it (for rollback)."""
    path = layout.local_manifest(state_dir, manifest.run_id)
    if manifest.summary is None:
        summary = {
            "type": "summary",
            "finishedAt": None,
            "migrated": manifest.count("migrated"),
            "skipped": manifest.count("skipped"),
            "failed": manifest.count("failed"),
            "stopped": f"cut off; resumed by run {resumed_by}",
        }
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(summary) + "\n")
    bucket = str(manifest.header.get("bucket"))
    store.put_object(bucket, manifest.key, path.read_bytes(), "application/x-ndjson")


def resume_cut_off(
    store: Store, state_dir: Path, bucket: str, table: str, run_id: str
) -> list[str]:
    """Close and upload the manifests of runs of this bucket and table that were cut
    off (so `rollback` finds them); the ids of those runs, which `run_id` resumes."""
    earlier = unfinished_runs(store, state_dir, bucket, table)
    for cut_off in earlier:
        keep_unfinished(store, state_dir, cut_off, run_id)
    return [m.run_id for m in earlier]
