"""Carrying out a rollback plan: pre-flight first, then each change under its condition.

The plan (`rollback/plan.py`) was built by reading only. Carried out, the
rollback first proves it can make every kind of change it plans (permissions;
that S3 honours conditional deletes) and changes nothing if not; its record goes
to S3 "in progress" before the first change; each step's intent and outcome go
to a local journal as it goes; and the record reaches S3 again at the end even
when a step failed. Items are put back first, then items deleted, then objects
deleted, each conditional on what the plan read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from khpl_migrate.aws import ItemRejected, Store
from khpl_migrate.core import errors
from khpl_migrate.core.layout import IMAGE_PREFIX, local_rollback, rollback_key
from khpl_migrate.kernel.clock import iso_ms
from khpl_migrate.kernel.manifest import (
    JournalLine,
    Rollback,
    RollbackEnded,
    RollbackRecord,
    RollbackState,
    StepIntent,
    StepOutcome,
    encode,
    encode_record,
)
from khpl_migrate.rollback.plan import RollbackPlan
from khpl_migrate.rollback.steps import NOTHING_LEFT, Step

JSON = "application/json"


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
    def state(self) -> RollbackState:
        """The run's rollback state once this rollback is applied (its record says it)."""
        return "rolled_back" if self.stopped is None and not self.kept else "partly_rolled_back"

    def record(self, stamp: str, planned: tuple[str, ...] = ()) -> RollbackRecord:
        """What the rollback's record in S3 says: "in progress" with the item deletions it
        plans, before its first change; then how it ended."""
        if planned:
            return RollbackRecord(stamp, self.run_id, planned=planned)
        return RollbackRecord(
            rolled_back_at=stamp,
            run_id=self.run_id,
            state=self.state,
            stopped=self.stopped,
            table=self.table,
            bucket=self.bucket,
            deleted_items=sum(1 for s in self.deleted if s.kind == "item"),
            deleted_objects=sum(1 for s in self.deleted if s.kind == "object"),
            restored_items=sum(1 for s in self.put_back if s.kind == "restore"),
            recreated_items=sum(1 for s in self.put_back if s.kind == "recreate"),
            deleted=tuple(s.line() for s in self.deleted),
            put_back=tuple(s.line() for s in self.put_back),
            left=tuple(s.line() for s in self.left),
            record_key=self.record_key,
            kept=self.kept,
        )

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
    planned = tuple(s.target for s in plan.deletions if s.kind == "item")
    store.put_object(
        plan.bucket, result.record_key, encode_record(result.record(stamp, planned)), JSON
    )
    try:
        _carry_out(store, plan, result, journal)
    except BaseException as exc:
        result.stopped = str(exc) or type(exc).__name__
        raise
    finally:
        journal.line(RollbackEnded(state=result.state, stopped=result.stopped))
        store.put_object(plan.bucket, result.record_key, encode_record(result.record(stamp)), JSON)
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

    def line(self, line: JournalLine) -> None:
        if self.path is None:
            return
        with self.path.open("ab") as out:
            out.write(encode(line) + b"\n")
            out.flush()

    def intent(self, step: Step) -> None:
        self.line(StepIntent(step.kind, step.target))

    def outcome(self, step: Step, done: bool) -> None:
        self.line(StepOutcome(step.kind, step.target, done))
