"""The steps of a rollback: what to do with one item or image object, and why.

Built by reading only (`rollback.plan_rollback`, `rollback_sync.sync_steps`);
carried out, each under its condition, by `rollback.apply_rollback`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from khpl_migrate.aws import Update
from khpl_migrate.core.ownership import object_is_runs
from khpl_migrate.kernel.heads import Heads
from khpl_migrate.kernel.manifest import ImageLine, StepLine

# Why a step leaves nothing of the run's in place: it is not there, or was not the run's.
GONE = "already gone"
ITEM_GONE = "the item is gone"
BEFORE_RUN = "was there before the run (identical bytes)"
NOTHING_LEFT = frozenset({GONE, ITEM_GONE, BEFORE_RUN})

# item, object: deleted; restore: a sync's changes to an item put back; recreate: an
# item a sync deleted put back.
StepKind = Literal["item", "object", "restore", "recreate"]
PUT_BACK = ("restore", "recreate")


@dataclass(frozen=True)
class Step:
    """Act on one item (by id) or image object (by key), or leave it, and why."""

    kind: StepKind
    target: str
    act: bool
    reason: str
    etag: str | None = None  # objects: the version whose bytes were checked
    record: str | None = None  # the id of the record the step belongs to
    change: Update | None = None  # restore: the conditional UpdateItem that puts it back
    item: dict[str, Any] | None = field(default=None, repr=False)  # recreate: the item
    # restore: the objects (key, SHA-256) this run wrote for the images it puts back, each
    # checked again right before the UpdateItem (the app may have PUT its photo over one).
    objects: tuple[tuple[str, str], ...] = ()

    def line(self) -> StepLine:
        """The step as the rollback's record keeps it."""
        return StepLine(
            self.kind,
            self.target,
            delete=self.act and self.kind not in PUT_BACK,
            put_back=self.act and self.kind in PUT_BACK,
            reason=self.reason,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "delete": self.act and self.kind not in PUT_BACK,
            "putBack": self.act and self.kind in PUT_BACK,
            "reason": self.reason,
        }


def item_step(rid: str, item: dict[str, Any] | None, changes: list[str] | None) -> Step:
    """An item the run wrote goes only while it is exactly what the run left
    (`ownership.item_changes`: `changes` is why not); the delete is conditional on every
    attribute as read."""
    if item is None:
        return Step("item", rid, False, GONE, record=rid)
    if changes:
        return Step("item", rid, False, "; ".join(changes), record=rid)
    why = "written by this run, unchanged since"
    return Step("item", rid, True, why, record=rid, item=item)


def object_step(heads: Heads, image: ImageLine, users: set[str], rid: str, run_id: str) -> Step:
    """An object the run wrote goes only while it is still the run's (its tag and bytes)
    and nothing that stays uses it (`users`: the items naming its key, the other runs'
    items in other tables); the delete will be conditional on the ETag checked here."""
    key = image.key
    if not image.written:
        return Step("object", key, False, BEFORE_RUN, record=rid)
    if users:
        shown = ", ".join(sorted(users)[:3]) + (" and more" if len(users) > 3 else "")
        return Step("object", key, False, f"still referenced: {shown}", record=rid)
    # S3's own SHA-256 checksum of the object (stored with it at upload) where it kept
    # one, else the bytes read and hashed.
    found = heads.of(key)
    if found is None:
        return Step("object", key, False, GONE, record=rid)
    info, sha = found
    if not object_is_runs(info.run_id, sha, run_id, image.sha256):
        why = (
            "bytes changed since the run"
            if sha != image.sha256
            else ("another writer replaced it since the run (it no longer carries the run's tag)")
        )
        return Step("object", key, False, why, record=rid)
    return Step("object", key, True, "written by this run, bytes unchanged", info.etag, rid)
