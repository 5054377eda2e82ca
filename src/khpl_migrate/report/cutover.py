"""After the migration, rendered for a person: sync, the review's checklist, the archive."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console

from khpl_migrate.console import capped, line, size
from khpl_migrate.core.threeway import RecordState, Side
from khpl_migrate.core.units import label
from khpl_migrate.cutover.archive import ArchiveResult
from khpl_migrate.cutover.freeze import FreezeResult
from khpl_migrate.order import hint
from khpl_migrate.review.checks import ChecklistLine
from khpl_migrate.sync.model import DELETE_CONFLICTS, Deletion, SyncEntry, SyncResult


def render_archive(console: Console, result: ArchiveResult) -> None:
    again = " (it was already there, with the same bytes)" if result.already_archived else ""
    line(console, f"🗄️ Archived {result.source_uri} as {result.key}{again}")
    line(console, f"   • {size(result.size)}, SHA-256 {result.sha256} (checked)")
    if result.removed_original:
        kept = "; the bucket keeps its old version" if result.versioned else ""
        line(console, f"   • The original was removed{kept}")
        if result.accepted_table_edits:
            count = result.accepted_table_edits
            line(
                console,
                f"   • The app's edits accepted (--allow-table-edits): {count:,} "
                f"record{'' if count == 1 else 's'} edited in DynamoDB since the migration",
            )
        if result.frozen:
            line(
                console,
                f"   • Still frozen (statement {result.frozen}): nothing can write "
                "registrations.json again; `khpl-migrate freeze-source --undo --apply` lifts it",
            )
    else:
        line(console, "   • The original stays in place")


def render_checks_summary(console: Console, lines: Sequence[ChecklistLine], seconds: float) -> None:
    """The review's checklist, in the terminal too, before the page is served."""
    marks = {"pass": "✅", "fail": "❌", "todo": "⬜"}
    line(console, f"📋 Post-migration checklist (checked in {seconds:.1f} s)")
    for checked in lines:
        line(console, f"{marks[checked.state]} {checked.title}: {checked.figure}")


# The words for sync's codes (the codes are what --json and the manifest carry).
STATE_WORDS = {
    RecordState.IN_STEP: "in step",
    RecordState.UPDATE: "to update",
    RecordState.CONFLICT: "conflict",
    RecordState.NEW: "new in the source",
    RecordState.APP_EQUAL: "written by the app, equal to the source",
    RecordState.APP_CONFLICT: "written by the app, different from the source",
    RecordState.DELETED_IN_TABLE: "deleted in DynamoDB since the migration",
    RecordState.TABLE_DELETE_CONFLICT: "deleted in DynamoDB, changed in the source",
    RecordState.DELETED_IN_SOURCE: "deleted in the source",
    RecordState.DELETE_CONFLICT: "deleted in the source, changed in DynamoDB",
    RecordState.UNUSABLE: "cannot be migrated",
    RecordState.NO_BASELINE: "baseline unavailable",
}
DELETION_WORDS = {
    Deletion.PLANNED: "to delete",
    Deletion.WAITING: "not deleted: pass --delete",
    Deletion.REFUSED: "not deleted: more than --max-delete of the table",
}

# The mark of each record's line: = in step, * carried over, + new, - deleted, ! look at it.
_MARKS = {
    RecordState.IN_STEP: "=",
    RecordState.UPDATE: "*",
    RecordState.NEW: "+",
    RecordState.APP_EQUAL: "=",
    RecordState.DELETED_IN_TABLE: "=",
    RecordState.DELETED_IN_SOURCE: "-",
}


def render_sync(console: Console, result: SyncResult, bucket: str) -> None:
    """Sync's plan or run: the counts, then every record not in step, by field name only."""
    if result.dry_run:
        line(console, f"🔄 Sync plan for run {result.run_id} (dry run: nothing was written)")
    elif result.backup_key is None:
        line(console, "🔄 Nothing to write: no backup or manifest was written")
    else:
        line(console, f"🔄 Sync run {result.run_id} finished in {result.seconds:.1f} s")
    for text in _sync_counts(result):
        line(console, f"   • {text}")
    if result.backup_key:
        line(console, f"   • Backup: s3://{bucket}/{result.backup_key}")
        line(console, f"   • Manifest: s3://{bucket}/{result.manifest_key}")
    shown = result.named()
    if shown:
        line(console)
        line(console, "Records (= in step, * from the source, + new, - deleted, ! look at it):")
        capped(console, [_sync_line(e, result) for e in shown])
    if result.failed:
        line(console)
        line(console, "❌ Could not be synced:")
        capped(console, [f"• {rid}: {why}" for rid, why in sorted(result.failed.items())])
    if result.stopped:
        line(console)
        line(console, f"⛔ The run stopped early: {result.stopped}")
    line(console)
    _sync_verdict(console, result)


def _sync_counts(result: SyncResult) -> list[str]:
    problems = result.problems()
    kinds = Counter(e.kind for e in result.entries)
    out = [f"Records in S3: {result.total}"]
    if result.dry_run:
        out += [
            f"To update from the source: {kinds[RecordState.UPDATE]}",
            f"New in the source (to migrate): {kinds[RecordState.NEW]}",
        ]
    else:
        tally = result.tally()
        out += [
            f"Updated from the source: {tally.get('updated', 0)}"
            f" (baselines moved where both sides agreed: {tally.get('adopted', 0)})",
            f"Conflicts settled with --take: {tally.get('settled', 0)}",
            f"Migrated (new in the source): {tally.get('migrated', 0)}",
            f"Deleted (deleted in the source): {tally.get('deleted', 0)}",
        ]
    kept = len(result.kept())  # each of them named in the list below
    out += [
        f"In step: {sum(1 for e in result.entries if e.in_step)} (with edits made in DynamoDB, "
        f"kept: {kept})",
        f"Conflicts: {sum(1 for e in problems if e.conflicts)}",
        *(
            [f"Deleted in DynamoDB, edited in the source: {gone}"]
            if (gone := kinds[RecordState.TABLE_DELETE_CONFLICT])
            else []
        ),
        f"Deleted in the source, still in DynamoDB: "
        f"{sum(1 for e in result.entries if e.deletion is not None)}",
        f"Damaged image objects: {sum(len(e.damaged) for e in result.entries)}"
        + (f" (repaired: {result.tally().get('repaired', 0)})" if result.repair else ""),
    ]
    return out


