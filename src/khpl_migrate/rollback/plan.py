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

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from khpl_migrate.aws import ItemRejected, Store, key_named
from khpl_migrate.core import errors
from khpl_migrate.core.layout import (
    IMAGE_PREFIX,
    RUNS_PREFIX,
    is_rollback_key,
    local_rollback,
    local_rollbacks,
    rollback_key,
)
from khpl_migrate.core.ownership import item_changes, replaced_images, strings_in
from khpl_migrate.core.units import references
from khpl_migrate.kernel.baseline import History, history, read_baselines
from khpl_migrate.kernel.clock import iso_ms
from khpl_migrate.kernel.manifest import Manifest, Rollback, read_manifest, read_rollbacks
from khpl_migrate.rollback.steps import (
    GONE,
    NOTHING_LEFT,
    PUT_BACK,
    Heads,
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


@dataclass
class RollbackResult:
    run_id: str
    dry_run: bool
    deleted: list[Step] = field(default_factory=list)
    left: list[Step] = field(default_factory=list)
    put_back: list[Step] = field(default_factory=list)
    record_key: str | None = None
    stopped: str | None = None  # why an applied rollback stopped before its end
    table: str = ""  # what it acts on: the run's table and bucket, from its manifest
    bucket: str = ""
    # The last rollback of this run before this one, when this one has nothing to do:
    # the run is already rolled back (or partly, the rest being the app's).
    already: Rollback | None = None

    @property
    def kept(self) -> int:
        """What the run wrote that this rollback leaves in place (the app's now)."""
        return sum(1 for step in self.left if step.reason not in NOTHING_LEFT)

    @property
    def state(self) -> str:
        """The run's rollback state once this rollback is applied (its record says it)."""
        return "rolled_back" if self.stopped is None and not self.kept else "partly_rolled_back"

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "table": self.table,
            "bucket": self.bucket,
            "alreadyRolledBack": self.already.to_json() if self.already else None,
            "deletedItems": sum(1 for s in self.deleted if s.kind == "item"),
            "deletedObjects": sum(1 for s in self.deleted if s.kind == "object"),
            "restoredItems": sum(1 for s in self.put_back if s.kind == "restore"),
            "recreatedItems": sum(1 for s in self.put_back if s.kind == "recreate"),
            "deleted": [s.to_json() for s in self.deleted],
            "putBack": [s.to_json() for s in self.put_back],
            "left": [s.to_json() for s in self.left],
            "recordKey": self.record_key,
            "stopped": self.stopped,
        }


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
    table = str(manifest.header.get("table") or settings.table)
    store.require_table(table)
    lines = [
        line
        for line in sorted(manifest.records, key=lambda r: int(r.get("index") or 0))
        if line.get("id") is not None
        and (line.get("itemWritten") or any(i.get("written") for i in line.get("images", [])))
    ]
    now = store.get_items(table, [str(line["id"]) for line in lines if line.get("itemWritten")])
    past = history(store, bucket, settings.state_dir)
    heads = Heads(store, bucket)
    then = _copies_then(store, settings, manifest, now, past, heads)
    steps: list[Step] = []
    for line in lines:
        rid = str(line["id"])
        if line.get("itemWritten"):
            steps.append(item_step(rid, now.get(rid), then.get(rid)))
    going = {step.target for step in steps if step.act}
    named = _named(store, table, going)
    elsewhere = _used_elsewhere(store, past, manifest, lines)
    for line in lines:
        rid = str(line["id"])
        for image in line.get("images", []):
            key = str(image["key"])
            users = named.get(key, set()) | elsewhere.get(key, set())
            steps.append(object_step(heads, image, users, rid, run_id))
    if manifest.kind == "sync":
        steps += sync_steps(store, settings, manifest, table, named, heads, past)
    cut = _cut_off(store, bucket, run_id, settings.state_dir)
    finished = tuple(s.target for s in steps if s.kind == "item" and s.target in cut and not s.act)
    finished = tuple(rid for rid in finished if now.get(rid) is None)
    earlier = read_rollbacks(store, bucket, run_id, settings.state_dir)
    steps = [_undone_by(step, earlier) for step in steps]
    return RollbackPlan(run_id, bucket, table, tuple(steps), settings.state_dir, finished, earlier)


def _check_target(manifest: Manifest, bucket: str, table_given: str | None) -> None:
    """A rollback acts on the run's own table and bucket (its manifest names them): one
    named otherwise is a mistake, refused before anything is read there."""
    run_id, header = manifest.run_id, manifest.header
    run_bucket, run_table = header.get("bucket"), header.get("table")
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


