"""What `verify --deep` found: one entry per source record, and the report they make.

The verdict (`DeepReport.passes`) is the one `verify --deep`, the review page
and `archive-source --remove-original` all give: every record is there and
nothing fails, the app's edits in DynamoDB passing only with
`--allow-table-edits`. The lines are rclone's `--combined` notation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from khpl_migrate.verify.status import VerifyReport

# A record's mark in rclone's --combined notation (the report's lines, the review page),
# and its stable code (what --json says).
Status = Literal["=", "-", "*", "!"]
STATUS_CODES = {"=": "identical", "-": "missing", "*": "differs", "!": "unchecked"}


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
    # The sides of its differences: "source", "table", "both", "damage" (for sync's review).
    sides: tuple[str, ...] = ()

    def line(self) -> str:
        who = self.id if self.id is not None else f"#{self.index} (no id)"
        text = f"{self.status} {who}"
        notes = self.details + tuple(f"warning: {w}" for w in self.warnings)
        return f"{text}: {'; '.join(notes)}" if notes else text

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "status": STATUS_CODES[self.status],
            "mark": self.status,
            "details": list(self.details),
            "warnings": list(self.warnings),
            "sides": list(self.sides),
        }


@dataclass
class DeepReport:
    entries: list[DeepEntry] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # migrated items in no source record
    superseded: list[str] = field(default_factory=list)  # objects a sync kept on purpose
    not_written: list[str] = field(default_factory=list)  # objects the migration did not write
    # The migration's images of items the app deleted: not orphans with --allow-table-edits
    # (without it they are in `orphans` too).
    of_deleted_items: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # verify --deep --allow-table-edits: what changed in DynamoDB since the migration (the
    # app's edits, after the cut-over) does not fail the check; damage in S3 still does.
    allow_table_edits: bool = False

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
        return not self.failing() and not self.orphans and not self.unexplained

    def failing(self) -> list[DeepEntry]:
        """The entries that fail the check."""
        allowed = {e.index for e in self.allowed()}
        return [e for e in self.entries if e.status != "=" and e.index not in allowed]

    def table_edits(self) -> list[DeepEntry]:
        """The records that differ only by edits made in DynamoDB since the migration (the
        app's, after the cut-over; a photo it replaced in S3 included), whether or not
        --allow-table-edits accepts them. A lost record, damage in S3, a change in the
        source or a difference whose side could not be named is never one."""
        return [
            e for e in self.entries if e.status != "=" and e.sides and set(e.sides) == {"table"}
        ]

    def allowed(self) -> list[DeepEntry]:
        """Differences --allow-table-edits lets pass: changed in DynamoDB only, no damage."""
        return self.table_edits() if self.allow_table_edits else []

    def passes(self, summary: VerifyReport) -> bool:
        """The verdict of verify --deep (exit 0), of review's checklist and of
        archive-source --remove-original: every record is there and nothing fails."""
        return self.complete(summary) and self.ok

    def accepting_table_edits(self) -> DeepReport:
        """This report judged with --allow-table-edits: the app's edits pass, and the
        images of items the app deleted are no longer orphans."""
        deleted = set(self.of_deleted_items)
        orphans = [key for key in self.orphans if key not in deleted]
        return replace(self, allow_table_edits=True, orphans=orphans)

    def only_table_edits(self, summary: VerifyReport) -> bool:
        """It fails, and every difference that fails it is an edit made in DynamoDB since
        the migration: --allow-table-edits would let it pass (the hint the commands give)."""
        return not self.passes(summary) and self.accepting_table_edits().passes(summary)

    def accepted(self) -> int:
        """How many records' differences --allow-table-edits accepted as the app's edits
        (the images of items the app deleted are counted in `of_deleted_items`)."""
        return len(self.allowed())

    def complete(self, summary: VerifyReport) -> bool:
        """Every usable source record is in the table, or was deleted there by the app and
        --allow-table-edits accepts that."""
        if summary.complete:
            return True
        gone = {e.id for e in self.allowed() if e.status == "-"}
        missing = {rid for rid, _ in summary.only_in_s3}
        return summary.table_exists and not summary.unusable and missing <= gone

    def attention_ids(self) -> list[str]:
        """Ids that need attention: what --failed-ids writes, for `sync --only-ids`."""
        ordered = sorted(self.failing(), key=lambda e: e.index)
        return [e.id for e in ordered if e.id is not None]

    def lines(self) -> list[str]:
        """The reconciliation report: `=`, `-`, `*`, `!` per record, `+` for extras."""
        out = [e.line() for e in sorted(self.entries, key=lambda e: e.index)]
        deleted = set(self.of_deleted_items)
        out += [
            f"+ {key}: image of an item deleted in DynamoDB (an orphan unless "
            "--allow-table-edits accepts the app's deletion)"
            if key in deleted
            else f"+ {key}: image object no item references (orphan)"
            for key in self.orphans
        ]
        out += [
            f"+ {rid}: item marked migratedFrom S3 but in no source record "
            "(deleted in the source: see `khpl-migrate sync`)"
            for rid in self.unexplained
        ]
        out += [
            f"+ {key}: kept by a sync (superseded, or its record deleted; not an orphan)"
            for key in self.superseded
        ]
        out += [
            f"+ {key}: not written by the migration (no x-amz-meta-khpl-run; not checked)"
            for key in self.not_written
        ]
        if self.allow_table_edits:
            out += [
                f"+ {key}: image of an item deleted in DynamoDB (allowed by --allow-table-edits)"
                for key in self.of_deleted_items
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
            "allowedTableEdits": len(self.allowed()),
            "tableEdits": len(self.table_edits()),
            "superseded": self.superseded,
            "notWrittenByTheMigration": self.not_written,
            "imagesOfDeletedItems": self.of_deleted_items,
            "seconds": round(self.seconds, 3),
            "records": [e.to_json() for e in sorted(self.entries, key=lambda e: e.index)],
        }
