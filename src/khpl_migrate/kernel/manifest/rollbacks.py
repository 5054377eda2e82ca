"""A rollback's record in S3 (also `rollback --json`'s shape, in part), its journal on this
machine, and a rollback as `runs` reads it back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from khpl_migrate.kernel.manifest.lines import ENCODER, SCHEMA, _Line

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
    return msgspec.json.format(ENCODER.encode(record), indent=1)


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
