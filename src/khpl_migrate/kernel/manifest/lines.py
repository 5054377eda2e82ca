"""The manifest's lines: one typed, versioned msgspec struct per line type, and their codec.

A line that does not decode (cut short by a crash, or of a type this version does
not know) is None: the lines before it still count. A manifest of the released
0.1.0 (no `schema`; a sync's planned counts and "left untouched" in words) reads
as today's (`_upgrade`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import msgspec

from khpl_migrate.core.transform import RunStamp
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
    # Where the record's bytes lie in the source version the run read, and so in its
    # backup (offset, length): its baseline is later fetched by range. Numbers only.
    at: tuple[int, int] | None = None
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

ENCODER = msgspec.json.Encoder(decimal_format="number")
_DECODER = msgspec.json.Decoder(Line)


def encode(line: msgspec.Struct) -> bytes:
    return ENCODER.encode(line)


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
