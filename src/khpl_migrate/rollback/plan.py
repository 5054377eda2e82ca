"""Undo one run from its manifest, touching nothing that run did not leave as it is.

The manifest says which items and image objects a run wrote. The rule
(`ownership.py`): the tool deletes or puts back a thing only while it is exactly
what the run left there. An item is deleted only while every field and image
reference still equals the run's copy of the record (its backup) and no later run
wrote any of it; the delete is conditional on every attribute as read (and puts
the item back if the app added one meanwhile). An image object goes only while it
still carries the run's tag and bytes, no item in the table names its key
anywhere (a parallel scan, redone after the items are deleted), and no other run
recorded it as used by an item that is still there (another table); the delete
is conditional on the ETag checked. A sync run's changes to items are put back
field by field (`rollback_sync.py`). Everything else is left, with the reason.

Like `migrate`, a plan is built first (reads only) and is either shown (dry run)
or carried out. Carried out, it first proves it can make every kind of change it
plans (permissions; that S3 honours conditional deletes) and changes nothing if
not; then each step's intent and outcome go to a local journal as it goes, and
the rollback's record reaches S3 at the end even when a step failed. Running the
same rollback again finishes what a killed or failed one left.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from khpl_migrate.aws import Store, key_named
from khpl_migrate.core import errors
from khpl_migrate.core.layout import (
    IMAGE_PREFIX,
    RUNS_PREFIX,
)
from khpl_migrate.core.ownership import item_changes, replaced_images, strings_in
from khpl_migrate.core.units import references
from khpl_migrate.kernel.baseline import History, history, read_baselines
from khpl_migrate.kernel.heads import Heads
from khpl_migrate.kernel.manifest import Manifest, RecordLine, Rollback
from khpl_migrate.kernel.runs import read_manifest, read_rollbacks, rollbacks_in_progress
from khpl_migrate.rollback.steps import (
    GONE,
    PUT_BACK,
    Step,
    item_step,
    object_step,
)
from khpl_migrate.rollback.sync import sync_steps
from khpl_migrate.settings import Settings


@dataclass(frozen=True)
class RollbackPlan:
    run_id: str
    bucket: str
    table: str
    steps: tuple[Step, ...]
    state_dir: Path | None = None  # where the journal of an applied rollback goes
    # Items an earlier rollback of this run deleted before it was cut off (its record says
    # "in progress"): counted as deleted by this one, so that sync and verify know.
    finished: tuple[str, ...] = ()
    earlier: tuple[Rollback, ...] = ()  # the rollbacks of this run applied before, oldest first

    @property
    def idle(self) -> bool:
        """Nothing to delete, put back or record."""
        return not self.deletions and not self.put_back and not self.finished

    @property
    def deletions(self) -> list[Step]:
        return [s for s in self.steps if s.act and s.kind not in PUT_BACK]

    @property
    def put_back(self) -> list[Step]:
        return [s for s in self.steps if s.act and s.kind in PUT_BACK]

    @property
    def left(self) -> list[Step]:
        return [s for s in self.steps if not s.act]


def load_manifest(store: Store, settings: Settings, run_id: str) -> Manifest:
    bucket = settings.require_bucket()
    store.check_bucket(bucket)
    manifest = read_manifest(store, bucket, run_id, settings.state_dir)
    if manifest is None:
        raise errors.ConfigError(
            f"No manifest for run {run_id} in s3://{bucket}/{RUNS_PREFIX} or locally",
            "list the runs with `khpl-migrate runs` and copy the run id from there",
        )
    return manifest


def plan_rollback(
    store: Store, settings: Settings, run_id: str, *, table_given: str | None = None
) -> RollbackPlan:
    """Decide, reading only, what undoing `run_id` deletes and what it leaves.
    `table_given`: a table the operator named (--table), refused unless it is the run's."""
    manifest = load_manifest(store, settings, run_id)
    _check_target(manifest, settings.require_bucket(), table_given)
    unfinished = [shard for shard in manifest.shards if shard.state != "done"]
    if unfinished:
        # A shard cut off before its part reached S3 wrote what no manifest names yet:
        # re-run, it converges and records it; then everything can be undone.
        shown = ", ".join(f"{shard.index} ({shard.state})" for shard in unfinished)
        first = unfinished[0].index
        raise errors.ConfigError(
            f"Run {run_id} has shards that are not done: {shown}; what they wrote may be in "
            "no manifest yet",
            f"finish each first (it converges and records what it wrote), e.g. "
            f"`khpl-migrate migrate --apply --run {run_id} --shard {first}`, then roll back",
        )
    bucket = settings.require_bucket()
    table = manifest.table or settings.table
    store.require_table(table)
    lines = [
        line
        for line in sorted(manifest.records, key=lambda r: r.index or 0)
        if line.id is not None and (line.item_written or any(i.written for i in line.images))
    ]
    now = store.get_items(table, [str(line.id) for line in lines if line.item_written])
    past = history(store, bucket, settings.state_dir)
    heads = Heads(store, bucket)
    then = _copies_then(store, settings, manifest, now, past, heads)
    steps: list[Step] = []
    for line in lines:
        rid = str(line.id)
        if line.item_written:
            steps.append(item_step(rid, now.get(rid), then.get(rid)))
    going = {step.target for step in steps if step.act}
    named = _named(store, table, going)
    elsewhere = _used_elsewhere(store, past, manifest, lines)
    for line in lines:
        rid = str(line.id)
        for image in line.images:
            users = named.get(image.key, set()) | elsewhere.get(image.key, set())
            steps.append(object_step(heads, image, users, rid, run_id))
    if manifest.kind == "sync":
        steps += sync_steps(store, settings, manifest, table, named, heads, past)
    cut = rollbacks_in_progress(store, bucket, run_id, settings.state_dir)
    finished = tuple(s.target for s in steps if s.kind == "item" and s.target in cut and not s.act)
    finished = tuple(rid for rid in finished if now.get(rid) is None)
    earlier = read_rollbacks(store, bucket, run_id, settings.state_dir)
    steps = [_undone_by(step, earlier) for step in steps]
    return RollbackPlan(run_id, bucket, table, tuple(steps), settings.state_dir, finished, earlier)


