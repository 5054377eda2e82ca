"""The guide's flow, rendered for a person: the verify report (line for line as the
guide prints it), the deep check, the plan and the run, runs, rollbacks and backups."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from khpl_migrate.console import LIST_LIMIT, capped, line, more, size
from khpl_migrate.core.masking import mask_pii
from khpl_migrate.migrate.apply import RunResult
from khpl_migrate.migrate.plan import PlanEntry
from khpl_migrate.order import hint, next_after
from khpl_migrate.verify.model import DeepReport
from khpl_migrate.verify.status import VerifyReport


def _label(rid: str, name: str | None) -> str:
    return f"{name} ({rid})" if name else rid


def render_verify(
    console: Console, report: VerifyReport, *, migrate_hint: str | None = None
) -> None:
    """The guide's verification report."""
    if migrate_hint is None:  # the guide's "Run:" line: the next step not done yet
        migrate_hint = next_after("verify" if not report.table_exists else "create-table")
    others = ", ".join(report.run_tables)
    if report.run_tables:  # the wrong table named, most likely: the runs wrote to another
        migrate_hint = f"khpl-migrate verify --table {report.run_tables[0]}"
    line(console, "🔍 Verifying KHPL Data Migration Status")
    line(console, "=====================================")
    line(console, "📊 Loading data from both sources...")
    line(console)
    line(console, "📈 Data Summary:")
    line(console, f"   • S3 Records: {report.s3_records}")
    line(console, f"   • DynamoDB Records: {report.dynamo_records}")
    if report.run_tables:
        line(
            console,
            f"   (table {report.table} does not exist; the runs recorded in this bucket wrote "
            f"to {others}: pass --table {report.run_tables[0]}, or run `khpl-migrate "
            "create-table` to start a new table)",
        )
    elif not report.table_exists:
        line(console, "   (the DynamoDB table does not exist yet: run `khpl-migrate create-table`)")
    line(console)
    line(console, "🔍 Migration Analysis:")
    line(console, f"   • Records in both S3 and DynamoDB: {report.in_both}")
    line(console, f"   • Records marked as migrated: {report.marked_migrated}")
    line(console, f"   • Records only in S3: {len(report.only_in_s3)}")
    line(console, f"   • Records only in DynamoDB: {len(report.only_in_dynamo)}")
    line(console)
    if report.only_in_s3:
        line(console, "⚠️ Records needing migration (in S3 only):")
        _numbered(console, report.only_in_s3)
        line(console)
    if report.only_in_dynamo:
        line(
            console, "📝 Records only in DynamoDB (written by the app, not in registrations.json):"
        )
        _numbered(console, report.only_in_dynamo)
        line(console)
    if report.unusable:
        line(console, "❌ Source entries that cannot be migrated:")
        capped(console, [f"• index {u.index}{_shown(u.id)}: {u.reason}" for u in report.unusable])
        line(console)
    if report.duplicates:
        shown = ", ".join(report.duplicates[:LIST_LIMIT])
        line(console, f"⚠️ Ids that appear more than once in S3: {shown}")
        line(console)
    if report.by_date:
        line(console, "✅ Successfully migrated records:")
        for day, (records, images) in sorted(report.by_date.items()):
            line(console, f"   📅 {day}: {records} records")
            line(console, f"      📸 Total images: {images}")
        line(console)
    line(console, "📊 Overall Status:")
    if report.complete:
        line(console, "✅ Migration appears complete - all S3 records found in DynamoDB")
    else:
        line(console, "⚠️ Migration needed - some records only exist in S3")
        line(console, f"💡 Run: {migrate_hint}")


def _numbered(console: Console, records: Sequence[tuple[str, str | None]]) -> None:
    for number, (rid, name) in enumerate(records[:LIST_LIMIT], start=1):
        line(console, f"   {number}. {_label(rid, name)}")
    more(console, len(records))


def render_deep(console: Console, deep: DeepReport, summary: VerifyReport | None = None) -> None:
    """The deep section after the guide's report: every field and image byte (with the
    guide's report as `summary`, the verdict names --allow-table-edits where it would pass)."""
    line(console)
    line(console, "🔬 Deep Check (every field and every image byte):")
    line(console, f"   • Identical (=): {deep.count('=')}")
    line(console, f"   • Missing in DynamoDB (-): {deep.count('-')}")
    line(console, f"   • Different (*): {deep.count('*')}")
    line(console, f"   • Could not be checked (!): {deep.count('!')}")
    line(console, f"   • Images checked: {deep.images} ({size(deep.image_bytes)})")
    line(console, f"   • Orphan image objects: {len(deep.orphans)}")
    line(console, f"   • Migrated items in no source record: {len(deep.unexplained)}")
    if deep.superseded:
        line(console, f"   • Superseded image objects, kept: {len(deep.superseded)}")
    if deep.not_written:
        line(console, f"   • Image objects the migration did not write: {len(deep.not_written)}")
    line(console, f"   • Checked in {deep.seconds:.1f} s")
    problems = [text for text in deep.lines() if not text.startswith("= ")]
    ordered = sorted(deep.entries, key=lambda e: e.index)
    warned = [e for e in ordered if e.warnings and e.status == "="]
    if problems:
        line(console)
        line(console, "❌ Differences (= same, - missing, * differs, ! not checked, + extra):")
        capped(console, problems)
    if warned:
        line(console)
        line(console, "⚠️ Faithful copies of questionable source images:")
        capped(console, [f"{e.id}: {'; '.join(e.warnings)}" for e in warned])
    line(console)
    if deep.ok:
        if deep.failing() == [] and any(e.status != "=" for e in deep.entries):
            line(
                console,
                "✅ Deep check passed - every difference is an edit made in DynamoDB since "
                "the migration (--allow-table-edits)",
            )
        else:
            line(console, "✅ Deep check passed - every field and image matches the source")
        if deep.allow_table_edits and (deep.accepted() or deep.of_deleted_items):
            line(console, f"   • The app's edits accepted: {_accepted(deep)}")
        line(console, hint("verify --deep"))
    else:
        line(console, "❌ Deep check found differences - see above")
        if summary is not None and deep.only_table_edits(summary):
            line(
                console,
                "💡 Every difference is an edit made in DynamoDB since the migration (the "
                f"app's, after the cut-over: {_accepted(deep.accepting_table_edits())}); "
                "to accept them: khpl-migrate verify --deep --allow-table-edits",
            )


