"""The review's evidence from the real stack: checks, names, originals from the backup."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.core.transform import RunStamp, transform
from khpl_migrate.review.checks import checklist, run_checks
from khpl_migrate.review.records import original_images
from khpl_migrate.settings import Settings

pytestmark = pytest.mark.integration


def test_checks_name_every_record_and_find_the_damaged_one(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    damaged = migrated[3]
    photo = f"registration-images/{damaged['id']}/userPhoto.jpeg"
    other = store.get_bytes(bucket, f"registration-images/{migrated[0]['id']}/userPhoto.jpeg")
    assert other is not None
    store.put_object(bucket, photo, other, "image/jpeg")

    checks = run_checks(store, settings)
    assert [(r.id, r.name) for r in checks.rows] == [(r["id"], r["name"]) for r in migrated]
    assert {r.id: r.status for r in checks.rows if r.status != "="} == {damaged["id"]: "*"}
    states = {line.key: line.state for line in checklist(checks)}
    assert states["verify"] == states["images"] == "fail"
    assert states["data"] == states["backups"] == states["runs"] == "pass"
    (run,) = checks.runs
    assert checks.backup_of_run(run.run_id) == run.header.backup_key


def test_originals_come_from_the_backup_with_the_source_bytes(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    checks = run_checks(store, settings)
    backup = checks.backup_of_run(checks.runs[0].run_id)
    record = migrated[4]
    found = original_images(store, settings, backup, record["id"])
    expected = {i.name: i.sha256 for i in transform(record, RunStamp("x", "")).images}
    assert found.problem is None
    assert {name: image.sha256 for name, image in found.images.items()} == expected
    assert hashlib.sha256(found.images["userPhoto"].data).hexdigest() == expected["userPhoto"]

    assert original_images(store, settings, backup, "no-such-id").problem is not None
    assert original_images(store, settings, None, record["id"]).problem is not None
    gone = original_images(store, settings, "migration-backup-gone.json", record["id"])
    assert gone.problem is not None and "gone" in gone.problem


def test_get_items_reads_a_page_of_items_in_one_call(
    store: Store, settings: Settings, migrated: list[dict[str, Any]]
) -> None:
    ids = [r["id"] for r in migrated] + ["missing-id", migrated[0]["id"]]
    found = store.get_items(settings.table, ids)
    assert set(found) == {r["id"] for r in migrated}
    assert found[migrated[2]["id"]]["name"] == migrated[2]["name"]
