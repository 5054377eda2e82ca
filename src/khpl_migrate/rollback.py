"""Undo one run from its manifest, touching nothing that run did not create.

The manifest says which items and image objects a run wrote. An item is deleted
only while its `migrationRunId` is still that run's (a conditional delete); an
image object only while its bytes still hash to what the run wrote, and then
with the ETag that was checked (S3 conditional delete), and never while an item
that stays in the table references it. Everything else is left, with the
reason. Like `migrate`, a plan is built first (reads only) and is either shown
(dry run) or carried out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from khpl_migrate import errors
from khpl_migrate.aws import Store
from khpl_migrate.journal import Manifest, iso_ms, read_manifest
from khpl_migrate.layout import RUNS_PREFIX, rollback_key
from khpl_migrate.settings import Settings

Kind = Literal["item", "object"]


@dataclass(frozen=True)
class Step:
    """Delete or leave one item (by id) or one image object (by key), and why."""

    kind: Kind
    target: str
    delete: bool
    reason: str
    etag: str | None = None  # objects: the version whose bytes were checked
    record: str | None = None  # the id of the record the step belongs to

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "delete": self.delete,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RollbackPlan:
    run_id: str
    bucket: str
    table: str
    steps: tuple[Step, ...]

    @property
    def deletions(self) -> list[Step]:
        return [s for s in self.steps if s.delete]

    @property
    def left(self) -> list[Step]:
        return [s for s in self.steps if not s.delete]


@dataclass
class RollbackResult:
    run_id: str
    dry_run: bool
    deleted: list[Step] = field(default_factory=list)
    left: list[Step] = field(default_factory=list)
    record_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "deletedItems": sum(1 for s in self.deleted if s.kind == "item"),
            "deletedObjects": sum(1 for s in self.deleted if s.kind == "object"),
            "deleted": [s.to_json() for s in self.deleted],
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
    bucket = settings.require_bucket()
    table = str(manifest.header.get("table") or settings.table)
    store.require_table(table)
    steps: list[Step] = []
    for line in sorted(manifest.records, key=lambda r: int(r.get("index", 0))):
        rid = line.get("id")
        written = [i for i in line.get("images", []) if i.get("written")]
        if rid is None or not (line.get("itemWritten") or written):
            continue
        item = store.get_item(table, str(rid))
        keep_refs = _refs(item) if item is not None else set()
        if line.get("itemWritten"):
            step = _item_step(str(rid), item, run_id)
            steps.append(step)
            if step.delete:
                keep_refs = set()  # the item goes: its images may go with it
        images = line.get("images", [])
        steps += [_object_step(store, bucket, image, keep_refs, rid) for image in images]
    return RollbackPlan(run_id, bucket, table, tuple(steps))


def _item_step(rid: str, item: dict[str, Any] | None, run_id: str) -> Step:
    """An item the run wrote goes only while it still carries the run's id."""
    if item is None:
        return Step("item", rid, False, "already gone", record=rid)
    owner = item.get("migrationRunId")
    if owner != run_id:
        why = f"now belongs to run {owner}" if owner else "rewritten by the app since the run"
        return Step("item", rid, False, why, record=rid)
    return Step("item", rid, True, "written by this run, unchanged owner", record=rid)


def _object_step(
    store: Store, bucket: str, image: dict[str, Any], keep_refs: set[str], rid: str
) -> Step:
    """An object the run wrote goes only while its bytes are the run's and no item that
    stays references it; the delete will be conditional on the ETag checked here."""
    key = str(image["key"])
    if not image.get("written"):
        return Step("object", key, False, "was there before the run (identical bytes)", record=rid)
    if key in keep_refs:
        return Step("object", key, False, "referenced by an item that stays", record=rid)
    found = store.get_object(bucket, key)
    if found is None:
        return Step("object", key, False, "already gone", record=rid)
    if hashlib.sha256(found[0]).hexdigest() != image.get("sha256"):
        return Step("object", key, False, "bytes changed since the run", record=rid)
    return Step("object", key, True, "written by this run, bytes unchanged", found[1].etag, rid)


def _refs(item: dict[str, Any]) -> set[str]:
    return {
        str(entry["s3Key"])
        for entry in (item.get("imageUploadResults") or {}).values()
        if isinstance(entry, dict) and "s3Key" in entry
    }


def show_rollback(plan: RollbackPlan) -> RollbackResult:
    """The display-only executor: what `apply_rollback` would do."""
    return RollbackResult(plan.run_id, True, plan.deletions, plan.left)


def apply_rollback(store: Store, plan: RollbackPlan) -> RollbackResult:
    """Carry out the plan: items first (conditional), then objects (conditional)."""
    result = RollbackResult(plan.run_id, False, left=list(plan.left))
    kept_items: set[str | None] = set()
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
