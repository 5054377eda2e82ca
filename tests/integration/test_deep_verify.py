"""verify --deep catches every kind of damage and passes a clean migration."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from khpl_migrate.aws import Store
from khpl_migrate.core.dataurls import data_url
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from khpl_migrate.verify.compare import diff_values
from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.sides import DAMAGE_SIDE, REPLACED_SIDE, TABLE_SIDE
from tests.helpers import app_puts_over, app_sets, damage_five_ways, image_key, put_source

pytestmark = pytest.mark.integration


def test_a_clean_migration_passes(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    summary, deep = deep_verify(store, settings)
    assert summary.complete and deep.ok
    assert [e.status for e in deep.entries] == ["="] * len(migrated)
    assert deep.images == 3 * len(migrated)
    assert deep.orphans == [] and deep.unexplained == []


def test_five_kinds_of_damage_are_each_named(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    deleted, changed, no_image, other_bytes, wrong_type, clean = damage_five_ways(
        store, settings, migrated
    )

    _, deep = deep_verify(store, settings)

    by_id = {e.id: e for e in deep.entries}
    assert by_id[deleted["id"]].status == "-"
    assert by_id[deleted["id"]].details == (
        "deleted in DynamoDB since the migration (the app, or damage)",
    )
    assert by_id[changed["id"]].status == "*"
    assert by_id[changed["id"]].details == (f"field village: value differs ({TABLE_SIDE})",)
    assert by_id[changed["id"]].sides == ("table",)
    assert by_id[no_image["id"]].details == (
        f"image aadhaar: object {image_key(no_image, 'aadhaar')} is missing ({DAMAGE_SIDE})",
    )
    # Bytes or a type another writer put over the tool's object: the app's photo, not damage.
    photo, screenshot = (
        image_key(other_bytes, "userPhoto"),
        image_key(wrong_type, "paymentScreenshot"),
    )
    assert by_id[other_bytes["id"]].details == (
        f"image userPhoto: object {photo} replaced since the migration (other bytes) "
        f"({REPLACED_SIDE})",
    )
    assert by_id[wrong_type["id"]].details == (
        f"image paymentScreenshot: object {screenshot} replaced since the migration "
        f"(Content-Type application/octet-stream, expected image/jpeg) ({REPLACED_SIDE})",
    )
    assert by_id[no_image["id"]].sides == ("damage",)
    assert {by_id[r["id"]].sides for r in (other_bytes, wrong_type)} == {("table",)}
    assert by_id[clean["id"]].status == "="
    assert not deep.ok
    assert "Somewhere else" not in "\n".join(deep.lines())  # values are personal data: never shown


def test_orphan_objects_and_unexplained_items_are_reported(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    # The migration's own object (it carries a run's id) that no item references: an orphan.
    ghost = "registration-images/KHPL_ghost/userPhoto.jpeg"
    store.put_object_if_absent(bucket, ghost, b"stray", "image/jpeg", "20251219T103000000Z-abcdef")
    # An object some other writer put there (no x-amz-meta-khpl-run): listed, not failed.
    foreign = "registration-images/KHPL_app/photo.jpeg"
    store.put_object(bucket, foreign, b"the app's photo", "image/jpeg")
    store.put_item_if_absent(
        settings.table, {"id": "KHPL_ghost2", "migratedFrom": "S3", "migrationRunId": "x"}
    )
    store.put_item_if_absent(settings.table, {"id": "KHPL_app", "name": "the app's own"})

    _, deep = deep_verify(store, settings)

    assert deep.orphans == [ghost]
    assert deep.not_written == [foreign]
    assert deep.unexplained == ["KHPL_ghost2"]  # the app's own item is not "unexplained"
    assert not deep.ok
    lines = deep.lines()
    assert f"+ {ghost}: image object no item references (orphan)" in lines
    assert (
        f"+ {foreign}: not written by the migration (no x-amz-meta-khpl-run; not checked)" in lines
    )


def test_objects_the_migration_did_not_write_do_not_fail_the_check(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    store.put_object(settings.bucket or "", "registration-images/KHPL_x/a.png", b"x", "image/png")
    _, deep = deep_verify(store, settings)
    assert deep.not_written == ["registration-images/KHPL_x/a.png"] and deep.orphans == []
    assert deep.ok


def test_a_png_labelled_jpeg_is_kept_byte_for_byte_and_flagged(
    store: Store, settings: Settings
) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(png, "PNG")
    put_source(
        store,
        settings,
        [{"id": "KHPL_mislabelled", "image": data_url("image/jpeg", png.getvalue())}],
    )
    create_table(store, settings)
    apply_plan(store, settings, build_plan(store, settings))

    _, deep = deep_verify(store, settings)

    entry = deep.entries[0]
    assert entry.status == "="  # a faithful copy of what the source holds
    assert entry.warnings == ("image userPhoto: labelled image/jpeg but the bytes are PNG",)


def test_records_the_app_wrote_are_not_compared_but_say_why(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records[:2])
    create_table(store, settings)
    store.put_item_if_absent(settings.table, {"id": sample_records[0]["id"], "name": "app"})
    apply_plan(store, settings, build_plan(store, settings))
    _, deep = deep_verify(store, settings)
    assert [(e.status, e.details) for e in deep.entries] == [
        ("!", ("the item was not written by the migration (no migratedFrom S3)",)),
        ("=", ()),
    ]


@pytest.mark.parametrize(
    ("expected", "actual", "found"),
    [
        ({"a": 1}, {"a": True}, ["field a: a boolean, the source has a number"]),
        ({"a": [1, 2]}, {"a": [1]}, ["field a: 1 elements, the source has 2"]),
        ({"a": {"b": "x"}}, {"a": {}}, ["field a.b: missing"]),
        ({}, {"z": None}, ["field z: not in the source"]),
        ({"n": 499}, {"n": 499}, []),
    ],
)
def test_diff_names_the_field_and_never_the_value(
    expected: Any, actual: Any, found: list[str]
) -> None:
    assert diff_values(expected, actual) == found


def test_every_kind_of_app_edit_is_named_as_what_allow_table_edits_accepts(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    """A field changed, a photo replaced in place and an item deleted, all by the app: the
    plain check fails and knows the flag would pass it; with the flag it passes, counting
    them. One damaged object besides, and neither says so."""
    bucket = settings.bucket or ""
    app_sets(store, settings, migrated[0]["id"], "village", "Edited by the app")
    photo = store.get_bytes(bucket, image_key(migrated[4], "userPhoto")) or b""
    app_puts_over(store, bucket, image_key(migrated[1], "userPhoto"), photo, "image/jpeg")
    store.ddb.delete_item(TableName=settings.table, Key={"id": {"S": migrated[2]["id"]}})

    summary, plain = deep_verify(store, settings)
    assert not plain.passes(summary) and plain.only_table_edits(summary)
    assert len(plain.table_edits()) == 3 and plain.accepted() == 0
    assert set(plain.of_deleted_items) <= set(plain.orphans)  # orphans without the flag
    summary, allowed = deep_verify(store, settings, allow_table_edits=True)
    assert allowed.passes(summary) and allowed.accepted() == 3 and allowed.orphans == []

    store.s3.delete_object(Bucket=bucket, Key=image_key(migrated[3], "aadhaar"))
    summary, damaged = deep_verify(store, settings)
    assert not damaged.only_table_edits(summary)
    summary, still = deep_verify(store, settings, allow_table_edits=True)
    assert not still.passes(summary) and [e.id for e in still.failing()] == [migrated[3]["id"]]
