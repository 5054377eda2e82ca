"""The guide's flow, rendered for a person: the verify report (line for line as the
guide prints it), the deep check, the plan and the run, runs, rollbacks and backups."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from khpl_migrate.console import LIST_LIMIT, capped, line, more, size
from khpl_migrate.core.layout import manifest_key
from khpl_migrate.core.masking import mask_pii
from khpl_migrate.cutover.restore import RestoreResult
from khpl_migrate.kernel.backups import Backup
from khpl_migrate.kernel.manifest import Manifest, Rollback
from khpl_migrate.migrate.apply import RunResult
from khpl_migrate.migrate.plan import PlanEntry
from khpl_migrate.order import hint, next_after
from khpl_migrate.rollback.apply import RollbackResult
from khpl_migrate.rollback.plan import ALREADY_UNDONE
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


def render_rollback(console: Console, result: RollbackResult) -> None:
    deleted, left = result.deleted, result.left
    verb = "Would delete" if result.dry_run else "Deleted"
    items = sum(1 for s in deleted if s.kind == "item")
    objects = len(deleted) - items
    dry = " (dry run: nothing changed)" if result.dry_run else ""
    line(console, f"↩️ Rollback of run {result.run_id}{dry}")
    line(console, f"   • Acts on: table {result.table}, bucket {result.bucket}")
    if result.already is not None:
        line(console, f"   • {_rollback_words(result.already)}: nothing to do, nothing written")
    line(console, f"   • {verb}: {items} items, {objects} image objects")
    if result.put_back:
        restored = sum(1 for s in result.put_back if s.kind == "restore")
        verb_back = "Would put back" if result.dry_run else "Put back"
        line(
            console,
            f"   • {verb_back}: the fields of {restored} items, "
            f"{len(result.put_back) - restored} deleted items",
        )
    undone = [s for s in left if s.reason.startswith(ALREADY_UNDONE)]
    left = [s for s in left if s not in undone]
    if undone:
        line(console, f"   • Already rolled back: {len(undone)} (--json lists them)")
    line(console, f"   • Left in place: {len(left)}")
    capped(console, [f"< {step.kind} {step.target}: {step.reason}" for step in result.put_back])
    capped(console, [f"- {step.kind} {step.target}" for step in deleted])
    if left:
        line(console, "   Left, and why:")
        capped(console, [f"= {s.kind} {s.target}: {s.reason}" for s in left])
    if result.dry_run and (deleted or result.put_back):
        line(console, f"💡 To apply: khpl-migrate rollback --run {result.run_id} --apply")
    elif result.record_key:
        line(console, f"   • Record of this rollback: {result.record_key}")
        line(console, f"   • The run is now {ROLLBACK_STATES[result.state]}{_kept(result.kept)}")


# The words for journal.RollbackState's codes (--json carries the codes).
ROLLBACK_STATES = {
    "not_rolled_back": "not rolled back",
    "rolled_back": "rolled back",
    "partly_rolled_back": "partly rolled back",
}


def _kept(count: int) -> str:
    return f" ({count} of what it wrote left in place: the app's)" if count else ""


def _rollback_words(rollback: Rollback) -> str:
    """'Already rolled back on 2026-12-02 13:46:12 by migration-runs/.../rollback-....json'"""
    when = rollback.at[:19].replace("T", " ")
    text = f"Already {ROLLBACK_STATES[rollback.state]} on {when} by {rollback.key}"
    if rollback.stopped:
        text += f" (it stopped: {rollback.stopped})"
    return text + _kept(rollback.kept)


def render_runs(console: Console, runs: Sequence[Manifest]) -> None:
    if not runs:
        line(console, "No runs yet: `khpl-migrate migrate --apply` records one per run")
        return
    # Ids wrap rather than being cut: the operator copies them into commands.
    table = Table(title="Runs", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("run id", no_wrap=True)
    table.add_column("kind")
    table.add_column("started", overflow="fold")
    for column in ("written", "skipped", "failed"):
        table.add_column(column, justify="right")
    table.add_column("state", overflow="fold")
    for run in runs:
        state = "finished" if run.finished else "unfinished"
        if run.local:
            state = "running, or cut off (its manifest is only on this machine so far)"
        if run.shards:
            whole = "finished" if run.finished else "running" if not run.summary else "incomplete"
            state = f"{whole}; shards: {_shard_states(run)}"
        table.add_row(
            run.run_id,
            run.kind,
            run.started[:19].replace("T", " "),
            *(str(run.counts[column]) for column in ("written", "skipped", "failed")),
            "stopped early" if run.stopped and not run.shards else state,
        )
    console.print(table, markup=False)
    # Each rollback on a line of its own: the record's key is too long for a column.
    for run in runs:
        if run.rollback is not None:
            words = _rollback_words(run.rollback).removeprefix("Already ")
            line(console, f"   ↩️ {run.run_id}: {words}")
    where = manifest_key("RUN_ID")
    line(console, f"   Manifests: {where} (every field with --json)")
    line(console, "💡 Undo one: khpl-migrate rollback --run RUN_ID (a dry run first)")


def _shard_states(run: Manifest) -> str:
    """'4 done' or '0-1 done, 2 running (or cut off), 3 missing': each shard's state."""
    words = {"running": "running (or cut off)", "failed": "failed", "missing": "missing"}
    groups: list[tuple[str, list[int]]] = []
    for shard in run.shards:
        if groups and groups[-1][0] == shard.state:
            groups[-1][1].append(shard.index)
        else:
            groups.append((shard.state, [shard.index]))
    if len(groups) == 1 and groups[0][0] == "done":
        return f"{len(run.shards)} done"
    shown = []
    for state, indexes in groups:
        span = str(indexes[0]) if len(indexes) == 1 else f"{indexes[0]}-{indexes[-1]}"
        shown.append(f"{span} {words.get(state, state)}")
    return ", ".join(shown)