def _check_target(manifest: Manifest, bucket: str, table_given: str | None) -> None:
    """A rollback acts on the run's own table and bucket (its manifest names them): one
    named otherwise is a mistake, refused before anything is read there."""
    run_id, header = manifest.run_id, manifest.header
    run_bucket, run_table = header.bucket, header.table
    if run_bucket and run_bucket != bucket:
        raise errors.ConfigError(
            f"Run {run_id} wrote to bucket {run_bucket} (its manifest says so), not {bucket}",
            f"roll it back in its own bucket: `khpl-migrate rollback --run {run_id} "
            f"--bucket {run_bucket}`",
        )
    if table_given is not None and run_table and run_table != table_given:
        raise errors.ConfigError(
            f"Run {run_id} wrote to table {run_table} (its manifest says so), not {table_given}",
            f"roll it back against its own table: `khpl-migrate rollback --run {run_id} "
            f"--table {run_table}` (or leave out --table: the manifest names it)",
        )


ALREADY_UNDONE = "already rolled back"


def _undone_by(step: Step, earlier: tuple[Rollback, ...]) -> Step:
    """A thing that is gone because an earlier rollback of this run deleted it says so."""
    if step.act or step.reason != GONE:
        return step
    for rollback in reversed(earlier):
        if (step.kind, step.target) in rollback.deleted:
            why = f"{ALREADY_UNDONE} (deleted by the rollback of {rollback.at})"
            return replace(step, reason=why)
    return step


def _copies_then(
    store: Store,
    settings: Settings,
    manifest: Manifest,
    now: dict[str, dict[str, Any]],
    past: History,
    heads: Heads,
) -> dict[str, Any]:
    """For each item still there that names the run as its owner, why it is not exactly
    what the run left ([] when it is), judged against the run's copy in its backup."""
    run_id = manifest.run_id
    mine = {rid for rid, item in now.items() if item.get("migrationRunId") == run_id}
    masked = {rid for rid in mine if "maskedFields" in now[rid]}
    read = read_baselines(store, settings, {run_id: mine} if mine else {}, past, masked=masked)
    out: dict[str, Any] = {}
    for rid, item in now.items():
        if rid in read.problems:
            out[rid] = [f"its copy in the run's backup cannot be read ({read.problems[rid]})"]
        else:
            out[rid] = item_changes(item, run_id, read.by_run.get(rid, {}).get(run_id))
        if not out[rid]:
            found = {
                str(ref["s3Key"]): heads.state(str(ref["s3Key"]))
                for ref in references(item).values()
            }
            out[rid] = replaced_images(item, found, set(past.runs))
    return out


def _named(store: Store, table: str, going: set[str]) -> dict[str, set[str]]:
    """Image keys named anywhere in an item that stays (not one this rollback deletes),
    with the ids of those items."""
    named: dict[str, set[str]] = {}
    for rid, keys in store.strings_under(table, IMAGE_PREFIX).items():
        if rid in going:
            continue
        for key in keys:
            named.setdefault(key, set()).add(f"item {rid}")
    return named


def _used_elsewhere(
    store: Store, past: History, manifest: Manifest, lines: list[RecordLine]
) -> dict[str, set[str]]:
    """The run's objects that another run recorded as used by an item of another table
    that still names them (migrating the same bucket into a second table reuses them)."""
    mine = {i.key for line in lines for i in line.images if i.written}
    this_table = manifest.table or ""
    used: dict[str, set[str]] = {}
    for other in past.runs.values():
        table = other.table or ""
        if other.run_id == manifest.run_id or table == this_table:
            continue  # this table is scanned whole
        for rid, keys in _keys_of(other).items():
            keys &= mine
            if not keys:
                continue
            who = f"run {other.run_id}'s item {rid} in table {table}"
            try:
                item = store.get_item(table, rid)
            except errors.TableMissing:
                continue
            except errors.AccessDenied:
                # Not allowed to look: the use cannot be ruled out, so the object stays.
                item = {"unknown": sorted(keys)}
                who += " (not readable with these credentials)"
            named = {k for text in strings_in(item or {}) for k in key_named(text, IMAGE_PREFIX)}
            for key in keys & named:
                used.setdefault(key, set()).add(who)
    return used


def _keys_of(run: Manifest) -> dict[str, set[str]]:
    """The image keys a run recorded for each record: its record lines' images, and the
    keys a sync moved references to (its intents)."""
    keys: dict[str, set[str]] = {}
    for line in run.records:
        if line.id is not None:
            keys.setdefault(line.id, set()).update(i.key for i in line.images)
    for intent in run.intents:
        for move in intent.images.values():
            target = move.to or {}
            if target.get("s3Key"):
                keys.setdefault(intent.id, set()).add(str(target["s3Key"]))
    return keys
