"""The registration app keeps writing while the migration runs: nothing of it is touched."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import Action, build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from khpl_migrate.verify.status import verify
from tests.faults.proxy import ProxyPair, Rule
from tests.helpers import copies, put_source

pytestmark = pytest.mark.faults


def app_item(rid: str, key: str) -> dict[str, Any]:
    return {
        "id": rid,
        "name": "registered in the app",
        "imageUploadResults": {"userPhoto": {"s3Key": key}},
    }


def test_the_apps_writes_during_a_run_are_never_overwritten(
    faulty: ProxyPair, store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    records = copies(sample_records, 4)  # 24
    bucket = settings.bucket or ""
    put_source(store, settings, records)
    create_table(store, settings)
    slow = Rule(
        "slow", operation="PutObject", key_contains="registration-images/", rate=1.0, delay=0.03
    )
    _, _, through = faulty([slow])
    migrating = settings_mod.load(env=through, workers=2)
    plan = build_plan(Store(migrating), migrating)
    assert plan.count(Action.CREATE) == 24

    # The app registers three of the source's ids (with its own photo) after the plan ...
    written: dict[str, bytes] = {}
    for record in records[-3:]:
        key = f"registration-images/{record['id']}/userPhoto.jpeg"
        store.put_item_if_absent(settings.table, app_item(record["id"], key))
        store.put_object(bucket, key, b"app photo " + record["id"].encode(), "image/jpeg")
        written[key] = b"app photo " + record["id"].encode()
    # ... and keeps taking new registrations while the migration runs.
    stop, new_ids = threading.Event(), []

    def app() -> None:
        n = 0
        while not stop.is_set() or n < 5:
            rid, key = f"KHPL_app_{n:03d}", f"registration-images/KHPL_app_{n:03d}/userPhoto.jpeg"
            store.s3.put_object(
                Bucket=bucket, Key=key, Body=f"new {n}".encode(), ContentType="image/jpeg"
            )
            store.put_item_if_absent(settings.table, app_item(rid, key))
            written[key] = f"new {n}".encode()
            new_ids.append(rid)
            n += 1
            stop.wait(0.02)

    thread = threading.Thread(target=app)
    thread.start()
    try:
        result = apply_plan(Store(migrating), migrating, plan)
    finally:
        stop.set()
        thread.join()

    assert (result.migrated, result.skipped, result.failed) == (21, 3, [])
    assert len(new_ids) >= 5
    for key, data in written.items():
        assert store.get_bytes(bucket, key) == data, key
    for record in records[-3:]:
        item = store.get_item(settings.table, record["id"])
        assert item is not None and item["name"] == "registered in the app"
    report = verify(store, settings)
    assert report.complete
    assert sorted(rid for rid, _ in report.only_in_dynamo) == sorted(new_ids)
