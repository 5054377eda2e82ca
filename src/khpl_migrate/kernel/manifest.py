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
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from khpl_migrate.aws import Store
from khpl_migrate.core import layout
from khpl_migrate.core.layout import manifest_key
from khpl_migrate.kernel.clock import now_iso
from khpl_migrate.kernel.source import Digest, Source

Outcome = Literal["migrated", "skipped", "failed"]
NDJSON = "application/x-ndjson"


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
        self,
        store: Store,
        bucket: str,
        run_id: str,
        state_dir: Path,
        header: dict[str, Any],
        *,
        part: tuple[int, str] | None = None,
    ) -> None:
        """`part`: (index, attempt) of a shard, whose manifest is a part of its run's."""
        self._store = store
        self._bucket = bucket
        self.run_id = run_id
        self.part = part
        if part is None:
            self.key = manifest_key(run_id)
            self.path = layout.local_manifest(state_dir, run_id)
        else:
            self.key = layout.shard_part_key(run_id, part[0])
            self.path = layout.local_shard_part(state_dir, run_id, *part)
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
        body = self.path.read_bytes()
        if self.part is None:
            self._store.put_object(self._bucket, self.key, body, NDJSON)
            return
        # A shard's part is written once; an index that ran before (killed and re-run,
        # or started twice at once) keeps its first part and adds this attempt's.
        if self._store.put_object_if_absent(self._bucket, self.key, body, NDJSON) != "written":
            self.key = layout.shard_part_key(self.run_id, *self.part)
            self._store.put_object_if_absent(self._bucket, self.key, body, NDJSON)


@dataclass(frozen=True)
class ShardState:
    """One shard of a sharded run, from its parts and start markers in the bucket."""

    index: int
    state: Literal["done", "running", "failed", "missing"]
    attempts: int  # how many times it was started
    why: str | None = None  # a failed shard's reason

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "state": self.state,
            "attempts": self.attempts,
            "why": self.why,
        }


# A run's rollback state: stable codes for --json; the words are the renderers'.
RollbackState = Literal["not_rolled_back", "rolled_back", "partly_rolled_back"]


@dataclass(frozen=True)
class Rollback:
    """One applied rollback of a run: its record in S3, or this machine's journal of it
    when the record never got there (`key` is then the journal's path)."""

    at: str  # when it started (its record's stamp)
    key: str
    state: RollbackState  # rolled_back, or partly_rolled_back: stopped, or left some in place
    stopped: str | None = None  # why it stopped before its end ("in progress": cut off)
    deleted: frozenset[tuple[str, str]] = frozenset()  # (kind, target) it deleted
    kept: int = 0  # what the run wrote that it left in place (the app's now)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "at": self.at,
            "record": self.key,
            "stopped": self.stopped,
            "kept": self.kept,
        }


