"""sync against the local stack: each row of the table, each kind of record, images,
damage, deletions, settling, a second run and rollback."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.core.threeway import RecordState, Side
from khpl_migrate.rollback import apply_rollback, plan_rollback
from khpl_migrate.settings import Settings
from khpl_migrate.setup.sample import registrations
from khpl_migrate.setup.table import create_table
from khpl_migrate.sync.apply import apply_sync
from khpl_migrate.sync.model import Deletion, SyncOptions, SyncPlan, SyncResult
from khpl_migrate.sync.plan import plan_sync
from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.sides import SOURCE_SIDE
from tests.helpers import Timeline, app_sets, image_key, items, migrate, objects, put_source

pytestmark = pytest.mark.integration
F = ("field", "paymentStatus")
V = ("field", "village")


def source_now(store: Store, settings: Settings, records: list[dict[str, Any]]) -> None:
    put_source(store, settings, records)


def sync(store: Store, settings: Settings, **options: Any) -> tuple[SyncPlan, SyncResult]:
    plan = plan_sync(store, settings, SyncOptions(**options))
    return plan, apply_sync(store, settings, plan)


def by_id(plan: SyncPlan) -> dict[str, Any]:
    return {entry.id: entry for entry in plan.entries}


def edited(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(records)


# -- each row of the table, one field each ---------------------------------------------


def test_each_row_of_the_table(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    same, source_only, app_only, agreed, conflict, _ = (r["id"] for r in migrated)
    source = edited(migrated)
    source[1]["paymentStatus"] = "refunded"  # changed in the source
    source[3]["village"] = "Agreed town"  # both, the same way
    source[4]["village"] = "Source town"  # both, differently
    source_now(store, settings, source)
    app_sets(store, settings, app_only, "village", "App town")
    app_sets(store, settings, agreed, "village", "Agreed town")
    app_sets(store, settings, conflict, "village", "App village")

    plan, result = sync(store, settings)

    entries = by_id(plan)
    assert entries[same].kind is RecordState.IN_STEP and not entries[same].sides
    assert entries[source_only].sides == {F: Side.SOURCE}
    assert (
        entries[app_only].sides == {V: Side.TABLE} and entries[app_only].kind is RecordState.IN_STEP
    )
    assert entries[agreed].sides == {V: Side.AGREED}
    assert entries[conflict].sides == {V: Side.CONFLICT}
    table = items(store, settings)
    assert table[source_only]["paymentStatus"] == "refunded"  # carried over
    assert table[app_only]["village"] == "App town"  # the app's edit kept
    assert table[agreed]["village"] == "Agreed town"
    assert table[conflict]["village"] == "App village"  # nothing written for a conflict
    assert result.outcomes == {source_only: "updated", agreed: "adopted"}
    assert [e.id for e in result.problems()] == [conflict] and not result.ok


def test_a_conflict_stays_reported_until_settled_and_a_newer_baseline_does_not_hide_it(
    store: Store, settings: Settings, migrated: list[dict[str, Any]], tmp_path: Any
) -> None:
    rid = migrated[0]["id"]
    source = edited(migrated)
    source[0]["village"] = "Source town"
    source[0]["paymentStatus"] = "refunded"  # an edit of another field of the same record
    source_now(store, settings, source)
    app_sets(store, settings, rid, "village", "App village")
    first, _ = sync(store, settings)
    assert by_id(first)[rid].sides == {V: Side.CONFLICT, F: Side.SOURCE}
    # That run took a newer baseline for paymentStatus; village is still a conflict.
    for _ in range(2):
        again, result = sync(store, settings)
        assert by_id(again)[rid].sides == {V: Side.CONFLICT} and not result.ok
    _, result = sync(store, settings, only_ids=frozenset({rid}), take="source")
    assert result.outcomes == {rid: "settled"} and result.ok
    assert items(store, settings)[rid]["village"] == "Source town"
    after, _ = sync(store, settings)
    assert by_id(after)[rid].kind is RecordState.IN_STEP


def test_taking_the_tables_value_settles_the_conflict_for_good(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid = migrated[0]["id"]
    source = edited(migrated)
    source[0]["village"] = "Source town"
    source_now(store, settings, source)
    app_sets(store, settings, rid, "village", "App village")
    _, result = sync(store, settings, only_ids=frozenset({rid}), take="table")
    assert result.outcomes == {rid: "settled"} and result.ok
    assert items(store, settings)[rid]["village"] == "App village"
    app_sets(
        store, settings, rid, "village", "App village again"
    )  # a later app edit: kept, no conflict
    plan, result = sync(store, settings)
    assert by_id(plan)[rid].sides == {V: Side.TABLE} and result.ok


def test_an_agreement_moves_the_baseline_so_a_later_app_edit_is_kept(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid = migrated[0]["id"]
    source = edited(migrated)
    source[0]["paymentStatus"] = "verified twice"
    source_now(store, settings, source)
    app_sets(store, settings, rid, "paymentStatus", "verified twice")
    sync(store, settings)
    app_sets(store, settings, rid, "paymentStatus", "refunded")
    plan, result = sync(store, settings)
    assert by_id(plan)[rid].sides == {F: Side.TABLE} and result.ok


def test_a_second_sync_with_no_new_edits_writes_nothing(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    source = edited(migrated)
    source[0]["paymentStatus"] = "refunded"
    source_now(store, settings, source)
    sync(store, settings)
    before = objects(store, settings), items(store, settings)
    plan, result = sync(store, settings)
    assert plan.to_write() == [] and result.backup_key is None and result.manifest_key is None
    assert (objects(store, settings), items(store, settings)) == before


def test_the_write_cap_paces_every_item_a_sync_writes(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    """With the app live, `sync --max-write-rate` spaces its writes: three updates and one
    new record at 2 a second span at least 1.5 s (the first goes at once; on the pool,
    writers that wait at once add up their waits on this fake clock)."""
    source = edited(migrated)
    for record in source[:3]:
        record["paymentStatus"] = "refunded"
    source.append({**copy.deepcopy(source[3]), "id": "KHPL_new_in_the_source"})
    source_now(store, settings, source)
    clock = Timeline()
    rate = WriteRate(2, clock=clock, sleep=clock.sleep)

    plan = plan_sync(store, settings, SyncOptions(max_write_rate=2))
    result = apply_sync(store, settings, plan, rate=rate)

    assert result.ok and rate.items == 4
    assert clock.now >= 1.5
    assert plan.options.max_write_rate == 2  # what `sync --max-write-rate 2` would give


# -- each kind of record ---------------------------------------------------------------


def test_a_record_new_in_the_source_is_migrated_by_the_sync(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    newcomer = registrations(1, seed=77)[0]
    source_now(store, settings, [*migrated, newcomer])
    plan, result = sync(store, settings)
    assert by_id(plan)[newcomer["id"]].kind is RecordState.NEW
    assert result.outcomes == {newcomer["id"]: "migrated"}
    item = items(store, settings)[newcomer["id"]]
    assert item["migrationRunId"] == plan.stamp.run_id
    _, deep = deep_verify(store, settings)
    assert deep.ok, deep.lines()


def test_the_apps_own_registration_is_reported_equal_or_a_conflict(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    mine = registrations(2, seed=55)
    equal, other = (
        {k: v for k, v in r.items() if k not in ("image", "aadhaarCopy", "paymentScreenshot")}
        for r in mine
    )
    store.put_item_if_absent(settings.table, equal)  # the app registered them itself
    store.put_item_if_absent(settings.table, {**other, "village": "Somewhere"})
    source_now(store, settings, [*migrated, equal, other])
    plan, result = sync(store, settings)
    entries = by_id(plan)
    assert entries[equal["id"]].kind is RecordState.APP_EQUAL and entries[equal["id"]].in_step
    assert entries[other["id"]].kind is RecordState.APP_CONFLICT
    assert entries[other["id"]].sides == {V: Side.NO_BASELINE}
    assert items(store, settings)[other["id"]]["village"] == "Somewhere"  # nothing adopted
    assert not result.ok and equal["id"] not in result.outcomes


def test_a_record_deleted_in_the_source_waits_for_delete_and_goes_only_while_unchanged(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    gone, touched = migrated[0]["id"], migrated[1]["id"]
    source_now(store, settings, migrated[2:])
    app_sets(store, settings, touched, "village", "App village")  # the app edited one of them
    before = objects(store, settings)
    plan, result = sync(store, settings)
    assert by_id(plan)[gone].deletion is Deletion.WAITING and not result.ok
    assert by_id(plan)[touched].kind is RecordState.DELETE_CONFLICT
    assert set(items(store, settings)) >= {gone, touched}

    plan, result = sync(store, settings, delete=True, max_delete=50)
    assert result.outcomes == {gone: "deleted"}
    table = items(store, settings)
    assert gone not in table and touched in table  # a changed item is never deleted
    assert objects(store, settings).keys() >= {image_key(migrated[0], "userPhoto")}
    assert set(objects(store, settings)) >= set(before) - {settings.source_key}


def test_deletions_above_max_delete_are_all_refused(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    source_now(store, settings, migrated[:2])  # four of six gone: a source emptied by mistake
    plan, result = sync(store, settings, delete=True)  # the default: at most 10%
    assert {e.deletion for e in plan.entries if e.index is None} == {Deletion.REFUSED}
    assert len(items(store, settings)) == 6 and not result.ok


def test_a_record_the_app_deleted_is_not_written_again(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid = migrated[0]["id"]
    store.ddb.delete_item(TableName=settings.table, Key={"id": {"S": rid}})
    plan, result = sync(store, settings)
    assert by_id(plan)[rid].kind is RecordState.DELETED_IN_TABLE and result.ok
    assert rid not in items(store, settings)
    # Its images are the app's deletion's leftovers, not orphans, when table edits are allowed.
    _, deep = deep_verify(store, settings, allow_table_edits=True)
    assert deep.ok and deep.orphans == [], deep.lines()
    assert image_key(migrated[0], "userPhoto") in deep.of_deleted_items


def test_a_source_edit_to_a_record_the_app_deleted_is_reported_and_settled_either_way(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    """The app deleted two items; the source then edited both records. Neither edit may
    vanish quietly: both are reported until settled, one each way."""
    back, accepted = migrated[0]["id"], migrated[1]["id"]
    for rid in (back, accepted):
        store.ddb.delete_item(TableName=settings.table, Key={"id": {"S": rid}})
    source = edited(migrated)
    source[0]["paymentStatus"] = source[1]["paymentStatus"] = "refunded"
    source_now(store, settings, source)
    for _ in range(2):  # reported by every sync, not only the first
        plan, result = sync(store, settings)
        for rid in (back, accepted):
            assert by_id(plan)[rid].kind is RecordState.TABLE_DELETE_CONFLICT
            assert by_id(plan)[rid].sides == {F: Side.SOURCE}
        assert not result.ok and not ({back, accepted} & set(items(store, settings)))
    _, deep = deep_verify(store, settings, allow_table_edits=True)
    assert not deep.ok and {e.id for e in deep.failing()} == {back, accepted}

    _, taken = sync(store, settings, only_ids=frozenset({back}), take="source")
    _, kept = sync(store, settings, only_ids=frozenset({accepted}), take="table")
    assert (taken.outcomes, kept.outcomes) == ({back: "settled"}, {accepted: "settled"})
    table = items(store, settings)
    assert table[back]["paymentStatus"] == "refunded" and accepted not in table
    plan, result = sync(store, settings)
    assert by_id(plan)[accepted].kind is RecordState.DELETED_IN_TABLE and result.ok
    _, deep = deep_verify(store, settings, allow_table_edits=True)
    assert deep.ok, deep.lines()


def test_a_record_that_cannot_be_read_now_is_not_taken_for_deleted(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid = migrated[0]["id"]
    source = edited(migrated)
    source[0]["image"] = "data:image/jpeg;base64,@@not base64@@"
    source_now(store, settings, source)
    plan, result = sync(store, settings, delete=True, max_delete=100)
    assert [(e.kind, e.deletion) for e in plan.entries if e.id == rid] == [
        (RecordState.UNUSABLE, None)
    ]
    assert rid in items(store, settings) and not result.ok


def test_the_apps_sets_and_binary_attributes_do_not_stop_a_sync(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid = migrated[0]["id"]
    store.ddb.update_item(
        TableName=settings.table,
        Key={"id": {"S": rid}},
        UpdateExpression="SET tags = :t, idScan = :b",
        ExpressionAttributeValues={":t": {"SS": ["captain", "u19"]}, ":b": {"B": b"\x00\x01"}},
    )
    plan, result = sync(store, settings)
    assert by_id(plan)[rid].sides == {
        ("field", "idScan"): Side.TABLE,
        ("field", "tags"): Side.TABLE,
    }
    assert result.ok


def test_a_masked_migration_stays_masked_through_sync_and_its_rollback(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    """Migrated with --mask-aadhaar (one record had no Aadhaar number then). A sync run
    without the flag carries new numbers in masked, and its rollback puts back masked
    values, never the full numbers its backups hold."""
    records = edited(sample_records[:3])
    records[2].pop("aadhaarNumber", None)
    put_source(store, settings, records)
    create_table(store, settings)
    assert migrate(store, replace(settings, mask_aadhaar=True)).ok
    source = edited(records)
    source[0]["aadhaarNumber"] = "499118665246"  # a new number, Verhoeff-valid
    source[1]["paymentStatus"] = "refunded"
    source[2]["aadhaarNumber"] = "234123412346"  # the record that had none
    source_now(store, settings, source)
    plan, result = sync(store, settings)
    assert result.ok and len(result.outcomes) == 3
    table = items(store, settings)
    assert table[records[0]["id"]]["aadhaarNumber"] == "XXXX XXXX 5246"
    assert table[records[2]["id"]]["aadhaarNumber"] == "XXXX XXXX 2346"
    assert table[records[2]["id"]]["maskedFields"] == ["aadhaarNumber"]
    rollback = apply_rollback(store, plan_rollback(store, settings, plan.stamp.run_id))
    assert not rollback.left, [s.reason for s in rollback.left]
    table = items(store, settings)
    assert table[records[0]["id"]]["aadhaarNumber"] == (
        f"XXXX XXXX {records[0]['aadhaarNumber'][-4:]}"
    )
    assert "aadhaarNumber" not in table[records[2]["id"]]
    assert all("XXXX" in str(i.get("aadhaarNumber", "XXXX")) for i in table.values())


# -- images, damage, rollback ------------------------------------------------------------


def test_a_changed_image_goes_to_a_new_key_and_the_old_object_is_kept(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid, old = migrated[0]["id"], image_key(migrated[0], "userPhoto")
    source = edited(migrated)
    source[0]["image"] = registrations(1, seed=99)[0]["image"]
    source_now(store, settings, source)
    before = objects(store, settings)
    _, result = sync(store, settings)
    assert result.outcomes == {rid: "updated"} and result.superseded == [old]
    ref = items(store, settings)[rid]["imageUploadResults"]["userPhoto"]
    assert ref["s3Key"] != old and ref["s3Key"].startswith(f"registration-images/{rid}/userPhoto-")
    after = objects(store, settings)
    assert after[old] == before[old]  # never overwritten
    _, deep = deep_verify(store, settings)
    assert deep.ok and deep.superseded == [old] and deep.orphans == []


def test_a_missing_image_is_reported_and_repaired_only_when_asked(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid, key = migrated[0]["id"], image_key(migrated[0], "aadhaar")
    bucket = settings.bucket or ""
    original = store.get_bytes(bucket, key)
    store.s3.delete_object(Bucket=bucket, Key=key)
    plan, result = sync(store, settings)
    damage = by_id(plan)[rid].damaged
    assert [d.name for d in damage] == ["aadhaar"] and damage[0].repairable and not result.ok
    assert store.get_bytes(bucket, key) is None
    _, result = sync(store, settings, repair_images=True)
    assert result.outcomes == {rid: "repaired"} and result.ok
    assert store.get_bytes(bucket, key) == original
    _, deep = deep_verify(store, settings)
    assert deep.ok


@pytest.mark.parametrize("reference", ["kept", "the guide's"])
def test_a_photo_the_app_replaced_in_place_is_the_apps_and_never_repaired(
    store: Store, settings: Settings, migrated: list[dict[str, Any]], reference: str
) -> None:
    """A web app that lets a player change a photo PUTs the new bytes at the key the item
    names, with no run tag, and (or not) writes the reference the guide shows."""
    rid, key = migrated[0]["id"], image_key(migrated[0], "userPhoto")
    bucket = settings.bucket or ""
    store.s3.put_object(
        Bucket=bucket, Key=key, Body=b"the player's new photo", ContentType="image/jpeg"
    )
    if reference == "the guide's":
        store.ddb.update_item(
            TableName=settings.table,
            Key={"id": {"S": rid}},
            UpdateExpression="SET imageUploadResults.userPhoto = :r",
            ExpressionAttributeValues={
                ":r": {"M": {"s3Key": {"S": key}, "mimeType": {"S": "image/jpeg"}}}
            },
        )

    plan, result = sync(store, settings, repair_images=True)

    assert not by_id(plan)[rid].damaged
    assert store.get_bytes(bucket, key) == b"the player's new photo"
    assert result.ok
    _, deep = deep_verify(store, settings)
    assert not deep.ok  # a difference all the same, named as the app's
    _, allowed = deep_verify(store, settings, allow_table_edits=True)
    assert allowed.ok, allowed.lines()


def test_a_repair_leaves_an_object_that_appeared_after_it_was_checked(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid, key = migrated[0]["id"], image_key(migrated[0], "aadhaar")
    bucket = settings.bucket or ""
    store.s3.delete_object(Bucket=bucket, Key=key)
    plan = plan_sync(store, settings, SyncOptions(repair_images=True))
    store.s3.put_object(Bucket=bucket, Key=key, Body=b"the app's card", ContentType="image/png")
    result = apply_sync(store, settings, plan)
    assert store.get_bytes(bucket, key) == b"the app's card"  # If-None-Match: never replaced
    assert [e.id for e in result.problems()] == [rid]


def test_rollback_of_a_sync_puts_back_the_fields_and_references_it_changed(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    before = items(store, settings)
    source = edited(migrated)
    source[0]["paymentStatus"] = "refunded"
    source[1]["image"] = registrations(1, seed=99)[0]["image"]
    del source[2]["village"]  # a field removed in the source
    source_now(store, settings, source)
    app_sets(store, settings, migrated[3]["id"], "jerseySize", "XXL")  # the app's, stays
    plan, result = sync(store, settings)
    assert len(result.outcomes) == 3

    undo = apply_rollback(store, plan_rollback(store, settings, plan.stamp.run_id))

    after = items(store, settings)
    assert {s.target for s in undo.put_back} == {r["id"] for r in migrated[:3]}
    for rid in (r["id"] for r in migrated[:3]):
        assert after[rid] == before[rid], rid
    assert after[migrated[3]["id"]]["jerseySize"] == "XXL"
    new_photo = [s.target for s in undo.deleted if s.kind == "object"]
    assert len(new_photo) == 1 and "userPhoto-" in new_photo[0]
    assert new_photo[0] not in objects(store, settings)
    again, _ = sync(store, settings)  # the source still has the edits: sync carries them again
    assert len(again.to_write()) == 3


def test_rollback_leaves_a_field_the_app_changed_after_the_sync(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    rid = migrated[0]["id"]
    source = edited(migrated)
    source[0]["paymentStatus"] = "refunded"
    source_now(store, settings, source)
    plan, _ = sync(store, settings)
    app_sets(store, settings, rid, "paymentStatus", "verified again")
    undo = apply_rollback(store, plan_rollback(store, settings, plan.stamp.run_id))
    assert undo.put_back == [] and "changed since this run" in undo.left[0].reason
    assert items(store, settings)[rid]["paymentStatus"] == "verified again"


def test_verify_deep_names_the_source_side(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    source = edited(migrated)
    source[0]["paymentStatus"] = "refunded"
    source_now(store, settings, source)
    _, deep = deep_verify(store, settings)
    entry = next(e for e in deep.entries if e.id == migrated[0]["id"])
    assert entry.details == (f"field paymentStatus: value differs ({SOURCE_SIDE})",)
    assert entry.sides == ("source",)


def test_rollback_of_a_sync_puts_back_an_item_it_deleted(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    before = items(store, settings)
    gone = migrated[0]["id"]
    source_now(store, settings, migrated[1:])
    plan, result = sync(store, settings, delete=True, max_delete=50)
    assert result.outcomes == {gone: "deleted"}

    undo = apply_rollback(store, plan_rollback(store, settings, plan.stamp.run_id))

    assert [(s.kind, s.target) for s in undo.put_back] == [("recreate", gone)], undo.left
    assert items(store, settings)[gone] == before[gone]
