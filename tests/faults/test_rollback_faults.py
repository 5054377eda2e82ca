"""A rollback refused or killed half-way is finished by running it again, and touches
nothing that is not the run's: 403 and 501 on DeleteObject, kill -9 at several points."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.kernel.baseline import history
from khpl_migrate.settings import Settings
from khpl_migrate.setup.sample import registrations
from khpl_migrate.setup.table import create_table
from tests.faults.proxy import ProxyPair, Rule, killed_run
from tests.helpers import app_sets, copies, items, migrate, objects, put_source, run

pytestmark = pytest.mark.faults
IMAGES = "registration-images/"
APP_KEY = f"{IMAGES}KHPL_app_own/photo.jpeg"


def _migrated_with_the_apps_data(
    store: Store, settings: Settings, records: list[dict[str, Any]]
) -> tuple[str, str]:
    """A run of `records`; then the app edits one of its items and adds its own item and
    object. Returns the run id and the id of the edited item."""
    create_table(store, settings)
    put_source(store, settings, records)
    result = migrate(store, settings)
    assert result.ok
    edited = records[0]["id"]
    app_sets(store, settings, edited, "paymentStatus", "refunded-by-app")
    store.put_item_if_absent(settings.table, {"id": "KHPL_app_own", "photo": APP_KEY})
    store.put_object(settings.require_bucket(), APP_KEY, b"the app's photo", "image/jpeg")
    return result.run_id, edited


def _finished(store: Store, settings: Settings, records: list[dict[str, Any]], edited: str) -> None:
    """Nothing the run wrote is left, except what the app's edit keeps; the app's own data
    is as the app left it."""
    table = items(store, settings)
    assert set(table) == {edited, "KHPL_app_own"}
    assert table[edited]["paymentStatus"] == "refunded-by-app"
    left = {k for k in objects(store, settings) if k.startswith(IMAGES)}
    kept = {k for k in left if k.startswith(f"{IMAGES}{edited}/")}
    assert left == kept | {APP_KEY}
    assert len(kept) == 3  # the edited item stays, so do its images
    assert store.get_bytes(settings.require_bucket(), APP_KEY) == b"the app's photo"


@pytest.mark.parametrize(
    ("refusal", "rule"),
    [
        ("403 on the third DeleteObject", Rule("denied", operation="DeleteObject", nth=3)),
        (
            "501 on a conditional DeleteObject, mid-way",
            Rule("not_implemented", operation="DeleteObject", header="if-match", nth=4),
        ),
    ],
)
def test_a_rollback_refused_mid_way_is_finished_by_the_next(
    refusal: str,
    rule: Rule,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    records = copies(sample_records, 1)
    run_id, edited = _migrated_with_the_apps_data(store, settings, records)
    _, _, through = faulty([rule])

    failed = run(["rollback", "--run", run_id, "--apply"], through)

    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    assert rule.fired == 1
    assert f"migration-runs/{run_id}/rollback-" in "".join(objects(store, settings))

    again = run(["rollback", "--run", run_id, "--apply"], env)

    assert again.returncode == 0, again.stderr
    _finished(store, settings, records, edited)


@pytest.mark.parametrize(
    "rule",
    [
        Rule("denied", operation="DeleteObject", nth=1),
        Rule("not_implemented", operation="DeleteObject", header="if-match", rate=1.0),
        Rule("denied", service="dynamodb", operation="DeleteItem", nth=1),
    ],
    ids=["no s3:DeleteObject", "no conditional deletes", "no dynamodb:DeleteItem"],
)
def test_a_rollback_that_cannot_make_its_changes_makes_none(
    rule: Rule,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    sample_records: list[dict[str, Any]],
) -> None:
    records = copies(sample_records, 1)
    run_id, _ = _migrated_with_the_apps_data(store, settings, records)
    before = items(store, settings), objects(store, settings)
    s3_rules, ddb_rules = ([], [rule]) if rule.service == "dynamodb" else ([rule], [])
    _, _, through = faulty(s3_rules, ddb_rules)

    refused = run(["rollback", "--run", run_id, "--apply"], through)

    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "Fix:" in refused.stderr and "nothing was changed" in refused.stderr
    assert (items(store, settings), objects(store, settings)) == before


KILLS = [
    # DeleteItem number 1 is the pre-flight probe, on an id that does not exist.
    ("at the pre-flight", "dynamodb", Rule("kill", operation="DeleteItem", nth=1)),
    ("before the first item delete", "dynamodb", Rule("kill", operation="DeleteItem", nth=2)),
    (
        "after the first item delete, its answer lost",
        "dynamodb",
        Rule("kill", operation="DeleteItem", nth=2, after=True),
    ),
    ("before the third item delete", "dynamodb", Rule("kill", operation="DeleteItem", nth=4)),
    ("during the reference scan", "dynamodb", Rule("kill", operation="Scan", nth=6)),
    (
        "after an object delete",
        "s3",
        Rule("kill", operation="DeleteObject", header="if-match", nth=5, after=True),
    ),
    (
        "at the rollback's first record (in progress)",
        "s3",
        Rule("kill", operation="PutObject", key_contains="/rollback-", nth=1),
    ),
    (
        "at the rollback's last record",
        "s3",
        Rule("kill", operation="PutObject", key_contains="/rollback-", nth=2),
    ),
]


@pytest.mark.parametrize(("name", "service", "rule"), KILLS, ids=[k[0] for k in KILLS])
def test_a_rollback_killed_at_any_point_is_finished_by_the_next(
    name: str,
    service: str,
    rule: Rule,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    records = copies(sample_records, 1)
    run_id, edited = _migrated_with_the_apps_data(store, settings, records)
    args = ["rollback", "--run", run_id, "--apply", "-q"]
    assert killed_run(faulty, args, service, rule) == -signal.SIGKILL, f"not killed at: {name}"

    again = run(["rollback", "--run", run_id, "--apply"], env)

    assert again.returncode == 0, again.stderr
    _finished(store, settings, records, edited)
    # Every item the rollbacks deleted is known as undone (not "deleted by the app"), so a
    # later sync or migrate takes those records from the source again.
    past = history(store, settings.require_bucket(), settings.state_dir)
    assert past.written == {edited}


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_a_sync_rollback_killed_at_its_update_is_finished_by_the_next(
    after: bool,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    migrated: list[dict[str, Any]],
) -> None:
    """The sync replaced a photo (a new object at a key of its own); its rollback is killed
    at the UpdateItem that points the reference back. The next one finishes: the old
    reference, and the sync's object gone."""
    rid, bucket = migrated[0]["id"], settings.require_bucket()
    before = items(store, settings)[rid]
    source = [dict(r) for r in migrated]
    source[0]["image"] = registrations(1, seed=99)[0]["image"]
    put_source(store, settings, source)
    synced = run(["sync", "--apply", "--json"], env)
    assert synced.returncode == 0, synced.stderr
    run_id = json.loads(synced.stdout)["runId"]
    moved = items(store, settings)[rid]["imageUploadResults"]["userPhoto"]["s3Key"]
    assert moved != before["imageUploadResults"]["userPhoto"]["s3Key"]
    rule = Rule("kill", operation="UpdateItem", nth=2, after=after)  # 1: the pre-flight probe
    args = ["rollback", "--run", run_id, "--apply", "-q"]
    assert killed_run(faulty, args, "dynamodb", rule) == -signal.SIGKILL

    again = run(["rollback", "--run", run_id, "--apply"], env)

    assert again.returncode == 0, again.stderr
    now = items(store, settings)[rid]
    assert now["imageUploadResults"] == before["imageUploadResults"]
    assert store.get_bytes(bucket, moved) is None