def read_rollbacks(
    store: Store,
    bucket: str,
    run_id: str,
    state_dir: Path | None = None,
    keys: list[str] | None = None,
) -> tuple[Rollback, ...]:
    """The applied rollbacks of a run, oldest first, from their records in S3 and this
    machine's journals (a rollback killed before its last record reached S3 is partly
    done whatever its record said). `keys`: the run's keys, when the caller listed them."""
    if keys is None:
        keys = [info.key for info in store.list_objects(bucket, layout.run_prefix(run_id))]
    found: dict[str, Rollback] = {}
    for key in keys:
        if not layout.is_rollback_key(key):
            continue
        try:
            record = json.loads(store.get_bytes(bucket, key) or b"{}")
        except ValueError:
            record = {"stopped": "its record cannot be read"}
        at = key.rsplit("/rollback-", 1)[1].removesuffix(".json")
        stopped = record.get("stopped")
        state: RollbackState = "partly_rolled_back" if stopped else "rolled_back"
        if record.get("state") == "partly_rolled_back":  # it left some of the run in place
            state = "partly_rolled_back"
        deleted = {
            (str(step.get("kind")), str(step.get("target"))) for step in record.get("deleted", [])
        }
        found[at] = Rollback(at, key, state, stopped, frozenset(deleted), record.get("kept", 0))
    for path in layout.local_rollbacks(state_dir) if state_dir else []:
        if path.parent.name != run_id:
            continue
        at = path.stem.removeprefix("rollback-")
        done, ended = set(), False
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # the last line of a journal cut off mid-write
            if entry.get("type") == "outcome" and entry.get("done"):
                done.add((str(entry.get("kind")), str(entry.get("target"))))
            ended = ended or entry.get("type") == "summary"
        earlier = found.get(at)
        if earlier is not None and (ended or earlier.stopped != "in progress"):
            continue  # its record in S3 says how it ended
        why = "cut off before it recorded its end"
        found[at] = Rollback(
            at,
            earlier.key if earlier else str(path),
            "partly_rolled_back",
            why,
            frozenset(done) | (earlier.deleted if earlier else frozenset()),
        )
    return tuple(found[at] for at in sorted(found))


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
    shards: tuple[ShardState, ...] = ()  # a sharded run's, each shard's state
    rollbacks: tuple[Rollback, ...] = ()  # its applied rollbacks, oldest first (`list_runs`)

    @property
    def rollback(self) -> Rollback | None:
        """The last rollback of this run, which says how far it is undone."""
        return self.rollbacks[-1] if self.rollbacks else None

    @property
    def rollback_state(self) -> RollbackState:
        return self.rollback.state if self.rollback else "not_rolled_back"

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

    @property
    def counts(self) -> dict[str, int]:
        """The run's numbers as `runs` and the review page give them (one source for both):
        records written to, left as they were (skipped, or a sync's unchanged), failed."""
        return {
            "written": self.written,
            "skipped": self.count("skipped") + self.count("unchanged"),
            "failed": self.count("failed"),
        }

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
            "counts": self.counts,
            "backupKey": self.header.get("backupKey"),
            "manifestKey": self.key,
            "stopped": self.stopped,
            "onlyOnThisMachine": self.local,
            "rollbackState": self.rollback_state,
            "rollback": self.rollback.to_json() if self.rollback else None,
            **({"shards": [shard.to_json() for shard in self.shards]} if self.shards else {}),
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
    """The run's manifest from S3, or from the local copy when S3 has none (a crashed run);
    a sharded run's with its shards' parts."""
    key = manifest_key(run_id)
    body = store.get_bytes(bucket, key)
    if body is None:
        local = layout.local_manifest(state_dir, run_id)
        if not local.is_file():
            return None
        body = local.read_bytes()
    return with_shards(store, bucket, parse_manifest(run_id, key, body))


def with_shards(
    store: Store, bucket: str, manifest: Manifest, keys: list[str] | None = None
) -> Manifest:
    """A sharded run seen as one: its header, and every shard's part, read from S3.
    `keys`: the run's keys when the caller listed them already (one LIST for all runs)."""
    shards = manifest.header.get("shards")
    if not isinstance(shards, int):
        return manifest
    if keys is None:
        keys = [info.key for info in store.list_objects(bucket, layout.run_prefix(manifest.run_id))]
    parts: list[Manifest] = []
    started: set[tuple[int, str | None]] = set()
    for key in keys:
        found = layout.parse_shard_key(key)
        if found is None:
            continue
        _, index, attempt, is_part = found
        body = store.get_bytes(bucket, key) if is_part else None
        if body is not None:
            parts.append(parse_manifest(manifest.run_id, key, body))
        elif not is_part:
            started.add((index, attempt))
    return merge_shards(manifest, shards, parts, started)


_RANK = {"migrated": 0, "skipped": 1, "failed": 2}


def _rank(line: dict[str, Any]) -> int:
    return _RANK.get(str(line.get("outcome")), 3)