def _cut_off(store: Store, bucket: str, run_id: str, state_dir: Path | None) -> set[str]:
    """The items earlier rollbacks of this run set out to delete and did not record the end
    of: their S3 record still says "in progress", or their local journal has the intent
    without its outcome."""
    found: set[str] = set()
    for info in store.list_objects(bucket, f"{RUNS_PREFIX}{run_id}/"):
        if is_rollback_key(info.key):
            try:
                record = json.loads(store.get_bytes(bucket, info.key) or b"{}")
            except ValueError:
                continue
            if record.get("stopped") == "in progress":
                found |= {str(rid) for rid in record.get("planned", [])}
    for path in local_rollbacks(state_dir) if state_dir else []:
        if path.parent.name != run_id:
            continue
        intents: set[Any] = set()
        outcomes: set[Any] = set()
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # the last line of a journal cut off mid-write
            if entry.get("kind") == "item":
                (intents if entry.get("type") == "intent" else outcomes).add(entry.get("target"))
        found |= {str(rid) for rid in intents - outcomes}
    return found


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
    store: Store, past: History, manifest: Manifest, lines: list[dict[str, Any]]
) -> dict[str, set[str]]:
    """The run's objects that another run recorded as used by an item of another table
    that still names them (migrating the same bucket into a second table reuses them)."""
    mine = {str(i["key"]) for line in lines for i in line.get("images", []) if i.get("written")}
    this_table = str(manifest.header.get("table") or "")
    used: dict[str, set[str]] = {}
    for other in past.runs.values():
        table = str(other.header.get("table") or "")
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
        if line.get("id") is not None:
            found = {str(i.get("key")) for i in line.get("images", [])}
            keys.setdefault(str(line["id"]), set()).update(found)
    for intent in run.intents:
        for move in (intent.get("images") or {}).values():
            target = (move or {}).get("to") or {}
            if intent.get("id") is not None and target.get("s3Key"):
                keys.setdefault(str(intent["id"]), set()).add(str(target["s3Key"]))
    return keys


def _result(plan: RollbackPlan, dry_run: bool) -> RollbackResult:
    already = plan.earlier[-1] if plan.earlier and plan.idle else None
    return RollbackResult(
        plan.run_id, dry_run, table=plan.table, bucket=plan.bucket, already=already
    )


def show_rollback(plan: RollbackPlan) -> RollbackResult:
    """The display-only executor: what `apply_rollback` would do."""
    result = _result(plan, True)
    result.deleted, result.left, result.put_back = plan.deletions, plan.left, plan.put_back
    return result


def apply_rollback(store: Store, plan: RollbackPlan) -> RollbackResult:
    """Carry out the plan: items put back first, then items deleted, then objects deleted,
    each conditional on what the plan read; journalled as it goes."""
    result = _result(plan, False)
    result.left = list(plan.left)
    if plan.finished:
        why = "deleted by an earlier rollback of this run, cut off before it recorded it"
        result.left = [
            s for s in result.left if not (s.kind == "item" and s.target in plan.finished)
        ]
        result.deleted += [Step("item", rid, True, why, record=rid) for rid in plan.finished]
    if plan.idle:
        return result  # writes nothing: no record either (an already rolled-back run)
    preflight(store, plan)
    stamp = iso_ms(datetime.now(UTC))
    journal = _Journal(plan, stamp)
    result.record_key = rollback_key(plan.run_id, stamp)
    # The record goes up before the first change, saying the rollback is under way (its
    # planned item deletions included): it proves the record can be written, and a
    # rollback killed before its end still left one for `runs`, sync and verify.
    planned = [s.target for s in plan.deletions if s.kind == "item"]
    started = {
        "rolledBackAt": stamp,
        "runId": plan.run_id,
        "stopped": "in progress",
        "state": "partly_rolled_back",
    }
    store.put_object(
        plan.bucket,
        result.record_key,
        json.dumps({**started, "planned": planned}, indent=1).encode(),
        "application/json",
    )
    try:
        _carry_out(store, plan, result, journal)
    except BaseException as exc:
        result.stopped = str(exc) or type(exc).__name__
        raise
    finally:
        record = {
            "rolledBackAt": stamp,
            **result.to_json(),
            "state": result.state,
            "kept": result.kept,
        }
        journal.line({"type": "summary", **record})
        store.put_object(
            plan.bucket,
            result.record_key,
            json.dumps(record, indent=1).encode(),
            "application/json",
        )
    return result


