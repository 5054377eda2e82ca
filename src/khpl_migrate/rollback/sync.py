"""Undoing a sync run: each unit it wrote goes back to its baseline, under a condition.

A sync run's manifest has an intent line for each change, written before it:
the units it set, removed or whose baseline it moved, the run each one's
baseline came from before, and the image references it moved. The item says
whether the change happened (its `migrationFieldRuns`/`migrationImageRuns`
name this run). The values are in the backups: this run's copy of the record
holds what it wrote, the earlier run's copy what was there before. So a unit is
put back only while the item still names this run for it and still holds what
this run wrote; an item this run deleted is rebuilt from its baselines (what it
was, unless `--take source` deleted it over the app's edits: those no backup
holds, and the README says so). The objects this run wrote for the images it
moved go, once nothing references them. Repairs stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from khpl_migrate.aws import ABSENT, Store, Update
from khpl_migrate.core.transform import FIELD_RUNS, IMAGE_RUNS, Transformed
from khpl_migrate.core.units import Unit, digest, provenance, references
from khpl_migrate.kernel.baseline import History, read_copies
from khpl_migrate.kernel.changes import REFS, Change
from khpl_migrate.kernel.heads import Heads
from khpl_migrate.kernel.manifest import ImageLine, IntentLine, Manifest, Outcome
from khpl_migrate.rollback.steps import ITEM_GONE, Step, object_step
from khpl_migrate.settings import Settings

Copies = Mapping[tuple[str, str], Transformed]


def sync_steps(
    store: Store,
    settings: Settings,
    manifest: Manifest,
    table: str,
    named: Mapping[str, set[str]],
    heads: Heads,
    past: History,
) -> list[Step]:
    """What undoing this sync run puts back, deletes and leaves: reads only. `past`: the
    runs recorded in the bucket (read once by the caller). `named`: the
    image keys items that stay name, with those items."""
    run_id = manifest.run_id
    chosen = _intents(store, table, manifest)
    if not chosen:
        return []
    needs: dict[str, set[str]] = {}
    for rid, (intent, _) in chosen.items():
        if intent.release:
            continue  # only who wrote it changed: no value to read
        # What this run wrote is in its own backup; an item it deleted is not.
        mine = set() if intent.delete else {run_id}
        for run in mine | _runs_before(intent):
            needs.setdefault(run, set()).add(rid)
    # Put back masked where the item was written masked (its copy in a backup is not).
    masked = {
        rid
        for rid, (intent, item) in chosen.items()
        if "maskedFields" in (item or intent.item or {})
    }
    bucket = settings.require_bucket()
    copies, problems = read_copies(store, settings, needs, past, masked=masked)
    steps: list[Step] = []
    for rid, (intent, item) in chosen.items():
        if rid in problems:
            steps.append(Step("restore", rid, False, f"cannot be put back: {problems[rid]}"))
        elif intent.release:
            steps.append(_unrelease(rid, item, intent))
        elif intent.delete:
            steps.append(_recreate(rid, item, intent, copies))
        else:
            steps += _restore(store, bucket, rid, item, intent, copies, run_id, named, heads)
    return steps


def _intents(
    store: Store, table: str, manifest: Manifest
) -> dict[str, tuple[IntentLine, dict[str, Any] | None]]:
    """The change of each record that may have happened, with the item now.

    Only a record's last intent can have been written: an earlier attempt's condition
    failed, which is why there was another. A change whose outcome line is missing (the
    run was cut off) or says it failed (after its write, e.g. a repair that followed)
    counts while the item names this run for one of its units; a deletion or release
    with no outcome line counts too (the item being gone, or released, says the rest).
    """
    done = {str(line.id): line.outcome for line in manifest.records}
    last = {intent.id: intent for intent in manifest.intents}
    chosen: dict[str, tuple[IntentLine, dict[str, Any] | None]] = {}
    for rid, intent in last.items():
        outcome = done.get(rid)
        if outcome is not None and outcome not in _CHANGED and outcome != Outcome.FAILED:
            continue  # "unchanged": the condition failed and the record was judged again
        item = store.get_item(table, rid)
        if intent.delete or intent.release:
            if outcome in (None, Outcome.DELETED, Outcome.RELEASED):
                chosen[rid] = (intent, item)
            continue
        named = item is not None and any(
            provenance(item, _unit(text)) == manifest.run_id for text in intent.units()
        )
        if outcome in _CHANGED or named:
            chosen[rid] = (intent, item)
    return chosen


def _target(intent: IntentLine, name: str) -> dict[str, Any] | None:
    """The reference this run moved the image to (its own object), if it moved it."""
    move = intent.images.get(name)
    return move.to if move else None


def _origin(intent: IntentLine, name: str) -> dict[str, Any] | None:
    move = intent.images.get(name)
    return move.from_ if move else None


_CHANGED = {Outcome.UPDATED, Outcome.ADOPTED, Outcome.SETTLED, Outcome.DELETED, Outcome.RELEASED}


def _runs_before(intent: IntentLine) -> set[str]:
    if intent.delete:
        kept = intent.item or {}
        runs = {str(kept["migrationRunId"])} if kept.get("migrationRunId") else set()
        for attribute in (FIELD_RUNS, IMAGE_RUNS):
            runs |= {str(r) for r in (kept.get(attribute) or {}).values()}
        return runs
    return {str(run) for run in intent.prev.values() if run}


def _unit(text: str) -> Unit:
    kind, _, name = text.partition(" ")
    return ("image" if kind == "image" else "field", name)


def _restore(
    store: Store,
    bucket: str,
    rid: str,
    item: dict[str, Any] | None,
    intent: IntentLine,
    copies: Copies,
    run_id: str,
    named: Mapping[str, set[str]],
    heads: Heads,
) -> list[Step]:
    """One UpdateItem putting back the units this run wrote that still hold what it wrote;
    then the objects this run wrote for them, where nothing references them any more."""
    if item is None:
        return [Step("restore", rid, False, ITEM_GONE, record=rid)]
    prev: dict[str, str | None] = dict(intent.prev)
    change = Change(owner=item.get("migrationRunId", ABSENT))
    put, left = [], []
    for text in intent.units():
        unit = _unit(text)
        before = prev.get(text)
        if before is not None and provenance(item, unit) == before != run_id:
            left.append(f"{text}: already names the run before this one (put back earlier)")
            continue
        why = _why_not(item, unit, text, intent, copies.get((rid, run_id)), run_id)
        if why is None and before is None:
            why = "before this run no run of the tool wrote it (the app's value: no backup has it)"
        if why is not None:
            left.append(f"{text}: {why}")
            continue
        assert before is not None
        if unit[0] == "image" and not _object_still_runs(store, bucket, intent, unit[1]):
            left.append(f"{text}: the app replaced the object it names since this run")
            continue
        _put_back(change, item, unit, text, intent, copies.get((rid, before)))
        change.runs(item, unit, before if before != item.get("migrationRunId") else ABSENT)
        put.append(text)
    steps = []
    if put:
        reason = "put back to what was there before this run: " + ", ".join(put)
        moved = [
            (str(target["s3Key"]), str(target["sha256"]))
            for name, move in intent.images.items()
            if f"image {name}" in put and (target := move.to)
        ]
        step = Step("restore", rid, True, reason, record=rid, change=change.update)
        steps.append(replace(step, objects=tuple(moved)))
    if left:
        steps.append(Step("restore", rid, False, "; ".join(left), record=rid))
    return steps + _moved_objects(rid, intent, put, run_id, named, heads)


def _moved_objects(
    rid: str,
    intent: IntentLine,
    put: list[str],
    run_id: str,
    named: Mapping[str, set[str]],
    heads: Heads,
) -> list[Step]:
    """The objects this run wrote for the images it moved: each goes, or stays, and why."""
    steps = []
    moved_back = {name for name in intent.images if f"image {name}" in put}
    for name, move in intent.images.items():
        target = move.to
        if not target:
            continue
        # Every object this run wrote for a moved image is considered, not only those
        # moved back now: a rollback killed after its UpdateItem left them, and its
        # re-run must finish. Whether one goes is the object's own question (the run's
        # tag and bytes, and no item naming it).
        key = str(target["s3Key"])
        found = heads.of(key)
        written = found is not None and found[0].run_id == run_id
        image = ImageLine(key, str(target["sha256"]), int(target.get("size") or 0), written)
        users = set(named.get(key, set()))
        if name in moved_back:
            users.discard(f"item {rid}")
        steps.append(object_step(heads, image, users, rid, run_id))
    return steps


def _why_not(
    item: Mapping[str, Any],
    unit: Unit,
    text: str,
    intent: IntentLine,
    mine: Transformed | None,
    run_id: str,
) -> str | None:
    """Why this unit is not put back: it changed since this run wrote it."""
    if provenance(item, unit) != run_id:
        return "written since by another run, or the item was rewritten"
    if text in intent.adopted:
        return None  # the value was the same on both sides; only its baseline moved
    kind, name = unit
    if kind == "image":
        # The whole reference must be what this run wrote: the manifest's key, hash, size,
        # type and place, with the header this run's copy of the record gives (the
        # manifest does not keep it); the object it names is checked by the caller.
        target = _target(intent, name)
        ref = references(item).get(name)
        wrote = _reference(target, mine, name) if target else None
        same = (ref is None and wrote is None) or (
            ref is not None and wrote is not None and digest(ref) == digest(wrote)
        )
        return None if same else "its reference changed since this run"
    wrote = mine.item.get(name, ABSENT) if mine is not None else ABSENT
    now = item.get(name, ABSENT)
    if _digest(now) != _digest(wrote):
        return "its value changed since this run wrote it"
    return None


def _object_still_runs(store: Store, bucket: str, intent: IntentLine, name: str) -> bool:
    """An image this run moved is put back only while the object the run wrote for it is
    still the run's (the app may have PUT its own photo over it and kept the reference)."""
    target = _target(intent, name)
    if not target:
        return True  # the run removed the reference: no object of its own to check
    head = store.head_object(bucket, str(target["s3Key"]))
    if head is None:
        return True  # gone: putting the old reference back loses nothing
    # Written by this run or, the same bytes, by an earlier one; never by the app.
    return head.run_id is not None and store.sha256_of(bucket, head) == str(target["sha256"])