def render_backups(console: Console, backups: Sequence[Backup]) -> None:
    if not backups:
        line(console, "No backups yet: each `migrate --apply` takes one before writing")
        return
    words = {True: "yes", False: "NO", None: "unknown (no run manifest names it)"}
    line(console, f"💾 Backups of the source: {len(backups)}")
    for backup in backups:
        run = f"run {backup.run_id}" if backup.run_id else "no run manifest"
        line(console, f"   {backup.key}")
        line(
            console,
            f"      {size(backup.size)} · {run} · matches its source: "
            f"{words[backup.matches_source]} · same as the current source: "
            f"{words[backup.same_as_current]}",
        )


def render_restore(console: Console, result: RestoreResult) -> None:
    plan, backup = result.plan, result.plan.backup
    where = f"s3://{plan.bucket}/{plan.source_key}"
    checked = {
        True: "matches the source its run read",
        False: "DOES NOT match the source its run read",
        None: "not checked (no run manifest names it)",
    }[backup.matches_source]
    run = f"run {backup.run_id}" if backup.run_id else "no run manifest"
    if result.restored:
        line(console, f"✅ Restored {where} from {backup.key}")
    else:
        line(console, f"♻️ Restore {where} from {backup.key} (dry run: nothing was written)")
    line(
        console,
        f"   backup: {size(plan.backup_info.size)} · sha256 {plan.sha256} · {run} · {checked} · "
        f"{plan.records:,} records",
    )
    current = plan.current
    seen = (
        "missing"
        if current is None
        else f"{size(current.size)} · ETag {plan.current_etag} · version id "
        f"{current.version_id or 'none (versioning off)'}"
    )
    if result.restored:
        line(console, f"   it replaced the source that was: {seen}")
        line(console, "💡 Next: khpl-migrate verify")
        return
    line(console, f"   the source now: {seen}")
    line(
        console,
        f"💡 To put it back, only while the source is still this one: khpl-migrate "
        f"restore-source --backup {backup.key} --apply --expect-etag {plan.current_etag}",
    )
