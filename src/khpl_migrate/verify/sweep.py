"""`verify --deep`'s sweep: image objects no item references, migrated items no source
record explains.

An image object no item references is an orphan, and fails the check, unless a
sync kept it on purpose (bytes it superseded, images of a record it deleted),
the migration did not write it (no `x-amz-meta-khpl-run`), or its item was
deleted by the app and `--allow-table-edits` accepts that: those are listed and
do not fail it.
"""

from __future__ import annotations

from khpl_migrate.aws import Store
from khpl_migrate.core.layout import IMAGE_PREFIX, record_of_image_key
from khpl_migrate.core.transform import MIGRATED_FROM
from khpl_migrate.core.units import references
from khpl_migrate.kernel.baseline import History
from khpl_migrate.settings import Settings
from khpl_migrate.verify.model import DeepReport


def sweep(
    store: Store, settings: Settings, source_ids: set[str], past: History, deep: DeepReport
) -> None:
    """Image objects no item references, and migrated items no source record explains."""
    bucket = settings.require_bucket()
    referenced: set[str] = set()
    in_table: set[str] = set()
    for item in store.scan(
        settings.table, ("id", "migratedFrom", "migrationRunId", "imageUploadResults")
    ):
        in_table.add(str(item["id"]))
        referenced |= {str(ref["s3Key"]) for ref in references(item).values()}
        in_source = str(item["id"]) in source_ids
        if (
            item.get("migratedFrom") == MIGRATED_FROM
            and item.get("migrationRunId")
            and not in_source
        ):
            deep.unexplained.append(str(item["id"]))
    kept = superseded(past)
    for info in store.list_objects(bucket, IMAGE_PREFIX):
        if info.key in referenced:
            continue
        if info.key in kept:
            deep.superseded.append(info.key)
            continue
        head = store.head_object(bucket, info.key)
        owner = record_of_image_key(info.key)
        if head is not None and head.run_id is None:
            deep.not_written.append(info.key)
        elif owner in past.written and owner not in in_table:
            # The app deleted its item: an orphan unless --allow-table-edits accepts that,
            # noted either way so that the check can say the flag would.
            deep.of_deleted_items.append(info.key)
            if not deep.allow_table_edits:
                deep.orphans.append(info.key)
        else:
            deep.orphans.append(info.key)
    for found in (
        deep.orphans,
        deep.unexplained,
        deep.superseded,
        deep.not_written,
        deep.of_deleted_items,
    ):
        found.sort()


def superseded(past: History) -> set[str]:
    """The image keys a sync keeps on purpose: those whose reference it moved away, those
    of records it deleted, and the new ones it uploaded for a change the app got to
    first. The intent lines count: a run cut off after its write has no outcome line."""
    keys: set[str] = set()
    for run in past.runs.values():
        for line in run.records:
            keys.update(line.superseded)
        for intent in run.intents:
            for move in intent.images.values():
                keys.update(str(ref["s3Key"]) for ref in (move.from_, move.to) if ref)
            deleted = (intent.item or {}).get("imageUploadResults") or {}
            keys.update(str(ref["s3Key"]) for ref in deleted.values() if ref)
    return keys
