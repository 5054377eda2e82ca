"""The live app's data is sacred: what the app wrote is reported, never changed or deleted.

One test per class of loss a hostile tester found (issue 18), each done the way the
live app does it: unconditional writes of its own, through the same table and bucket.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from khpl_migrate.aws import Store, to_attribute_values
from khpl_migrate.rollback import apply_rollback, plan_rollback
from khpl_migrate.settings import Settings
from khpl_migrate.setup.sample import registrations
from khpl_migrate.setup.table import create_table
from khpl_migrate.sync.apply import apply_sync
from khpl_migrate.sync.model import SyncOptions
from khpl_migrate.sync.plan import plan_sync
from khpl_migrate.verify.deep import deep_verify
from tests.helpers import app_sets, image_key, items, migrate, objects, put_source

pytestmark = pytest.mark.integration


def sync(store: Store, settings: Settings, **options: Any) -> Any:
    return apply_sync(store, settings, plan_sync(store, settings, SyncOptions(**options)))


# -- class 1: rollback never deletes an item the app edited since ----------------------


def test_rollback_of_a_migration_keeps_an_item_the_app_edited_and_names_the_field(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    edited, untouched = migrated[0]["id"], migrated[1]["id"]
    run_id = str(items(store, settings)[edited]["migrationRunId"])
    app_sets(store, settings, edited, "paymentStatus", "refunded-by-app")

    plan = plan_rollback(store, settings, run_id)
    kept = next(s for s in plan.steps if s.kind == "item" and s.target == edited)
    assert not kept.act and "paymentStatus" in kept.reason
    done = apply_rollback(store, plan)

    table = items(store, settings)
    assert table[edited]["paymentStatus"] == "refunded-by-app"
    assert untouched not in table
    assert edited in {s.target for s in done.left if s.kind == "item"}
    # The item stays, so its images stay with it.
    assert image_key(migrated[0], "userPhoto") in objects(store, settings)


def test_rollback_of_a_sync_keeps_a_record_it_migrated_that_the_app_edited_since(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    newcomer = {**copy.deepcopy(migrated[0]), "id": "KHPL_1701234567_newone"}
    put_source(store, settings, [*migrated, newcomer])
    result = sync(store, settings)
    assert result.ok
    app_sets(store, settings, newcomer["id"], "paymentStatus", "refunded-by-app")

    apply_rollback(store, plan_rollback(store, settings, result.run_id))

    assert items(store, settings)[newcomer["id"]]["paymentStatus"] == "refunded-by-app"
    again = sync(store, settings)
    assert items(store, settings)[newcomer["id"]]["paymentStatus"] == "refunded-by-app"
    assert again.ok


def test_rollback_deletes_nothing_when_the_app_edits_between_plan_and_apply(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    """The race: the plan saw the run's item; the app's write lands before the delete."""
    rid = migrated[2]["id"]
    run_id = str(items(store, settings)[rid]["migrationRunId"])
    plan = plan_rollback(store, settings, run_id)
    app_sets(store, settings, rid, "jerseySize", "XL")

    done = apply_rollback(store, plan)

    assert items(store, settings)[rid]["jerseySize"] == "XL"
    assert rid in {s.target for s in done.left if s.kind == "item"}


# -- class 2: rollback never deletes an object an item still references ----------------


def test_rollback_keeps_an_object_the_apps_own_item_references(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    photo = image_key(migrated[0], "userPhoto")
    run_id = str(items(store, settings)[migrated[0]["id"]]["migrationRunId"])
    # The app's own registrations reuse record 0's photo (deep inside the item), and link
    # record 1's by URL.
    url = f"https://{settings.bucket}.s3.amazonaws.com/{image_key(migrated[1], 'aadhaar')}?v=2"
    own = {"id": "KHPL_app_own", "team": {"members": [{"photo": {"key": photo}}]}, "link": url}
    store.ddb.put_item(TableName=settings.table, Item=to_attribute_values(own))

    done = apply_rollback(store, plan_rollback(store, settings, run_id))

    assert photo in objects(store, settings)
    assert image_key(migrated[1], "aadhaar") in objects(store, settings)
    assert photo in {s.target for s in done.left if s.kind == "object"}
    assert migrated[0]["id"] not in items(store, settings)


def test_rollback_keeps_objects_another_run_recorded_as_its_own(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    """Migrate the same bucket into a second table: the second run reuses the identical
    objects the first wrote. Rolling back the first must not pull them from under it."""
    run_id = str(items(store, settings)[migrated[0]["id"]]["migrationRunId"])
    second = replace(settings, table=settings.table + "-second")
    create_table(store, second)
    assert migrate(store, second).migrated == len(migrated)

    apply_rollback(store, plan_rollback(store, settings, run_id))

    left = objects(store, settings)
    for record in migrated:
        for name in ("userPhoto", "aadhaar", "paymentScreenshot"):
            assert image_key(record, name) in left
    assert items(store, settings) == {}


# -- class 5: numbers compare as DynamoDB keeps them: 38 digits -------------------------


def test_a_source_edit_past_the_28th_digit_is_carried(
    store: Store, settings: Settings, seeded_source: Store, sample_records: list[dict[str, Any]]
) -> None:
    create_table(store, settings)
    records = copy.deepcopy(sample_records[:2])
    records[0]["transactionAmount"] = Decimal("1234567890123456789012345678901")
    put_source(store, settings, records)
    assert migrate(store, settings).ok
    records[0]["transactionAmount"] = Decimal("1234567890123456789012345678902")
    put_source(store, settings, records)

    result = sync(store, settings)

    assert result.ok
    stored = items(store, settings)[records[0]["id"]]["transactionAmount"]
    assert stored == Decimal("1234567890123456789012345678902")


# -- class 6: nothing gets stuck -------------------------------------------------------


def test_a_record_deleted_then_re_added_with_another_photo_is_migrated_again(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    gone = migrated[0]
    put_source(store, settings, migrated[1:])
    assert sync(store, settings, delete=True, max_delete=100.0).ok
    assert gone["id"] not in items(store, settings)
    back = {**copy.deepcopy(gone), "image": registrations(1, seed=99)[0]["image"]}
    put_source(store, settings, [back, *migrated[1:]])

    result = sync(store, settings)

    assert result.ok, result.failed
    assert result.outcomes[gone["id"]] == "migrated"
    ref = items(store, settings)[gone["id"]]["imageUploadResults"]["userPhoto"]
    assert ref["s3Key"].endswith(f"/userPhoto-{ref['sha256'][:16]}.jpeg")
    assert sync(store, settings).ok  # and the next sync has nothing left to do


# -- class 3: an image reference is judged by every key, with the object it names -------


def _set_reference(store: Store, settings: Settings, rid: str, name: str, ref: Any) -> None:
    app_sets(store, settings, rid, ("imageUploadResults", name), ref)


def test_a_reference_the_app_pointed_at_its_own_upload_is_a_conflict_not_moved(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid, bucket = migrated[0]["id"], settings.require_bucket()
    own = f"registration-images/{rid}/from-the-app.jpeg"
    store.put_object(bucket, own, b"the app's upload", "image/jpeg")
    ref = dict(items(store, settings)[rid]["imageUploadResults"]["userPhoto"])
    _set_reference(store, settings, rid, "userPhoto", {**ref, "s3Key": own, "size": 16})
    source = copy.deepcopy(migrated)
    source[0]["image"] = registrations(1, seed=99)[0]["image"]
    put_source(store, settings, source)

    result = sync(store, settings, repair_images=True)

    now = items(store, settings)[rid]["imageUploadResults"]["userPhoto"]
    assert now["s3Key"] == own
    assert store.get_bytes(bucket, own) == b"the app's upload"
    assert rid in {e.id for e in result.problems()}  # a conflict, named


def test_a_key_the_app_added_to_a_reference_is_kept_and_blocks_a_deletion(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    changed, removed = migrated[0]["id"], migrated[1]["id"]
    for rid in (changed, removed):
        ref = dict(items(store, settings)[rid]["imageUploadResults"]["aadhaar"])
        _set_reference(store, settings, rid, "aadhaar", {**ref, "verifiedBy": "admin-42"})
    source = copy.deepcopy([r for r in migrated if r["id"] != removed])
    source[0]["aadhaarCopy"] = registrations(1, seed=99)[0]["aadhaarCopy"]
    put_source(store, settings, source)

    sync(store, settings, delete=True, max_delete=100.0)

    table = items(store, settings)
    assert table[changed]["imageUploadResults"]["aadhaar"]["verifiedBy"] == "admin-42"
    assert table[removed]["imageUploadResults"]["aadhaar"]["verifiedBy"] == "admin-42"


# -- class 8: the smaller ones ----------------------------------------------------------


def test_an_id_that_became_a_json_number_is_never_taken_as_deleted(
    store: Store, settings: Settings, seeded_source: Store, sample_records: list[dict[str, Any]]
) -> None:
    create_table(store, settings)
    records = copy.deepcopy(sample_records[:3])
    records[0]["id"] = "12345"
    put_source(store, settings, records)
    assert migrate(store, settings).ok
    records[0]["id"] = Decimal("12345.0")  # the source now writes the id as a JSON number
    put_source(store, settings, records)

    sync(store, settings, delete=True, max_delete=100.0)

    assert "12345" in items(store, settings)


def test_an_update_past_400_kb_is_a_failure_in_the_plan_and_writes_nothing(
    store: Store, settings: Settings, seeded_source: Store, sample_records: list[dict[str, Any]]
) -> None:
    create_table(store, settings)
    records = copy.deepcopy(sample_records[:2])
    records[0]["notes"] = "n" * 200_000
    put_source(store, settings, records)
    assert migrate(store, settings).ok
    app_sets(store, settings, records[0]["id"], "appNotes", "a" * 100_000)  # the app's, stays
    before = items(store, settings)[records[0]["id"]]
    records[0]["remarks"] = "r" * 150_000  # the record alone is 350 KB: fine
    put_source(store, settings, records)

    plan = plan_sync(store, settings, SyncOptions())
    entry = next(e for e in plan.entries if e.id == records[0]["id"])
    result = apply_sync(store, settings, plan)

    assert "400" in (entry.reason or "") and "Fix:" in (entry.reason or "")
    assert items(store, settings)[records[0]["id"]] == before
    assert not result.ok


def _migrated_with_children(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Two records migrated, the first with a list of two children, each with a photo;
    and a third photo for the source to use."""
    create_table(store, settings)
    records = copy.deepcopy(sample_records[:2])
    photos = [r["image"] for r in registrations(3, seed=5)]
    records[0]["children"] = [{"name": "A", "photo": photos[0]}, {"name": "B", "photo": photos[1]}]
    put_source(store, settings, records)
    assert migrate(store, settings).ok
    return records, photos


