"""Undo one run from its manifest, touching nothing that run did not create.

The manifest says which items and image objects a run wrote. An item is deleted
only while its `migrationRunId` is still that run's (a conditional delete); an
image object only while its bytes still hash to what the run wrote, and then
with the ETag that was checked (S3 conditional delete), and never while an item
that stays in the table references it. A sync run's changes to items are put
back field by field (`rollback_sync.py`). Everything else is left, with the
reason. Like `migrate`, a plan is built first (reads only) and is either shown
(dry run) or carried out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from khpl_migrate import errors
from khpl_migrate.aws import Store
from khpl_migrate.journal import Manifest, iso_ms, read_manifest
from khpl_migrate.layout import RUNS_PREFIX, rollback_key
from khpl_migrate.rollback_steps import PUT_BACK, Step, item_step, object_step, refs_of
from khpl_migrate.rollback_sync import sync_steps
from khpl_migrate.settings import Settings


@dataclass(frozen=True)
class RollbackPlan:
    run_id: str
    bucket: str
    table: str
    steps: tuple[Step, ...]

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

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "deletedItems": sum(1 for s in self.deleted if s.kind == "item"),
            "deletedObjects": sum(1 for s in self.deleted if s.kind == "object"),
            "restoredItems": sum(1 for s in self.put_back if s.kind == "restore"),
            "recreatedItems": sum(1 for s in self.put_back if s.kind == "recreate"),
            "deleted": [s.to_json() for s in self.deleted],
            "putBack": [s.to_json() for s in self.put_back],
            "left": [s.to_json() for s in self.left],
            "recordKey": self.record_key,
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


def plan_rollback(store: Store, settings: Settings, run_id: str) -> RollbackPlan:
    """Decide, reading only, what undoing `run_id` deletes and what it leaves."""
    manifest = load_manifest(store, settings, run_id)
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
    steps: list[Step] = []
    for line in sorted(manifest.records, key=lambda r: int(r.get("index") or 0)):
        rid = line.get("id")
        written = [i for i in line.get("images", []) if i.get("written")]
        if rid is None or not (line.get("itemWritten") or written):
            continue
        item = store.get_item(table, str(rid))
        keep_refs = refs_of(item) if item is not None else set()
        if line.get("itemWritten"):
            step = item_step(str(rid), item, run_id)
            steps.append(step)
            if step.act:
                keep_refs = set()  # the item goes: its images may go with it
        images = line.get("images", [])
        steps += [object_step(store, bucket, image, keep_refs, rid) for image in images]
    if manifest.kind == "sync":
        steps += sync_steps(store, settings, manifest, table)
    return RollbackPlan(run_id, bucket, table, tuple(steps))


def show_rollback(plan: RollbackPlan) -> RollbackResult:
    """The display-only executor: what `apply_rollback` would do."""
    return RollbackResult(plan.run_id, True, plan.deletions, plan.left, plan.put_back)


def apply_rollback(store: Store, plan: RollbackPlan) -> RollbackResult:
    """Carry out the plan: items put back first, then items deleted, then objects deleted,
    each conditional on what the plan read."""
    result = RollbackResult(plan.run_id, False, left=list(plan.left))
    kept_items: set[str | None] = set()
    for step in plan.put_back:
        if step.kind == "restore":
            assert step.change is not None
            done = store.update_item_if(plan.table, step.target, step.change)
            reason = "changed after the plan"
        else:
            assert step.item is not None
            done = store.put_item_if_absent(plan.table, step.item)
            reason = "an item with this id appeared after the plan"
        if done:
            result.put_back.append(step)
        else:
            kept_items.add(step.record)
            result.left.append(Step(step.kind, step.target, False, reason))
    for step in sorted(plan.deletions, key=lambda s: s.kind != "item"):
        if step.kind == "item":
            done = store.delete_item_if_run(plan.table, step.target, plan.run_id)
            reason = "changed owner after the plan"
            if not done:
                kept_items.add(step.record)
        elif step.record in kept_items:
            done, reason = False, "its item changed after the plan and stays"
        else:
            assert step.etag is not None
            done = store.delete_object_if_unchanged(plan.bucket, step.target, step.etag)
            reason = "changed after the plan"
        if done:
            result.deleted.append(step)
        else:
            result.left.append(Step(step.kind, step.target, False, reason))
    stamp = iso_ms(datetime.now(UTC))
    result.record_key = rollback_key(plan.run_id, stamp)
    record = {"rolledBackAt": stamp, **result.to_json()}
    store.put_object(
        plan.bucket, result.record_key, json.dumps(record, indent=1).encode(), "application/json"
    )
    return result