def _accepted(deep: DeepReport) -> str:
    """How many of the app's edits --allow-table-edits accepts, in words."""
    count = deep.accepted()
    text = f"{count:,} record{'' if count == 1 else 's'} edited in DynamoDB"
    if deep.of_deleted_items:
        text += f", {len(deep.of_deleted_items):,} image objects of items it deleted"
    return text


def render_plan(console: Console, entries: Sequence[PlanEntry], *, per_record: bool) -> None:
    """The dry run's per-record table: create / skip / fail, images, bytes, item size."""
    if not (per_record and entries):
        return
    table = Table(title="Migration plan", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("id", overflow="fold")
    table.add_column("action")
    table.add_column("images", justify="right")
    table.add_column("image bytes", justify="right")
    table.add_column("item size", justify="right")
    table.add_column("reason", overflow="fold")
    style = {"create": "green", "skip": "yellow", "fail": "red"}
    for e in entries:
        action = e.action.value
        table.add_row(
            str(e.index),
            mask_pii(e.id) if e.id is not None else "-",
            f"[{style[action]}]{action}[/]",
            str(e.images),
            size(e.image_bytes),
            size(e.item_size) if e.item_size is not None else "-",
            mask_pii(e.reason or ""),
        )
    console.print(table)
    line(console)


def render_result(
    console: Console,
    result: RunResult,
    bucket: str,
    *,
    again: str = "khpl-migrate migrate --apply",
    records: str = "Records in S3",
) -> None:
    """The summary of a run or of a dry run (or of one shard: `records` says whose)."""
    failed = result.failed
    if result.dry_run:
        line(console, f"📋 Dry run (nothing was written) - run id {result.run_id}")
        line(console, f"   • Records in S3: {result.total}")
        line(console, f"   • To migrate: {result.migrated} ({_images(result)})")
        line(console, f"   • To skip (already in DynamoDB): {result.skipped}")
        line(console, f"   • Will fail: {len(failed)}")
    else:
        if not result.migrated and not result.backup_key:
            line(console, "📦 Nothing to migrate: no backup or manifest was written")
            for earlier in result.resumed:
                line(console, f"   • {_resumed(earlier)}")
        else:
            line(console, f"📦 Migration run {result.run_id} finished in {result.seconds:.1f} s")
        line(console, f"   • {records}: {result.total}")
        line(console, f"   • Migrated: {result.migrated} ({_images(result)})")
        line(console, f"   • Skipped (already in DynamoDB): {result.skipped}")
        line(console, f"   • Failed: {len(failed)}")
        for earlier in result.resumed:
            line(console, f"   • {_resumed(earlier)}")
        if result.backup_key:
            line(console, f"   • Backup: s3://{bucket}/{result.backup_key}")
        if result.manifest_key:
            local = f" (local copy: {result.manifest_path})" if result.manifest_path else ""
            line(console, f"   • Manifest: s3://{bucket}/{result.manifest_key}{local}")
    if failed:
        line(console)
        line(console, "❌ Records that will fail:" if result.dry_run else "❌ Failed records:")
        capped(console, [f"• index {f.index} ({_id(f.id)}): {f.reason}" for f in failed])
    if result.warnings:
        line(console)
        line(console, "⚠️ Warnings (migrated as they are):")
        capped(console, [f"• index {i} ({_id(rid)}): {w}" for i, rid, w in result.warnings])
    if result.stopped:
        line(console)
        line(console, f"⛔ The run stopped early: {result.stopped}")
        line(console, f"💡 Fix the cause and run `{again}` again: it resumes")


def _resumed(run_id: str) -> str:
    return f"Resumed after run {run_id}, which was cut off (its manifest is kept)"


def _images(result: RunResult) -> str:
    return f"{result.images} images, {size(result.image_bytes)}"


def _shown(rid: str | None) -> str:
    return f" ({rid})" if rid is not None else ""


def _id(rid: str | None) -> str:
    return rid if rid is not None else "no id"


def render_plan_line(console: Console, result: RunResult) -> None:
    """One line of plan before a real run: what it is about to do."""
    line(
        console,
        f"📋 Plan for run {result.run_id}: {result.total} records - {result.migrated} to migrate "
        f"({_images(result)}), {result.skipped} to skip, {len(result.failed)} will fail",
    )
