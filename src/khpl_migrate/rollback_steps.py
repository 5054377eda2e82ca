"""The steps of a rollback: what to do with one item or image object, and why.

Built by reading only (`rollback.plan_rollback`, `rollback_sync.sync_steps`);
carried out, each under its condition, by `rollback.apply_rollback`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from khpl_migrate.aws import Store, Update

# item, object: deleted; restore: a sync's changes to an item put back; recreate: an
# item a sync deleted put back.
Kind = Literal["item", "object", "restore", "recreate"]
PUT_BACK = ("restore", "recreate")


@dataclass(frozen=True)
class Step:
    """Act on one item (by id) or image object (by key), or leave it, and why."""

    kind: Kind
    target: str
    act: bool
    reason: str
    etag: str | None = None  # objects: the version whose bytes were checked
    record: str | None = None  # the id of the record the step belongs to
    change: Update | None = None  # restore: the conditional UpdateItem that puts it back
    item: dict[str, Any] | None = field(default=None, repr=False)  # recreate: the item

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "delete": self.act and self.kind not in PUT_BACK,
            "putBack": self.act and self.kind in PUT_BACK,
            "reason": self.reason,
        }


def item_step(rid: str, item: dict[str, Any] | None, run_id: str) -> Step:
    """An item the run wrote goes only while it still carries the run's id."""
    if item is None:
        return Step("item", rid, False, "already gone", record=rid)
    owner = item.get("migrationRunId")
    if owner != run_id:
        why = f"now belongs to run {owner}" if owner else "rewritten by the app since the run"
        return Step("item", rid, False, why, record=rid)
    return Step("item", rid, True, "written by this run, unchanged owner", record=rid)


def object_step(
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


def refs_of(item: dict[str, Any]) -> set[str]:
    return {
        str(entry["s3Key"])
        for entry in (item.get("imageUploadResults") or {}).values()
        if isinstance(entry, dict) and "s3Key" in entry
    }
