"""The run manifest: one typed, versioned schema for every line, written and read here only.

A run writes JSON Lines, appended (and flushed) locally as it goes and uploaded
to `migration-runs/{run_id}/manifest.jsonl` when it ends, however it ends
(docs/design.md, "Where things are stored"): a `run` header, a `record` line
per record outcome, a sync's `intent` line before each change and `repair`
lines, and a `summary`. Rollback, verify, sync's baselines, `runs` and the
review page read it back through `parse_manifest`. It holds ids, keys, sizes,
hashes and run ids: no personal data.

Every line is a msgspec `Struct`: one definition, checked as it is decoded.
`SCHEMA` is the version a header carries; a manifest of the released 0.1.0
(no `schema`, a sync's planned counts and "left untouched" in words) reads
the same (`tests/fixtures/manifests-0.1.0`). A line that does not decode (cut
short by a crash, or of a type this version does not know) is skipped: the
lines before it still count.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import msgspec

from khpl_migrate.aws import Store
from khpl_migrate.core import layout
from khpl_migrate.core.transform import RunStamp
from khpl_migrate.kernel.clock import now_iso
from khpl_migrate.kernel.source import Digest, Source

SCHEMA = 2  # 1: khpl-migrate 0.1.0 (its headers carry no version)
NDJSON = "application/x-ndjson"

RunKind = Literal["migrate", "sync"]


class Outcome(StrEnum):
    """What a run did to a record: the codes its record lines carry (and `--json` shows)."""

    MIGRATED = "migrated"  # its item (and images) written by this run
    SKIPPED = "skipped"  # already in the table, or not selected
    FAILED = "failed"
    # A sync's:
    UPDATED = "updated"  # the source's edits carried over
    ADOPTED = "adopted"  # equal edits on both sides: only the baseline moved
    SETTLED = "settled"  # a conflict settled with --take
    DELETED = "deleted"  # deleted in the source, and in the table with --delete
    RELEASED = "released"  # --take table on a record deleted in the source: the app's now
    REPAIRED = "repaired"  # a damaged image object put back
    UNCHANGED = "unchanged"  # judged again at the write, nothing left to write
    LEFT_UNTOUCHED = "left_untouched"  # the app registered the id during the run


# The outcomes of records a run wrote to (a sync's "adopted" moved only a baseline).
WRITTEN = frozenset(
    {
        Outcome.MIGRATED,
        Outcome.UPDATED,
        Outcome.ADOPTED,
        Outcome.SETTLED,
        Outcome.DELETED,
        Outcome.RELEASED,
        Outcome.REPAIRED,
    }
)


class _Line(msgspec.Struct, rename="camel", omit_defaults=True, tag_field="type", frozen=True):
    """A manifest line: camelCase keys on the wire, defaults left out."""


class SourceVersion(msgspec.Struct, rename="camel", omit_defaults=True):
    """One exact version of an object the run read: the source, or a sharded run's snapshot."""

    key: str
    etag: str
    version_id: str | None = None
    size: int = 0
    sha256: str = ""


class RunHeader(_Line, tag="run", frozen=True):
    """The first line: which run, of what, on which table, from which source version."""

    run_id: str
    kind: RunKind = "migrate"
    started_at: str = ""
    table: str | None = None
    bucket: str | None = None
    records_path: str | None = None
    source: SourceVersion | None = None
    backup_key: str | None = None
    planned: dict[str, int] = msgspec.field(default_factory=dict)
    schema: int = 1
    # A sharded run's header (written once by the prepare).
    shards: int | None = None
    snapshot: SourceVersion | None = None
    mask_aadhaar: bool = False
    max_write_rate: float | None = None
    kms_key_id: str | None = None
    tool_version: str | None = None
    # A shard's part: which shard, which attempt.
    shard: int | None = None
    attempt: str | None = None


def run_header(
    kind: RunKind,
    stamp: RunStamp,
    table: str,
    source: Source,
    digest: Digest,
    planned: dict[str, int],
) -> RunHeader:
    """The first line of a run of `source`'s pinned version (the backup comes with the run)."""
    version = SourceVersion(
        source.info.key, source.info.etag, source.info.version_id, digest.size, digest.sha256
    )
    return RunHeader(
        run_id=stamp.run_id,
        kind=kind,
        started_at=stamp.migration_date,
        table=table,
        bucket=source.bucket,
        records_path=source.records_path,
        source=version,
        planned=planned,
    )


class ImageLine(msgspec.Struct, rename="camel", omit_defaults=False, frozen=True):
    """An image object a record's run wrote, or found there with the same bytes."""

    key: str
    sha256: str
    size: int
    written: bool  # False: an identical object was there already


