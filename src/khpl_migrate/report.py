"""Human (rich) and JSON renderings of results. Works on plain data only.

The verify report keeps the guide's wording and layout line for line
(`verifyMigration.js`'s output in GUIDE.md), because the operator compares it
with the guide. Human output goes to stderr; JSON to stdout (DESIGN.md).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from khpl_migrate.masking import mask_pii

LIST_LIMIT = 50


class MaskingConsole(Console):
    """A rich Console that masks personal numbers in every string it prints."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(mask_pii(o) if isinstance(o, str) else o for o in objects), **kwargs)


class MaskingFilter(logging.Filter):
    """The same masking for log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_pii(record.getMessage()), None
        return True


def human_console(quiet: bool = False) -> Console:
    return MaskingConsole(stderr=True, highlight=False, soft_wrap=True, quiet=quiet)


def emit_json(data: Mapping[str, Any]) -> None:
    """One JSON object on stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=_default) + "\n")
    sys.stdout.flush()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def size(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _line(console: Console, text: str = "") -> None:
    console.print(text, markup=False, highlight=False)


def _label(rid: str, name: str | None) -> str:
    return f"{name} ({rid})" if name else rid


def render_verify(
    console: Console,
    data: Mapping[str, Any],
    names: Mapping[str, str | None],
    *,
    migrate_hint: str = "khpl-migrate migrate",
) -> None:
    """The guide's verification report."""
    _line(console, "🔍 Verifying KHPL Data Migration Status")
    _line(console, "=====================================")
    _line(console, "📊 Loading data from both sources...")
    _line(console)
    _line(console, "📈 Data Summary:")
    _line(console, f"   • S3 Records: {data['s3Records']}")
    _line(console, f"   • DynamoDB Records: {data['dynamoRecords']}")
    if not data["tableExists"]:
        _line(
            console, "   (the DynamoDB table does not exist yet: run `khpl-migrate create-table`)"
        )
    _line(console)
    _line(console, "🔍 Migration Analysis:")
    _line(console, f"   • Records in both S3 and DynamoDB: {data['inBoth']}")
    _line(console, f"   • Records marked as migrated: {data['markedMigrated']}")
    _line(console, f"   • Records only in S3: {len(data['onlyInS3'])}")
    _line(console, f"   • Records only in DynamoDB: {len(data['onlyInDynamo'])}")
    _line(console)
    if data["onlyInS3"]:
        _line(console, "⚠️ Records needing migration (in S3 only):")
        _numbered(console, data["onlyInS3"], names)
        _line(console)
    if data["onlyInDynamo"]:
        _line(
            console, "📝 Records only in DynamoDB (written by the app, not in registrations.json):"
        )
        _numbered(console, data["onlyInDynamo"], names)
        _line(console)
    if data["unusable"]:
        _line(console, "❌ Source entries that cannot be migrated:")
        _capped(
            console,
            [f"• index {e['index']}{_shown(e['id'])}: {e['reason']}" for e in data["unusable"]],
        )
        _line(console)
    if data["duplicateIds"]:
        _line(
            console,
            "⚠️ Ids that appear more than once in S3: "
            + ", ".join(data["duplicateIds"][:LIST_LIMIT]),
        )
        _line(console)
    if data["byMigrationDate"]:
        _line(console, "✅ Successfully migrated records:")
        for day, counts in data["byMigrationDate"].items():
            _line(console, f"   📅 {day}: {counts['records']} records")
            _line(console, f"      📸 Total images: {counts['images']}")
        _line(console)
    _line(console, "📊 Overall Status:")
    if data["complete"]:
        _line(console, "✅ Migration appears complete - all S3 records found in DynamoDB")
    else:
        _line(console, "⚠️ Migration needed - some records only exist in S3")
        _line(console, f"💡 Run: {migrate_hint}")


def _numbered(console: Console, ids: Sequence[str], names: Mapping[str, str | None]) -> None:
    for number, rid in enumerate(ids[:LIST_LIMIT], start=1):
        _line(console, f"   {number}. {_label(rid, names.get(rid))}")
    _more(console, len(ids))


def _capped(console: Console, lines: Sequence[str]) -> None:
    """At most LIST_LIMIT lines, then how many more there are (all of them with --json)."""
    for line in lines[:LIST_LIMIT]:
        _line(console, f"   {line}")
    _more(console, len(lines))


def _more(console: Console, count: int) -> None:
    if count > LIST_LIMIT:
        _line(console, f"   ... and {count - LIST_LIMIT} more (all of them with --json)")


def render_plan(
    console: Console, entries: Sequence[Mapping[str, Any]], *, per_record: bool
) -> None:
    """The dry run's per-record table: create / skip / fail, images, bytes, item size."""
    if per_record and entries:
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
            table.add_row(
                str(e["index"]),
                mask_pii(e["id"]) if e["id"] is not None else "-",
                f"[{style[e['action']]}]{e['action']}[/]",
                str(e["images"]),
                size(e["imageBytes"]),
                size(e["itemSize"]) if e["itemSize"] is not None else "-",
                mask_pii(e["reason"] or ""),
            )
        console.print(table)
        _line(console)


def render_result(
    console: Console, data: Mapping[str, Any], bucket: str, manifest_path: str | None
) -> None:
    """The summary of a run or of a dry run."""
    planned = data["dryRun"]
    total = data["total"]
    failed = data["failed"]
    if planned:
        _line(console, f"📋 Dry run (nothing was written) - run id {data['runId']}")
        _line(console, f"   • Records in S3: {total}")
        _line(
            console,
            f"   • To migrate: {data['migrated']} ({_images(data)})",
        )
        _line(console, f"   • To skip (already in DynamoDB): {data['skipped']}")
        _line(console, f"   • Will fail: {len(failed)}")
    else:
        if not data["migrated"] and not data["backupKey"]:
            _line(console, "📦 Nothing to migrate: no backup or manifest was written")
            for earlier in data.get("resumedFrom") or []:
                _line(console, f"   • {_resumed(earlier)}")
        else:
            _line(console, f"📦 Migration run {data['runId']} finished in {data['seconds']:.1f} s")
        _line(console, f"   • Records in S3: {total}")
        _line(
            console,
            f"   • Migrated: {data['migrated']} ({_images(data)})",
        )
        _line(console, f"   • Skipped (already in DynamoDB): {data['skipped']}")
        _line(console, f"   • Failed: {len(failed)}")
        for earlier in data.get("resumedFrom") or []:
            _line(console, f"   • {_resumed(earlier)}")
        if data["backupKey"]:
            _line(console, f"   • Backup: s3://{bucket}/{data['backupKey']}")
        if data["manifestKey"]:
            local = f" (local copy: {manifest_path})" if manifest_path else ""
            _line(console, f"   • Manifest: s3://{bucket}/{data['manifestKey']}{local}")
    if failed:
        _line(console)
        _line(console, "❌ Failed records:" if not planned else "❌ Records that will fail:")
        _capped(console, [f"• index {f['index']} ({_id(f['id'])}): {f['reason']}" for f in failed])
    if data.get("warnings"):
        _line(console)
        _line(console, "⚠️ Warnings (migrated as they are):")
        _capped(
            console,
            [f"• index {w['index']} ({_id(w['id'])}): {w['warning']}" for w in data["warnings"]],
        )
    if data.get("stopped"):
        _line(console)
        _line(console, f"⛔ The run stopped early: {data['stopped']}")
        _line(console, "💡 Fix the cause and run `khpl-migrate migrate --apply` again: it resumes")


def _resumed(run_id: str) -> str:
    return f"Resumed after run {run_id}, which was cut off (its manifest is kept)"


def _images(data: Mapping[str, Any]) -> str:
    return f"{data['images']} images, {size(data['imageBytes'])}"


def _shown(rid: str | None) -> str:
    return f" ({rid})" if rid is not None else ""


def _id(rid: str | None) -> str:
    return rid if rid is not None else "no id"


def render_plan_line(console: Console, data: Mapping[str, Any]) -> None:
    """One line of plan before a real run: what it is about to do."""
    _line(
        console,
        f"📋 Plan for run {data['runId']}: {data['total']} records - {data['migrated']} to migrate "
        f"({data['images']} images, {size(data['imageBytes'])}), {data['skipped']} to skip, "
        f"{len(data['failed'])} will fail",
    )


def render_table_result(console: Console, data: Mapping[str, Any]) -> None:
    verb = "Created" if data["created"] else "Table exists:"
    _line(console, f"✅ {verb} {data['table']} ({data['status']})")
    _line(console, "   • Key: id (string), billing: on demand")
    _line(console, f"   • Deletion protection: {_onoff(data['deletionProtection'])}")
    _line(console, f"   • Point-in-time recovery: {_onoff(data['pointInTimeRecovery'])}")
    if data.get("note"):
        _line(console, f"   ℹ️ {data['note']}")


def _onoff(value: bool | None) -> str:
    return {True: "on", False: "off", None: "not available here"}[value]


def render_error(console: Console, message: str, fix: str) -> None:
    console.print(f"[bold red]Error:[/] {_escape(message)}", highlight=False)
    if fix:
        console.print(f"[bold]Fix:[/] {_escape(fix)}", highlight=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def render_deep(console: Console, deep: Mapping[str, Any], lines: Sequence[str]) -> None:
    """The deep section after the guide's report: every field and image byte."""
    _line(console)
    _line(console, "🔬 Deep Check (every field and every image byte):")
    _line(console, f"   • Identical (=): {deep['identical']}")
    _line(console, f"   • Missing in DynamoDB (-): {deep['missing']}")
    _line(console, f"   • Different (*): {deep['differs']}")
    _line(console, f"   • Could not be checked (!): {deep['unchecked']}")
    _line(
        console, f"   • Images checked: {deep['imagesChecked']} ({size(deep['imageBytesChecked'])})"
    )
    _line(console, f"   • Orphan image objects: {len(deep['orphans'])}")
    _line(console, f"   • Migrated items in no source record: {len(deep['unexplained'])}")
    _line(console, f"   • Checked in {deep['seconds']:.1f} s")
    problems = [line for line in lines if not line.startswith("= ")]
    warned = [r for r in deep["records"] if r["warnings"] and r["status"] == "="]
    if problems:
        _line(console)
        _line(console, "❌ Differences (= same, - missing, * differs, ! not checked, + extra):")
        _capped(console, problems)
    if warned:
        _line(console)
        _line(console, "⚠️ Faithful copies of questionable source images:")
        _capped(console, [f"{r['id']}: {'; '.join(r['warnings'])}" for r in warned])
    _line(console)
    if deep["ok"]:
        _line(console, "✅ Deep check passed - every field and image matches the source")
    else:
        _line(console, "❌ Deep check found differences - see above")


def render_rollback(console: Console, data: Mapping[str, Any]) -> None:
    deleted, left = data["deleted"], data["left"]
    verb = "Would delete" if data["dryRun"] else "Deleted"
    items = sum(1 for s in deleted if s["kind"] == "item")
    objects = len(deleted) - items
    _line(
        console,
        f"↩️ Rollback of run {data['runId']}"
        + (" (dry run: nothing deleted)" if data["dryRun"] else ""),
    )
    _line(console, f"   • {verb}: {items} items, {objects} image objects")
    _line(console, f"   • Left in place: {len(left)}")
    _capped(console, [f"- {step['kind']} {step['target']}" for step in deleted])
    if left:
        _line(console, "   Left, and why:")
        _capped(console, [f"= {s['kind']} {s['target']}: {s['reason']}" for s in left])
    if data["dryRun"] and deleted:
        _line(console, f"💡 To delete: khpl-migrate rollback --run {data['runId']} --apply")
    elif data.get("recordKey"):
        _line(console, f"   • Record of this rollback: {data['recordKey']}")


def render_runs(console: Console, runs: Sequence[Mapping[str, Any]]) -> None:
    if not runs:
        _line(console, "No runs yet: `khpl-migrate migrate --apply` records one per run")
        return
    # Ids wrap rather than being cut: the operator copies them into commands.
    table = Table(title="Migration runs", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("run id", no_wrap=True)
    table.add_column("started", overflow="fold")
    for column in ("migrated", "skipped", "failed"):
        table.add_column(column, justify="right")
    table.add_column("state", overflow="fold")
    for run in runs:
        state = "finished" if run["finishedAt"] else "unfinished"
        table.add_row(
            run["runId"],
            run["startedAt"],
            str(run["migrated"]),
            str(run["skipped"]),
            str(run["failed"]),
            "stopped early" if run["stopped"] else state,
        )
    console.print(table, markup=False)
    _line(console, "   Manifests: migration-runs/RUN_ID/manifest.jsonl (every field with --json)")
    _line(console, "💡 Undo one: khpl-migrate rollback --run RUN_ID (a dry run first)")


def render_backups(console: Console, backups: Sequence[Mapping[str, Any]]) -> None:
    if not backups:
        _line(console, "No backups yet: each `migrate --apply` takes one before writing")
        return
    words = {True: "yes", False: "NO", None: "unknown (no run manifest names it)"}
    _line(console, f"💾 Backups of the source: {len(backups)}")
    for backup in backups:
        run = f"run {backup['runId']}" if backup["runId"] else "no run manifest"
        _line(console, f"   {backup['key']}")
        _line(
            console,
            f"      {size(backup['size'])} · {run} · matches its source: "
            f"{words[backup['matchesSource']]} · same as the current source: "
            f"{words[backup['sameAsCurrent']]}",
        )


def render_archive(console: Console, data: Mapping[str, Any]) -> None:
    again = " (it was already there, with the same bytes)" if data["alreadyArchived"] else ""
    _line(console, f"🗄️ Archived {data['source']} as {data['archiveKey']}{again}")
    _line(console, f"   • {size(data['size'])}, SHA-256 {data['sha256']} (checked)")
    if data["removedOriginal"]:
        kept = "; the bucket keeps its old version" if data["versioned"] else ""
        _line(console, f"   • The original was removed{kept}")
    else:
        _line(console, "   • The original stays in place")


def render_checks_summary(console: Console, lines: Sequence[Any], seconds: float) -> None:
    """The review's checklist, in the terminal too, before the page is served."""
    marks = {"pass": "✅", "fail": "❌", "todo": "⬜"}
    _line(console, f"📋 Post-migration checklist (checked in {seconds:.1f} s)")
    for line in lines:
        _line(console, f"{marks[line.state]} {line.title}: {line.figure}")


def render_doctor(console: Console, findings: Sequence[Mapping[str, Any]]) -> None:
    marks = {"ok": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌"}
    _line(console, "🩺 khpl-migrate doctor")
    for finding in findings:
        _line(console, f"{marks[finding['level']]} {finding['topic']}: {finding['message']}")
        if finding["fix"] and finding["level"] != "ok":
            _line(console, f"   Fix: {finding['fix']}")
    fails = sum(1 for f in findings if f["level"] == "fail")
    warns = sum(1 for f in findings if f["level"] == "warn")
    _line(console, f"{fails} failing, {warns} warnings")