def test_a_photo_inside_a_list_the_app_reshaped_is_a_conflict_not_a_shifted_write(
    store: Store, settings: Settings, seeded_source: Store, sample_records: list[dict[str, Any]]
) -> None:
    records, photos = _migrated_with_children(store, settings, sample_records)
    rid = records[0]["id"]
    store.ddb.update_item(
        TableName=settings.table, Key={"id": {"S": rid}}, UpdateExpression="REMOVE children[0]"
    )
    before = items(store, settings)[rid]
    records[0]["children"][1]["photo"] = photos[2]  # the source replaces child B's photo
    put_source(store, settings, records)

    result = sync(store, settings)

    assert items(store, settings)[rid] == before  # nothing written at a shifted path
    assert rid in {e.id for e in result.problems()}


@pytest.mark.parametrize("edit", ["SET children[0].#n = :v", "REMOVE children[0]"])
def test_deep_verify_names_the_apps_side_for_a_nested_field_only_the_app_changed(
    store: Store,
    settings: Settings,
    seeded_source: Store,
    sample_records: list[dict[str, Any]],
    edit: str,
) -> None:
    records, _ = _migrated_with_children(store, settings, sample_records)
    rid = records[0]["id"]
    extra: dict[str, Any] = (
        {
            "ExpressionAttributeNames": {"#n": "name"},
            "ExpressionAttributeValues": {":v": {"S": "AA"}},
        }
        if "SET" in edit
        else {}
    )
    store.ddb.update_item(
        TableName=settings.table, Key={"id": {"S": rid}}, UpdateExpression=edit, **extra
    )

    _, deep = deep_verify(store, settings, allow_table_edits=True)

    entry = next(e for e in deep.entries if e.id == rid)
    assert entry.sides == ("table",), entry.details
    assert deep.ok


