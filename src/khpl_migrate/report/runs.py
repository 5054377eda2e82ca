"""The renderings of what the runs left: `runs` (each run, its shards, its rollback state),
a rollback, the backups, a restore of the source."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from khpl_migrate.console import capped, line, size
from khpl_migrate.core.layout import manifest_key
from khpl_migrate.cutover.restore import RestoreResult
from khpl_migrate.kernel.backups import Backup
from khpl_migrate.kernel.manifest import Manifest, Rollback
from khpl_migrate.rollback.apply import RollbackResult
from khpl_migrate.rollback.plan import ALREADY_UNDONE


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