def _merged(kept: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """One record as two attempts told it: the better outcome, and everything either
    wrote (an image one attempt wrote before it failed is still this run's to undo)."""
    best, other = (line, kept) if _rank(line) < _rank(kept) else (kept, line)
    images: dict[str, dict[str, Any]] = {}
    for image in [*best.get("images", []), *other.get("images", [])]:
        seen = images.setdefault(str(image.get("key")), dict(image))
        seen["written"] = bool(seen.get("written")) or bool(image.get("written"))
    written = bool(best.get("itemWritten")) or bool(other.get("itemWritten"))
    return {**best, "itemWritten": written, "images": list(images.values())}


def merge_shards(
    header: Manifest, shards: int, parts: list[Manifest], started: set[tuple[int, str | None]]
) -> Manifest:
    """The run's records from its parts: one line per record (an index run twice counts
    once, by its best outcome), and each shard's state. Pure."""
    best: dict[int, dict[str, Any]] = {}
    for part in parts:
        for line in part.records:
            index = int(line.get("index") or 0)
            best[index] = _merged(best[index], line) if index in best else line
    states = []
    for index in range(shards):
        mine = [p for p in parts if p.header.get("shard") == index]
        ended = {p.header.get("attempt") for p in mine}
        tries = {attempt for i, attempt in started if i == index} | ended
        if any(p.summary is not None and not p.stopped for p in mine):
            states.append(ShardState(index, "done", len(tries)))
        elif tries - ended:
            states.append(ShardState(index, "running", len(tries)))
        elif mine:
            last = max(mine, key=lambda p: p.started)
            states.append(ShardState(index, "failed", len(tries), last.stopped))
        else:
            states.append(ShardState(index, "missing", 0))
    summary = None
    if all(state.state == "done" for state in states):
        finished = max((str(p.finished) for p in parts if p.finished), default=None)
        summary = {"type": "summary", "finishedAt": finished, "stopped": None}
    elif not any(state.state == "running" for state in states):
        left = [f"{s.index} {s.state}" for s in states if s.state != "done"]
        summary = {"type": "summary", "finishedAt": None, "stopped": "shards " + ", ".join(left)}
    records = tuple(best[index] for index in sorted(best))
    return replace(header, records=records, summary=summary, shards=tuple(states))


def list_runs(store: Store, bucket: str, state_dir: Path | None = None) -> list[Manifest]:
    """Every run with a manifest in the bucket, oldest first; with `state_dir`, also the
    runs of this bucket cut off before their manifest reached it (their local copy)."""
    runs: dict[str, Manifest] = {}
    by_run: dict[str, list[str]] = {}
    for info in store.list_objects(bucket, layout.RUNS_PREFIX):
        by_run.setdefault(info.key.split("/")[1], []).append(info.key)
    for run_id, keys in by_run.items():
        key = manifest_key(run_id)
        body = store.get_bytes(bucket, key) if key in keys else None
        if body is not None:
            found = with_shards(store, bucket, parse_manifest(run_id, key, body), keys)
            rollbacks = read_rollbacks(store, bucket, run_id, state_dir, keys)
            runs[run_id] = replace(found, rollbacks=rollbacks)
    for path in layout.local_manifests(state_dir) if state_dir else []:
        run_id = path.parent.name
        if run_id not in runs:
            found = parse_manifest(run_id, manifest_key(run_id), path.read_bytes())
            if found.header.get("bucket") == bucket:
                rollbacks = read_rollbacks(store, bucket, run_id, state_dir, by_run.get(run_id, []))
                runs[run_id] = replace(found, local=True, rollbacks=rollbacks)
    return sorted(runs.values(), key=lambda m: m.started)


def tables_written(store: Store, bucket: str) -> list[str]:
    """The tables the runs recorded in this bucket wrote to, from their manifests."""
    return sorted(
        {str(m.header["table"]) for m in list_runs(store, bucket) if m.header.get("table")}
    )


def rollback_records(
    store: Store, bucket: str, state_dir: Path | None = None, runs: Collection[str] = ()
) -> list[tuple[str, str]]:
    """(when, id) for every item an applied rollback deleted, from the records it left, and
    from this machine's journals of rollbacks of `runs` (this bucket's: the state folder
    may hold other buckets' too) that were killed before their record reached S3."""
    found = []
    for path in layout.local_rollbacks(state_dir) if state_dir else []:
        if path.parent.name not in runs:
            continue
        when = path.stem.removeprefix("rollback-")
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # the last line of a journal cut off mid-write
            if entry.get("type") == "outcome" and entry.get("kind") == "item" and entry["done"]:
                found.append((when, str(entry.get("target"))))
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