# -- class 4: a photo the app updated in place is the app's -----------------------------


def test_rollback_keeps_an_item_whose_photo_the_app_replaced_in_place(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid, bucket = migrated[0]["id"], settings.require_bucket()
    key = image_key(migrated[0], "userPhoto")
    run_id = str(items(store, settings)[rid]["migrationRunId"])
    store.s3.put_object(
        Bucket=bucket, Key=key, Body=b"the player's new photo", ContentType="image/jpeg"
    )

    done = apply_rollback(store, plan_rollback(store, settings, run_id))

    assert rid in items(store, settings)
    assert store.get_bytes(bucket, key) == b"the player's new photo"
    kept = next(s for s in done.left if s.kind == "item" and s.target == rid)
    assert "the app replaced the photo of image userPhoto" in kept.reason


def test_sync_never_moves_a_reference_away_from_a_photo_the_app_replaced_in_place(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid, bucket = migrated[0]["id"], settings.require_bucket()
    key = image_key(migrated[0], "userPhoto")
    store.s3.put_object(
        Bucket=bucket, Key=key, Body=b"the player's new photo", ContentType="image/jpeg"
    )
    source = copy.deepcopy(migrated)
    source[0]["image"] = registrations(1, seed=99)[0]["image"]  # the source replaces it too
    put_source(store, settings, source)

    result = sync(store, settings)

    assert items(store, settings)[rid]["imageUploadResults"]["userPhoto"]["s3Key"] == key
    assert store.get_bytes(bucket, key) == b"the player's new photo"
    assert rid in {e.id for e in result.problems()}  # a conflict, named


def test_sync_never_writes_over_other_bytes_at_a_content_derived_key(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    """The source replaces a photo; the key sync would give the new bytes already holds
    the app's: nothing is overwritten, the record fails and says the way out."""
    rid, bucket = migrated[0]["id"], settings.require_bucket()
    photo = registrations(1, seed=99)[0]["image"]
    sha = hashlib.sha256(base64.b64decode(photo.split(",", 1)[1])).hexdigest()
    derived = f"registration-images/{rid}/userPhoto-{sha[:16]}.jpeg"
    store.put_object(bucket, derived, b"the app's bytes", "image/jpeg")
    source = copy.deepcopy(migrated)
    source[0]["image"] = photo
    put_source(store, settings, source)

    result = sync(store, settings)

    assert store.get_bytes(bucket, derived) == b"the app's bytes"
    assert "Fix:" in result.failed[rid]
    ref = items(store, settings)[rid]["imageUploadResults"]["userPhoto"]
    assert ref["s3Key"] == image_key(migrated[0], "userPhoto")


def test_rollback_of_a_sync_keeps_a_reference_the_app_moved_on_to_its_own_bytes(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    """Class 3 (d): a sync moved the reference to `userPhoto-<sha>.jpeg`; the app PUTs
    new bytes there and updates the reference. Rolling the sync back points nothing back
    and deletes nothing of the app's."""
    rid, bucket = migrated[0]["id"], settings.require_bucket()
    source = copy.deepcopy(migrated)
    source[0]["image"] = registrations(1, seed=99)[0]["image"]
    put_source(store, settings, source)
    result = sync(store, settings)
    moved = dict(items(store, settings)[rid]["imageUploadResults"]["userPhoto"])
    body = b"the app's newer photo"
    store.put_object(bucket, moved["s3Key"], body, "image/jpeg")
    app_ref = {**moved, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    _set_reference(store, settings, rid, "userPhoto", app_ref)

    done = apply_rollback(store, plan_rollback(store, settings, result.run_id))

    now = items(store, settings)[rid]["imageUploadResults"]["userPhoto"]
    assert now["s3Key"] == moved["s3Key"] and now["sha256"] == app_ref["sha256"]
    assert store.get_bytes(bucket, moved["s3Key"]) == body
    assert not [s for s in done.deleted if s.target == moved["s3Key"]]


def test_rollback_of_a_sync_keeps_a_reference_whose_photo_the_app_replaced_after_the_plan(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid, bucket = migrated[0]["id"], settings.require_bucket()
    source = copy.deepcopy(migrated)
    source[0]["image"] = registrations(1, seed=99)[0]["image"]
    put_source(store, settings, source)
    result = sync(store, settings)
    moved = str(items(store, settings)[rid]["imageUploadResults"]["userPhoto"]["s3Key"])
    plan = plan_rollback(store, settings, result.run_id)
    store.put_object(bucket, moved, b"the player's photo, put after the plan", "image/jpeg")

    done = apply_rollback(store, plan)

    assert items(store, settings)[rid]["imageUploadResults"]["userPhoto"]["s3Key"] == moved
    assert store.get_bytes(bucket, moved) == b"the player's photo, put after the plan"
    assert rid in {s.target for s in done.left if s.kind == "restore"}
