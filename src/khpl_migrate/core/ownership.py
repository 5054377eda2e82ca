"""Is this still the tool's? The one place that answers it. Pure.

The table and the image prefix are shared with the live app. The tool may change
or delete a thing only while it is exactly what the tool itself last wrote there;
anything else is the app's, reported and never touched. The answers come from
what the manifests and backups say the tool wrote (the baseline: each unit as the
run that last wrote it wrote it) against what is there now:

- an item is a run's while it names that run as its owner, no later run wrote any
  of it, and every field and image reference equals the run's copy of the record
  (nothing changed, added or removed: `item_changes`);
- an object is a run's while it carries the run's tag (`x-amz-meta-khpl-run`)
  and the bytes the run recorded (`object_is_runs`); the caller deletes it under
  S3's `If-Match` on the ETag it checked, so a race with the app loses nothing.

Whether an item still references an object is asked of the table itself (any
string equal to the key, anywhere in any item: `Store.strings_under`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from khpl_migrate.core.transform import MIGRATED_FROM
from khpl_migrate.core.units import Units, is_tool_key, item_units, label, references, runs_of

REFS = "imageUploadResults"


def item_changes(item: Mapping[str, Any], run_id: str, then: Units | None) -> list[str]:
    """Why `item` is not exactly what run `run_id` left there; [] when it is.

    `then` is the units of the run's copy of the record (None where it could not
    be read: then nothing can be proved, and the item is not the tool's to delete).
    """
    owner = item.get("migrationRunId")
    if owner != run_id:
        return [f"now belongs to run {owner}" if owner else "rewritten by the app since the run"]
    later = sorted(runs_of(item) - {run_id})
    if later:
        return [f"changed since by run {', '.join(later)}: roll that run back first"]
    if then is None:
        return ["the run's copy of the record cannot be read, so no change can be ruled out"]
    now = item_units(item)
    changes = [
        f"the app {verb} {label(unit)}"
        for unit in sorted(set(now) | set(then))
        if (verb := _verb(now.get(unit), then.get(unit)))
    ]
    refs = item.get(REFS) or {}
    if not isinstance(refs, Mapping):
        changes.append(f"the app rewrote {REFS}")
    else:
        odd = sorted(set(refs) - set(references(item)))
        changes += [f"the app added {REFS}.{name}" for name in odd]
    if item.get("migratedFrom") != MIGRATED_FROM:
        changes.append("the app changed migratedFrom")
    return changes


def _verb(now: bytes | None, then: bytes | None) -> str | None:
    if now == then:
        return None
    if then is None:
        return "added"
    return "removed" if now is None else "changed"


ObjectState = tuple[str | None, str]  # an object's run tag and the SHA-256 of its bytes


def replaced_images(
    item: Mapping[str, Any], found: Mapping[str, ObjectState | None], tool_runs: set[str]
) -> list[str]:
    """The item's images whose object another writer replaced (other bytes, or no run tag
    of the tool): an image is its reference with its object, so those are the app's and
    the item is not the tool's to delete. `found` has each referenced key's state (None:
    missing, which is damage, not the app's)."""
    rid = str(item.get("id", ""))
    out = []
    for name, ref in sorted(references(item).items()):
        state = found.get(str(ref["s3Key"]))
        if state is None or not is_tool_key(rid, name, ref):
            continue
        if not object_is_tools(state, tool_runs, str(ref.get("sha256"))):
            out.append(f"the app replaced the photo of image {name} ({ref['s3Key']})")
    return out


def object_is_tools(state: ObjectState, tool_runs: set[str], sha256: str) -> bool:
    """An object is the tool's while it carries the tag of one of its runs and the bytes
    its reference records; else another writer put it there (the app's)."""
    tag, sha = state
    return tag in tool_runs and sha == sha256


def object_is_runs(run_tag: str | None, sha256_now: str | None, run_id: str, sha256: str) -> bool:
    """An object is the run's while it carries the run's tag and the bytes it wrote."""
    return run_tag == run_id and sha256_now == sha256


def strings_in(value: Any) -> set[str]:
    """Every string anywhere in an item as read (maps, lists, sets): which keys it names."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return set().union(*(strings_in(inner) for inner in value))
    return set()