def _digest(value: Any) -> bytes | None:
    return None if value is ABSENT else digest(value)


def _put_back(
    change: Change,
    item: dict[str, Any],
    unit: Unit,
    text: str,
    intent: IntentLine,
    before: Transformed | None,
) -> None:
    kind, name = unit
    if text in intent.adopted:
        current = item.get(name, ABSENT) if kind == "field" else references(item).get(name, ABSENT)
        change.expect[(name,) if kind == "field" else (REFS, name)] = current
        return
    if kind == "field":
        value = before.item.get(name, ABSENT) if before is not None else ABSENT
        change.field(name, value, item.get(name, ABSENT))
        return
    old = _origin(intent, name)
    change.image(item, name, _reference(old, before, name) if old else ABSENT)


def _reference(old: Mapping[str, Any], before: Transformed | None, name: str) -> dict[str, Any]:
    """The reference as it was: the manifest's key and hash, the header from the backup."""
    entry = dict(old)
    image = next((i for i in (before.images if before else ()) if i.name == name), None)
    if image is not None and image.header is not None:
        entry["dataUrlHeader"] = image.header
    return entry


def _unrelease(rid: str, item: dict[str, Any] | None, intent: IntentLine) -> Step:
    """An item this run released to the app (--take table on a deletion conflict): whose
    it was is put back, while no run has claimed it since."""
    if item is None:
        return Step("restore", rid, False, ITEM_GONE, record=rid)
    if item.get("migrationRunId"):
        return Step("restore", rid, False, "a run of the tool owns it again", record=rid)
    owner: Mapping[str, Any] = intent.owner or {}
    update = Update(
        set={(name,): value for name, value in owner.items()},
        expect={(name,): ABSENT for name in owner},
    )
    reason = "released to the app by this run; whose it was put back"
    return Step("restore", rid, True, reason, record=rid, change=update)