class RecordLine(_Line, tag="record", frozen=True):
    """What a run did to one record. A migration's outcome is migrated, skipped or
    failed; a sync's is one of `SYNC_OUTCOMES`."""

    id: str | None
    index: int | None = None
    outcome: str = "failed"
    reason: str | None = None
    item_written: bool = False
    images: tuple[ImageLine, ...] = ()
    # A sync's: the units it carried over, whose baseline it moved, the objects it kept.
    carried: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    superseded: tuple[str, ...] = ()
    deletion_accepted: bool = False


class ImageMove(msgspec.Struct, omit_defaults=True):
    """A reference a sync moved: from the one it read to its own (each whole, as `bare`)."""

    from_: dict[str, Any] | None = msgspec.field(default=None, name="from")
    to: dict[str, Any] | None = None


class IntentLine(_Line, tag="intent", frozen=True):
    """What a sync is about to change in one item, written before the change (and before its
    uploads): the units it sets, removes or re-baselines, each unit's run before, and the
    references it moves; or the item it deletes (who wrote what, no values); or that it
    releases the item to the app."""

    id: str
    set: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    prev: dict[str, str | None] = msgspec.field(default_factory=dict)
    images: dict[str, ImageMove] = msgspec.field(default_factory=dict)
    delete: bool = False
    item: dict[str, Any] | None = None
    release: bool = False
    owner: dict[str, Any] | None = None

    def units(self) -> tuple[str, ...]:
        """The labels of every unit the change touches."""
        return (*self.set, *self.removed, *self.adopted)


class RepairLine(_Line, tag="repair", frozen=True):
    """A damaged image object a sync put back (`--repair-images`)."""

    id: str
    key: str
    sha256: str


class SummaryLine(_Line, tag="summary", frozen=True):
    """The last line: when the run ended, why early if it did, and its counts."""

    finished_at: str | None = None
    stopped: str | None = None
    migrated: int | None = None
    skipped: int | None = None
    failed: int | None = None
    outcomes: dict[str, int] | None = None


Line = RunHeader | RecordLine | IntentLine | RepairLine | SummaryLine

_ENCODER = msgspec.json.Encoder(decimal_format="number")
_DECODER = msgspec.json.Decoder(Line)


def encode(line: msgspec.Struct) -> bytes:
    return _ENCODER.encode(line)


def decode(raw: bytes) -> Line | None:
    """One line, or None when it cannot be read (cut short, or of an unknown type)."""
    try:
        return _upgrade(_DECODER.decode(raw))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


# 0.1.0 wrote a sync's outcomes and planned counts in words; these are their codes.
_OLD_WORDS = {
    "left untouched": "left_untouched",
    "in step": "in_step",
    "to update": "to_update",
    "new in the source": "new",
    "written by the app, equal to the source": "app_equal",
    "written by the app, different from the source": "app_conflict",
    "deleted in DynamoDB since the migration": "deleted_in_table",
    "deleted in DynamoDB, changed in the source": "table_delete_conflict",
    "deleted in the source": "deleted_in_source",
    "deleted in the source, changed in DynamoDB": "delete_conflict",
    "cannot be migrated": "unusable",
    "baseline unavailable": "no_baseline",
}


def _upgrade(line: Line) -> Line:
    if isinstance(line, RecordLine) and line.outcome in _OLD_WORDS:
        return msgspec.structs.replace(line, outcome=_OLD_WORDS[line.outcome])
    if isinstance(line, RunHeader) and line.schema < 2:
        planned = {_OLD_WORDS.get(k, k): n for k, n in line.planned.items()}
        return msgspec.structs.replace(line, planned=planned)
    if isinstance(line, SummaryLine) and line.outcomes:
        return msgspec.structs.replace(
            line, outcomes={_OLD_WORDS.get(k, k): n for k, n in line.outcomes.items()}
        )
    return line


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


# -- a rollback's record and journal -----------------------------------------------------

# A run's rollback state: stable codes for --json; the words are the renderers'.
RollbackState = Literal["not_rolled_back", "rolled_back", "partly_rolled_back"]
IN_PROGRESS = "in progress"  # a rollback's record before its end: `stopped` says so


class StepLine(msgspec.Struct, rename="camel", frozen=True):
    """One step of a rollback as its record keeps it: what, and why."""

    kind: str  # item, object, restore, recreate
    target: str  # an id, or a key
    delete: bool = False
    put_back: bool = False
    reason: str = ""


