"""The runs recorded in a bucket, read back: manifests, a sharded run's parts, rollbacks.

Every reader of the runs goes through here (`runs`, rollback, sync's baselines,
verify, the review page), on the schema of `manifest.py`. Runs cut off before
their manifest reached S3 are read from this machine's state folder; the next
run of the same bucket and table closes and uploads them (`resume_cut_off`), so
that `rollback` finds what they wrote.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import msgspec

from khpl_migrate.aws import Store
from khpl_migrate.core import layout
from khpl_migrate.kernel.manifest import (
    IN_PROGRESS,
    NDJSON,
    ImageLine,
    Manifest,
    Outcome,
    RecordLine,
    Rollback,
    RollbackEnded,
    RollbackState,
    ShardState,
    StepOutcome,
    SummaryLine,
    decode_record,
    encode,
    journal_lines,
    parse_manifest,
)

CUT_OFF = "cut off before it recorded its end"


def read_manifest(store: Store, bucket: str, run_id: str, state_dir: Path) -> Manifest | None:
    """The run's manifest from S3, or from the local copy when S3 has none (a crashed run);
    a sharded run's with its shards' parts."""
    key = layout.manifest_key(run_id)
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
    shards = manifest.header.shards
    if shards is None:
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


_RANK: dict[str, int] = {Outcome.MIGRATED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2}


def _merged(kept: RecordLine, line: RecordLine) -> RecordLine:
    """One record as two attempts told it: the better outcome, and everything either
    wrote (an image one attempt wrote before it failed is still this run's to undo)."""
    better = _RANK.get(line.outcome, 3) < _RANK.get(kept.outcome, 3)
    best, other = (line, kept) if better else (kept, line)
    images: dict[str, ImageLine] = {}
    for image in (*best.images, *other.images):
        seen = images.setdefault(image.key, image)
        if image.written and not seen.written:
            images[image.key] = msgspec.structs.replace(seen, written=True)
    written = best.item_written or other.item_written
    return msgspec.structs.replace(best, item_written=written, images=tuple(images.values()))


def merge_shards(
    header: Manifest, shards: int, parts: list[Manifest], started: set[tuple[int, str | None]]
) -> Manifest:
    """The run's records from its parts: one line per record (an index run twice counts
    once, by its best outcome), and each shard's state. Pure."""
    best: dict[int, RecordLine] = {}
    for part in parts:
        for line in part.records:
            index = line.index or 0
            best[index] = _merged(best[index], line) if index in best else line
    states = []
    for index in range(shards):
        mine = [p for p in parts if p.header.shard == index]
        ended = {p.header.attempt for p in mine}
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
        summary = SummaryLine(finished_at=finished)
    elif not any(state.state == "running" for state in states):
        left = [f"{s.index} {s.state}" for s in states if s.state != "done"]
        summary = SummaryLine(stopped="shards " + ", ".join(left))
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
        key = layout.manifest_key(run_id)
        body = store.get_bytes(bucket, key) if key in keys else None
        if body is not None:
            found = with_shards(store, bucket, parse_manifest(run_id, key, body), keys)
            rollbacks = read_rollbacks(store, bucket, run_id, state_dir, keys)
            runs[run_id] = replace(found, rollbacks=rollbacks)
    for path in layout.local_manifests(state_dir) if state_dir else []:
        run_id = path.parent.name
        if run_id not in runs:
            found = parse_manifest(run_id, layout.manifest_key(run_id), path.read_bytes())
            if found.header.bucket == bucket:
                rollbacks = read_rollbacks(store, bucket, run_id, state_dir, by_run.get(run_id, []))
                runs[run_id] = replace(found, local=True, rollbacks=rollbacks)
    return sorted(runs.values(), key=lambda m: m.started)


def tables_written(store: Store, bucket: str) -> list[str]:
    """The tables the runs recorded in this bucket wrote to, from their manifests."""
    return sorted({m.table for m in list_runs(store, bucket) if m.table})


# -- rollbacks ---------------------------------------------------------------------------


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
        record = decode_record(store.get_bytes(bucket, key) or b"{}")
        at = key.rsplit("/rollback-", 1)[1].removesuffix(".json")
        if record is None:
            found[at] = Rollback(at, key, "partly_rolled_back", "its record cannot be read")
            continue
        state: RollbackState = "partly_rolled_back" if record.stopped else "rolled_back"
        if record.state == "partly_rolled_back":  # it left some of the run in place
            state = "partly_rolled_back"
        deleted = frozenset((step.kind, step.target) for step in record.deleted)
        found[at] = Rollback(at, key, state, record.stopped, deleted, record.kept)
    for path in layout.local_rollbacks(state_dir) if state_dir else []:
        if path.parent.name != run_id:
            continue
        at = path.stem.removeprefix("rollback-")
        lines = journal_lines(path.read_text(encoding="utf-8"))
        done = {(o.kind, o.target) for o in lines if isinstance(o, StepOutcome) and o.done}
        ended = any(isinstance(line, RollbackEnded) for line in lines)
        earlier = found.get(at)
        if earlier is not None and (ended or earlier.stopped != IN_PROGRESS):
            continue  # its record in S3 says how it ended
        found[at] = Rollback(
            at,
            earlier.key if earlier else str(path),
            "partly_rolled_back",
            CUT_OFF,
            frozenset(done) | (earlier.deleted if earlier else frozenset()),
        )
    return tuple(found[at] for at in sorted(found))


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
        for line in journal_lines(path.read_text(encoding="utf-8")):
            if isinstance(line, StepOutcome) and line.kind == "item" and line.done:
                found.append((when, line.target))
    for info in store.list_objects(bucket, layout.RUNS_PREFIX):
        if not layout.is_rollback_key(info.key):
            continue
        record = decode_record(store.get_bytes(bucket, info.key) or b"{}")
        if record is None:
            continue
        found += [(record.rolled_back_at, s.target) for s in record.deleted if s.kind == "item"]
    return found


def rollbacks_in_progress(
    store: Store, bucket: str, run_id: str, state_dir: Path | None
) -> set[str]:
    """The items earlier rollbacks of this run set out to delete and did not record the end
    of: their S3 record still says "in progress", or their local journal has the intent
    without its outcome."""
    found: set[str] = set()
    for info in store.list_objects(bucket, layout.run_prefix(run_id)):
        if layout.is_rollback_key(info.key):
            record = decode_record(store.get_bytes(bucket, info.key) or b"{}")
            if record is not None and record.stopped == IN_PROGRESS:
                found |= set(record.planned)
    for path in layout.local_rollbacks(state_dir) if state_dir else []:
        if path.parent.name != run_id:
            continue
        intents: set[str] = set()
        outcomes: set[str] = set()
        for line in journal_lines(path.read_text(encoding="utf-8")):
            if isinstance(line, RollbackEnded) or line.kind != "item":
                continue
            (outcomes if isinstance(line, StepOutcome) else intents).add(line.target)
        found |= intents - outcomes
    return found


# -- runs cut off ------------------------------------------------------------------------


def unfinished_runs(store: Store, state_dir: Path, bucket: str, table: str) -> list[Manifest]:
    """Runs of this bucket and table that were cut off: their local manifest has no
    summary, or it never reached S3 (killed while uploading it)."""
    found = []
    for path in layout.local_manifests(state_dir):
        run_id = path.parent.name
        manifest = parse_manifest(run_id, layout.manifest_key(run_id), path.read_bytes())
        if manifest.header.bucket != bucket or manifest.table != table:
            continue
        if manifest.summary is None or store.head_object(bucket, manifest.key) is None:
            found.append(manifest)
    return found


def keep_unfinished(store: Store, state_dir: Path, manifest: Manifest, resumed_by: str) -> None:
    """Close a cut-off run's manifest with a summary and make sure S3 holds it (for rollback)."""
    path = layout.local_manifest(state_dir, manifest.run_id)
    if manifest.summary is None:
        summary = SummaryLine(
            migrated=manifest.count(Outcome.MIGRATED),
            skipped=manifest.count(Outcome.SKIPPED),
            failed=manifest.count(Outcome.FAILED),
            stopped=f"cut off; resumed by run {resumed_by}",
        )
        with path.open("ab") as out:
            out.write(encode(summary) + b"\n")
    bucket = str(manifest.header.bucket)
    store.put_object(bucket, manifest.key, path.read_bytes(), NDJSON)


def resume_cut_off(
    store: Store, state_dir: Path, bucket: str, table: str, run_id: str
) -> list[str]:
    """Close and upload the manifests of runs of this bucket and table that were cut
    off (so `rollback` finds them); the ids of those runs, which `run_id` resumes."""
    earlier = unfinished_runs(store, state_dir, bucket, table)
    for cut_off in earlier:
        keep_unfinished(store, state_dir, cut_off, run_id)
    return [m.run_id for m in earlier]
