"""Rollback undoes exactly one run; runs and backups are listed; failures are re-fed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.apply import apply_plan
from khpl_migrate.aws import Store
from khpl_migrate.backups import list_backups
from khpl_migrate.deep import deep_verify
from khpl_migrate.journal import list_runs
from khpl_migrate.plan import build_plan
from khpl_migrate.rollback import apply_rollback, plan_rollback, show_rollback
from khpl_migrate.settings import Settings
from khpl_migrate.table import create_table
from khpl_migrate.verify import verify
from tests.command.test_cli import run
from tests.helpers import items, objects, put_source

pytestmark = pytest.mark.integration
APP_KEY = "registration-images/KHPL_app_1/userPhoto.jpeg"


def migrate(store: Store, settings: Settings) -> Any:
    return apply_plan(store, settings, build_plan(store, settings))


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
        "referenced by an item that stays"
    )
    assert reasons[("object", photo)] == "bytes changed since the run"
    assert store.get_item(settings.table, rewritten["id"]) is not None
    assert store.get_bytes(bucket, photo) == b"retouched"
    assert store.get_item(settings.table, untouched["id"]) is None
    assert store.get_item(settings.table, retouched["id"]) is None  # its item was still the run's


def test_runs_and_backups_are_listed(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    create_table(store, settings)
    put_source(store, settings, sample_records[:2])
    first = migrate(store, settings)
    put_source(store, settings, sample_records[:3])
    second = migrate(store, settings)

    runs = list_runs(store, settings.bucket or "")
    assert [(r.run_id, r.to_json()["migrated"]) for r in runs] == [
        (first.run_id, 2),
        (second.run_id, 1),
    ]
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    assert [r["runId"] for r in listed] == [first.run_id, second.run_id]

    backups = {b.key: b for b in list_backups(store, settings)}
    assert (
        backups[first.backup_key].matches_source and not backups[first.backup_key].same_as_current
    )
    assert backups[second.backup_key].matches_source and backups[second.backup_key].same_as_current
    assert run(["backups"], env).returncode == 0

    store.put_object(settings.bucket or "", first.backup_key, b"[]", "application/json")  # damaged
    proc = run(["backups", "--json"], env)
    assert proc.returncode == 1
    damaged = {b["key"]: b for b in json.loads(proc.stdout)["backups"]}[first.backup_key]
    assert damaged["matchesSource"] is False


def test_failed_ids_feed_back_into_only_ids(
    store: Store,
    settings: Settings,
    sample_records: list[dict[str, Any]],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    create_table(store, settings)
    broken = {**sample_records[1], "image": "data:image/jpeg;base64,@@@"}
    put_source(store, settings, [sample_records[0], broken, sample_records[2]])
    ids = tmp_path / "failed.txt"
    first = run(["migrate", "--apply", "--failed-ids", str(ids)], env)
    assert first.returncode == 1
    assert ids.read_text().split() == [broken["id"]]

    put_source(store, settings, sample_records[:4])  # the record fixed, and one new one
    second = run(["migrate", "--apply", "--only-ids", str(ids), "--json"], env)
    data = json.loads(second.stdout)
    assert second.returncode == 0, second.stderr
    assert (data["migrated"], data["skipped"]) == (1, 3)  # only the listed record
    assert store.get_item(settings.table, broken["id"]) is not None
    assert store.get_item(settings.table, sample_records[3]["id"]) is None


def test_rollback_command_dry_run_then_apply(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    create_table(store, settings)
    put_source(store, settings, sample_records[:2])
    result = migrate(store, settings)
    dry = run(["rollback", "--run", result.run_id], env)
    assert dry.returncode == 0 and "Would delete: 2 items, 6 image objects" in dry.stderr
    assert f"khpl-migrate rollback --run {result.run_id} --apply" in dry.stderr
    assert len(items(store, settings)) == 2
    real = run(["rollback", "--run", result.run_id, "--apply"], env)
    assert real.returncode == 0 and "Deleted: 2 items, 6 image objects" in real.stderr
    assert items(store, settings) == {}
    missing = run(["rollback", "--run", "no-such-run"], env)
    assert missing.returncode == 2 and "khpl-migrate runs" in missing.stderr


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
    assert reasons[("item", taken["id"])] == "changed owner after the plan"
    assert reasons[("object", photo)] == "changed after the plan"
    for name in ("userPhoto.jpeg", "aadhaar.png", "paymentScreenshot.jpeg"):
        key = f"registration-images/{taken['id']}/{name}"
        assert reasons[("object", key)] == "its item changed after the plan and stays"
        assert store.get_bytes(bucket, key) is not None
    assert store.get_item(settings.table, taken["id"]) == {"id": taken["id"], "name": "app"}
    assert store.get_bytes(bucket, photo) == b"new photo"
    assert store.get_item(settings.table, touched["id"]) is None