class RollbackRecord(msgspec.Struct, rename="camel", frozen=True):
    """`migration-runs/{run}/rollback-{stamp}.json`: what one applied rollback did, and
    `rollback --json`. Written first "in progress" (with the item deletions it plans), then
    again at its end, however it ends."""

    rolled_back_at: str
    run_id: str
    state: RollbackState = "partly_rolled_back"
    stopped: str | None = IN_PROGRESS
    planned: tuple[str, ...] = ()
    dry_run: bool = False
    table: str = ""
    bucket: str = ""
    already_rolled_back: dict[str, Any] | None = None
    deleted_items: int = 0
    deleted_objects: int = 0
    restored_items: int = 0
    recreated_items: int = 0
    deleted: tuple[StepLine, ...] = ()
    put_back: tuple[StepLine, ...] = ()
    left: tuple[StepLine, ...] = ()
    record_key: str | None = None
    kept: int = 0  # what the run wrote that it left in place (the app's now)
    schema: int = SCHEMA


class StepIntent(_Line, tag="intent", frozen=True):
    """A rollback's journal on this machine: a step about to be made..."""

    kind: str
    target: str


class StepOutcome(_Line, tag="outcome", frozen=True):
    """... and whether it was made."""

    kind: str
    target: str
    done: bool


class RollbackEnded(_Line, tag="summary", frozen=True):
    """The journal's last line: the rollback recorded its end."""

    state: str | None = None
    stopped: str | None = None


JournalLine = StepIntent | StepOutcome | RollbackEnded
_RECORD = msgspec.json.Decoder(RollbackRecord)
_JOURNAL = msgspec.json.Decoder(JournalLine)


def encode_record(record: RollbackRecord) -> bytes:
    return msgspec.json.format(_ENCODER.encode(record), indent=1)


def decode_record(raw: bytes) -> RollbackRecord | None:
    try:
        return _RECORD.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def journal_lines(text: str) -> list[JournalLine]:
    """A rollback journal's lines (the last one may be cut off mid-write: left out)."""
    found = []
    for raw in text.splitlines():
        try:
            found.append(_JOURNAL.decode(raw))
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
    return found


# -- a run read back ---------------------------------------------------------------------


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


@dataclass(frozen=True)
class Manifest:
    """A run's manifest, read back: its header, its record lines, its summary (if it ended)."""

    run_id: str
    key: str
    header: RunHeader
    records: tuple[RecordLine, ...]
    summary: SummaryLine | None
    intents: tuple[IntentLine, ...] = ()  # a sync's, each written before its change
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
    def kind(self) -> RunKind:
        return self.header.kind

    @property
    def table(self) -> str | None:
        return self.header.table

    @property
    def started(self) -> str:
        return self.header.started_at

    @property
    def finished(self) -> str | None:
        return self.summary.finished_at if self.summary else None

    @property
    def stopped(self) -> str | None:
        """Why the run stopped early, if it did."""
        return self.summary.stopped if self.summary else None

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.records if r.outcome == outcome)

    @property
    def written(self) -> int:
        """Records this run changed: migrated, or for a sync also updated and deleted."""
        return sum(1 for r in self.records if r.outcome in WRITTEN)

    @property
    def counts(self) -> dict[str, int]:
        """The run's numbers as `runs` and the review page give them (one source for both):
        records written to, left as they were (skipped, or a sync's unchanged), failed."""
        return {
            "written": self.written,
            "skipped": self.count(Outcome.SKIPPED) + self.count(Outcome.UNCHANGED),
            "failed": self.count(Outcome.FAILED),
        }

    def to_json(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for line in self.records:
            outcomes[line.outcome] = outcomes.get(line.outcome, 0) + 1
        return {
            "runId": self.run_id,
            "startedAt": self.started,
            "finishedAt": self.finished,
            "kind": self.kind,
            "migrated": self.count(Outcome.MIGRATED),
            "skipped": self.count(Outcome.SKIPPED),
            "failed": self.count(Outcome.FAILED),
            "outcomes": outcomes,
            "counts": self.counts,
            "backupKey": self.header.backup_key,
            "manifestKey": self.key,
            "stopped": self.stopped,
            "onlyOnThisMachine": self.local,
            "rollbackState": self.rollback_state,
            "rollback": self.rollback.to_json() if self.rollback else None,
            **({"shards": [shard.to_json() for shard in self.shards]} if self.shards else {}),
        }


def parse_manifest(run_id: str, key: str, body: bytes) -> Manifest:
    """A manifest's lines, typed. One that does not decode is skipped (cut short by a
    crash, say): the lines before it still count."""
    header = RunHeader(run_id=run_id)
    records: list[RecordLine] = []
    intents: list[IntentLine] = []
    summary: SummaryLine | None = None
    for raw in body.splitlines():
        line = decode(raw) if raw.strip() else None
        if isinstance(line, RunHeader):
            header = line
        elif isinstance(line, RecordLine):
            records.append(line)
        elif isinstance(line, IntentLine):
            intents.append(line)
        elif isinstance(line, SummaryLine):
            summary = line
    return Manifest(run_id, key, header, tuple(records), summary, tuple(intents))