def _sync_line(entry: SyncEntry, result: SyncResult) -> str:
    outcome = result.outcomes.get(entry.id)
    notes = []
    if outcome and outcome != "unchanged":
        written = result.written.get(entry.id)
        notes.append(f"{outcome}: {', '.join(written)}" if written else outcome)
    notes += _sync_notes(entry)
    if entry.problem(result.repair) or entry.id in result.failed:
        mark = "!"
    elif outcome in _OUTCOME_MARKS:
        mark = _OUTCOME_MARKS[outcome]
    else:
        mark = _MARKS.get(entry.kind, "!")
    return f"{mark} {entry.id}: {'; '.join(notes) or STATE_WORDS[entry.kind]}"


_OUTCOME_MARKS = {
    "updated": "*",
    "adopted": "*",
    "settled": "*",
    "repaired": "*",
    "migrated": "+",
    "deleted": "-",
}


def _sync_notes(entry: SyncEntry) -> list[str]:
    notes = []
    if entry.kind in (
        RecordState.NEW,
        RecordState.UNUSABLE,
        RecordState.NO_BASELINE,
        RecordState.DELETED_IN_TABLE,
        RecordState.APP_EQUAL,
        RecordState.DELETED_IN_SOURCE,
        RecordState.DELETE_CONFLICT,
        RecordState.TABLE_DELETE_CONFLICT,
    ):
        notes.append(STATE_WORDS[entry.kind] + (f" ({entry.reason})" if entry.reason else ""))
    edited = "edited in the source" if entry.kind is RecordState.TABLE_DELETE_CONFLICT else None
    for side, words in (
        (Side.SOURCE, edited or "from the source"),
        (Side.AGREED, "both sides agree (the baseline moves)"),
        (Side.TABLE, "kept from DynamoDB"),
        (Side.CONFLICT, "conflict (changed on both sides, differently)"),
        (Side.NO_BASELINE, "conflict (written by the app, differs from the source)"),
    ):
        units = entry.units(side)
        if units:
            notes.append(f"{words}: {', '.join(label(u) for u in units)}")
    for damage in entry.damaged:
        notes.append(f"image {damage.name} damaged: {damage.problem}")
    if entry.deletion is not None:
        notes.append(DELETION_WORDS[entry.deletion])
    if not entry.selected:
        notes.append("not selected by --only-ids")
    return notes


def _sync_verdict(console: Console, result: SyncResult) -> None:
    problems = result.problems()
    if result.ok:
        line(console, "✅ Source and table in step")
        line(console, hint("sync"))
        return
    if not problems and not result.failed and result.stopped is None:  # a dry run, to write
        count = result.pending
        line(
            console,
            f"⏳ Not in step yet: {count} record{'s' if count != 1 else ''} to write; "
            "no conflicts, so applying this plan puts source and table in step",
        )
        line(console, "💡 Nothing was written. To apply: khpl-migrate sync --apply")
        return
    count = len(problems) + len(result.failed)
    line(console, f"❌ {count} record{'s need' if count != 1 else ' needs'} attention: see above")
    if any(e.conflicts or e.kind in DELETE_CONFLICTS for e in problems):
        line(
            console,
            "💡 Settle conflicts for ids listed in a file: "
            "khpl-migrate sync --apply --only-ids FILE --take source|table",
        )
    if any(e.deletion is Deletion.WAITING for e in problems):
        line(
            console,
            "💡 Delete items whose record left the source: khpl-migrate sync --apply --delete",
        )
    if any(e.deletion is Deletion.REFUSED for e in problems):
        line(console, "💡 More deletions than --max-delete allows: check the source, then raise it")
    if any(e.damaged for e in problems):
        line(console, "💡 Put back the source's bytes: khpl-migrate sync --apply --repair-images")
    if result.dry_run and not result.ok:
        line(console, "💡 Nothing was written. To apply what can be: khpl-migrate sync --apply")


def render_freeze(console: Console, result: FreezeResult) -> None:
    where = f"s3://{result.bucket}/{result.source_key}"
    sid = result.statement["Sid"]
    if result.undo:
        if not result.changed:
            line(console, f"🔓 {where} is not frozen (no statement {sid} in the bucket policy)")
        elif result.applied:
            line(console, f"🔓 Removed statement {sid}: {where} can be written again")
        else:
            line(console, f"🔓 Would remove statement {sid} from the bucket policy (dry run)")
            line(console, "💡 To remove it: khpl-migrate freeze-source --undo --apply")
        return
    if not result.changed:
        line(console, f"🧊 {where} is frozen already (statement {sid})")
    elif result.applied:
        line(console, f"🧊 Added statement {sid}: nobody can write or delete {where}")
        line(
            console,
            "💡 Next: a last khpl-migrate sync, "
            "then khpl-migrate verify --deep --allow-table-edits",
        )
    else:
        line(console, f"🧊 The statement above would deny writing and deleting {where} (dry run)")
        line(
            console,
            "💡 Switch the app to DynamoDB-only mode first; then: "
            "khpl-migrate freeze-source --apply",
        )