def _recreate(rid: str, item: dict[str, Any] | None, intent: IntentLine, copies: Copies) -> Step:
    """An item this run deleted, rebuilt from its baseline (it equalled it when deleted)."""
    if item is not None:
        return Step("recreate", rid, False, "an item with this id is in the table", record=rid)
    kept: dict[str, Any] = dict(intent.item or {})
    owner = str(kept.get("migrationRunId"))
    field_runs: Mapping[str, str] = kept.get(FIELD_RUNS) or {}
    rebuilt: dict[str, Any] = {"id": rid}
    names = {name for (copy_id, _), copy in copies.items() if copy_id == rid for name in copy.item}
    for name in sorted(names - set(_METADATA) - {"id"}):
        copy = copies.get((rid, str(field_runs.get(name, owner))))
        if copy is not None and name in copy.item:
            rebuilt[name] = copy.item[name]
    refs = {}
    image_runs: Mapping[str, str] = kept.get(IMAGE_RUNS) or {}
    for name, ref in (kept.get(REFS) or {}).items():
        refs[name] = _reference(ref, copies.get((rid, str(image_runs.get(name, owner)))), name)
    rebuilt |= {k: v for k, v in kept.items() if k != REFS} | {REFS: refs}
    reason = "deleted by this run (its record left the source); put back as it was"
    return Step("recreate", rid, True, reason, record=rid, item=rebuilt)


_METADATA = (REFS, "migratedFrom", "migrationDate", "migrationRunId", "maskedFields")