def _carry_out(store: Store, plan: RollbackPlan, result: RollbackResult, journal: _Journal) -> None:
    kept_items: set[str | None] = set()
    for step in plan.put_back:
        journal.intent(step)
        try:
            if step.kind == "restore" and _replaced_since(store, plan.bucket, step):
                done, reason = False, "the app replaced the photo this run wrote after the plan"
            elif step.kind == "restore":
                assert step.change is not None
                done = store.update_item_if(plan.table, step.target, step.change)
                reason = "changed after the plan"
            else:
                assert step.item is not None
                done = store.put_item_if_absent(plan.table, step.item)
                reason = "an item with this id appeared after the plan"
        except ItemRejected as exc:  # e.g. the app grew the item: the old value no longer fits
            done, reason = False, f"DynamoDB refused it ({exc}); left as it is"
        journal.outcome(step, done)
        if done:
            result.put_back.append(step)
        else:
            kept_items.add(step.record)
            result.left.append(Step(step.kind, step.target, False, reason))
    for step in (s for s in plan.deletions if s.kind == "item"):
        assert step.item is not None
        journal.intent(step)
        outcome = store.delete_item_exactly(plan.table, step.item)
        journal.outcome(step, outcome == "deleted")
        if outcome == "deleted":
            result.deleted.append(step)
        else:
            kept_items.add(step.record)
            why = (
                "the app changed it after the plan"
                if outcome == "changed"
                else ("the app added a field after the plan; put back as the app left it")
            )
            result.left.append(Step("item", step.target, False, why, record=step.record))
    objects = [s for s in plan.deletions if s.kind == "object"]
    # Asked again now the items are gone: an item the app wrote since may name a key.
    named = store.strings_under(plan.table, IMAGE_PREFIX) if objects else {}
    in_use = {key for keys in named.values() for key in keys}
    for step in objects:
        if step.record in kept_items:
            done, reason = False, "its item changed after the plan and stays"
        elif step.target in in_use:
            done, reason = False, "an item written after the plan references it"
        else:
            assert step.etag is not None
            journal.intent(step)
            done = store.delete_object_if_unchanged(plan.bucket, step.target, step.etag)
            journal.outcome(step, done)
            reason = "changed after the plan"
        if done:
            result.deleted.append(step)
        else:
            result.left.append(Step(step.kind, step.target, False, reason, record=step.record))


def _replaced_since(store: Store, bucket: str, step: Step) -> bool:
    """Whether another writer put its own bytes over an object this run wrote for an image
    the step puts back, since the plan looked (S3 and DynamoDB share no transaction: this
    narrows the window to the time between this HEAD and the UpdateItem)."""
    for key, sha in step.objects:
        head = store.head_object(bucket, key)
        if head is not None and (head.run_id is None or store.sha256_of(bucket, head) != sha):
            return True
    return False


def preflight(store: Store, plan: RollbackPlan) -> None:
    """Prove, changing nothing, that every kind of change the plan makes will be allowed
    and honoured: each request is made against an id or key that does not exist, under a
    condition that cannot hold. A refusal stops the rollback before its first change."""
    kinds = {step.kind for step in plan.steps if step.act}
    if not kinds:
        return
    probe = f"khpl-migrate-probe-{uuid.uuid4().hex}"
    try:
        if "item" in kinds:
            store.probe_item_write(plan.table, probe, "delete")
            # An item the app added a field to meanwhile is put back after the delete.
            store.probe_item_write(plan.table, probe, "put")
        if "restore" in kinds:
            store.probe_item_write(plan.table, probe, "update")
        if "recreate" in kinds:
            store.probe_item_write(plan.table, probe, "put")
        if "object" in kinds:
            store.probe_conditional_delete(plan.bucket, f"{IMAGE_PREFIX}{probe}")
    except errors.KhplError as exc:
        if "nothing was changed" not in exc.message:
            exc.message = f"Rollback not started, nothing was changed: {exc.message}"
        raise


class _Journal:
    """A rollback's intents and outcomes, on this machine as they happen (JSON lines):
    what a killed rollback did, for `runs` and the rollback that finishes it."""

    def __init__(self, plan: RollbackPlan, stamp: str) -> None:
        self.path = local_rollback(plan.state_dir, plan.run_id, stamp) if plan.state_dir else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def line(self, entry: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()

    def intent(self, step: Step) -> None:
        self.line({"type": "intent", "kind": step.kind, "target": step.target})

    def outcome(self, step: Step, done: bool) -> None:
        self.line({"type": "outcome", "kind": step.kind, "target": step.target, "done": done})
