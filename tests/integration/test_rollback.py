"""Rollback undoes exactly one run; runs and backups are listed; failures are re-fed."""

from __future__ import annotations

from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.kernel.backups import list_backups
from khpl_migrate.kernel.runs import list_runs
from khpl_migrate.rollback import apply_rollback, plan_rollback, show_rollback
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.status import verify
from tests.helpers import items, migrate, objects, put_source, two_runs

pytestmark = pytest.mark.integration
APP_KEY = "registration-images/KHPL_app_1/userPhoto.jpeg"


def test_rollback_removes_exactly_one_runs_items_and_objects(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    create_table(store, settings)
    # The app wrote a registration of its own (item and image) before any run.
    app_item = {
        "id": "KHPL_app_1",
        "name": "app",
        "imageUploadResults": {"userPhoto": {"s3Key": APP_KEY}},
    }
    store.put_item_if_absent(settings.table, app_item)
    store.put_object(bucket, APP_KEY, b"app photo", "image/jpeg")
    put_source(store, settings, sample_records[:4])
    first = migrate(store, settings)
    put_source(store, settings, sample_records)  # two more arrived; the second run takes them
    second = migrate(store, settings)
    assert (first.migrated, second.migrated) == (4, 2)
    before = objects(store, settings), items(store, settings)

    plan = plan_rollback(store, settings, first.run_id)
    shown = show_rollback(plan)
    assert (objects(store, settings), items(store, settings)) == before  # a dry run deletes nothing
    assert sum(1 for s in shown.deleted if s.kind == "item") == 4
    assert sum(1 for s in shown.deleted if s.kind == "object") == 12

    done = apply_rollback(store, plan)

    assert sorted(s.target for s in done.deleted if s.kind == "item") == sorted(
        r["id"] for r in sample_records[:4]
    )
    table = items(store, settings)
    assert set(table) == {"KHPL_app_1", sample_records[4]["id"], sample_records[5]["id"]}
    assert table["KHPL_app_1"] == app_item
    assert store.get_bytes(bucket, APP_KEY) == b"app photo"
    left = objects(store, settings)
    assert not any(
        k.startswith(f"registration-images/{r['id']}/") for r in sample_records[:4] for k in left
    )
    for record in sample_records[4:]:
        assert sum(k.startswith(f"registration-images/{record['id']}/") for k in left) == 3
    assert first.backup_key in left and done.record_key in left  # backups and records stay

    after = verify(store, settings)
    assert sorted(rid for rid, _ in after.only_in_s3) == sorted(r["id"] for r in sample_records[:4])
    third = migrate(store, settings)
    assert third.migrated == 4
    _, deep = deep_verify(store, settings)
    assert deep.ok, deep.lines()


def test_rollback_leaves_what_changed_since_the_run(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    create_table(store, settings)
    put_source(store, settings, sample_records[:3])
    first = migrate(store, settings)
    rewritten, retouched, untouched = sample_records[:3]
    # The app rewrote one item (no longer this run's) and replaced one photo.
    store.ddb.put_item(
        TableName=settings.table,
        Item={
            "id": {"S": rewritten["id"]},
            "name": {"S": "edited in the app"},
            "imageUploadResults": {
                "M": {
                    "userPhoto": {
                        "M": {
                            "s3Key": {"S": f"registration-images/{rewritten['id']}/userPhoto.jpeg"}
                        }
                    }
                }
            },
        },
    )
    photo = f"registration-images/{retouched['id']}/userPhoto.jpeg"
    store.s3.put_object(Bucket=bucket, Key=photo, Body=b"retouched", ContentType="image/jpeg")

    result = apply_rollback(store, plan_rollback(store, settings, first.run_id))

    reasons = {(s.kind, s.target): s.reason for s in result.left}
    assert reasons[("item", rewritten["id"])] == "rewritten by the app since the run"
    assert reasons[("object", f"registration-images/{rewritten['id']}/userPhoto.jpeg")] == (
        f"still referenced: item {rewritten['id']}"
    )
    # An image is its reference with its object: the retouched photo is the app's, so is
    # the item that shows it.
    assert reasons[("item", retouched["id"])] == (
        f"the app replaced the photo of image userPhoto ({photo})"
    )
    assert reasons[("object", photo)] == f"still referenced: item {retouched['id']}"
    assert store.get_item(settings.table, rewritten["id"]) is not None
    assert store.get_bytes(bucket, photo) == b"retouched"
    assert store.get_item(settings.table, untouched["id"]) is None
    assert store.get_item(settings.table, retouched["id"]) is not None


def test_runs_and_backups_are_listed(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    first, second = two_runs(store, settings, sample_records)

    runs = list_runs(store, settings.bucket or "")
    assert [(r.run_id, r.to_json()["migrated"]) for r in runs] == [
        (first.run_id, 2),
        (second.run_id, 1),
    ]

    backups = {b.key: b for b in list_backups(store, settings)}
    assert (
        backups[first.backup_key].matches_source and not backups[first.backup_key].same_as_current
    )
    assert backups[second.backup_key].matches_source and backups[second.backup_key].same_as_current


def test_changes_between_the_rollback_plan_and_its_apply_are_left(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    """The conditional deletes, not the plan's reads, are what protect a racing writer."""
    bucket = settings.bucket or ""
    create_table(store, settings)
    put_source(store, settings, sample_records[:2])
    first = migrate(store, settings)
    plan = plan_rollback(store, settings, first.run_id)
    assert len(plan.deletions) == 8
    taken, touched = sample_records[:2]
    store.ddb.put_item(
        TableName=settings.table, Item={"id": {"S": taken["id"]}, "name": {"S": "app"}}
    )
    photo = f"registration-images/{touched['id']}/userPhoto.jpeg"
    store.s3.put_object(Bucket=bucket, Key=photo, Body=b"new photo", ContentType="image/jpeg")

    result = apply_rollback(store, plan)

    reasons = {(s.kind, s.target): s.reason for s in result.left}
    assert reasons[("item", taken["id"])] == "the app changed it after the plan"
    assert reasons[("object", photo)] == "changed after the plan"
    for name in ("userPhoto.jpeg", "aadhaar.png", "paymentScreenshot.jpeg"):
        key = f"registration-images/{taken['id']}/{name}"
        assert reasons[("object", key)] == "its item changed after the plan and stays"
        assert store.get_bytes(bucket, key) is not None
    assert store.get_item(settings.table, taken["id"]) == {"id": taken["id"], "name": "app"}
    assert store.get_bytes(bucket, photo) == b"new photo"
    assert store.get_item(settings.table, touched["id"]) is None
