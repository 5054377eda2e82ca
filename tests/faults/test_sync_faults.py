"""sync against a live app and crashes: the app's write between the tool's read and its
write survives; kill -9 mid-run, then again, converges."""

from __future__ import annotations

import copy
import dataclasses
import json
import signal
from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core.threeway import Side
from khpl_migrate.core.transform import FIELD_RUNS, IMAGE_RUNS
from khpl_migrate.kernel.runs import read_manifest
from khpl_migrate.rollback import apply_rollback, plan_rollback
from khpl_migrate.settings import Settings
from khpl_migrate.setup.sample import registrations
from khpl_migrate.setup.table import create_table
from khpl_migrate.sync.apply import apply_sync
from khpl_migrate.sync.model import SyncOptions
from khpl_migrate.sync.plan import plan_sync
from tests.faults.proxy import ProxyPair, Rule, fewer_records, killed_run
from tests.helpers import app_sets, copies, items, migrate, put_source, run

pytestmark = pytest.mark.faults
# Which run wrote which unit: a rollback removes this run's entries, maybe leaving a map.
PROVENANCE = (FIELD_RUNS, IMAGE_RUNS)


@pytest.mark.parametrize("field", ["paymentStatus", "village"])
def test_the_apps_write_between_the_read_and_the_write_survives(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    migrated: list[dict[str, Any]],
    field: str,
) -> None:
    """The app writes, right before the tool's UpdateItem reaches DynamoDB, the field the
    tool carries over (the condition fails; read again, it is a conflict) or another one
    (the tool's write goes ahead; the app's stays)."""
    rid = migrated[0]["id"]
    source = copy.deepcopy(migrated)
    source[0]["paymentStatus"] = "refunded"
    put_source(store, settings, source)

    def the_app() -> None:
        app_sets(store, settings, rid, field, "written by the app meanwhile")

    rule = Rule("hook", operation="UpdateItem", nth=1, hook=the_app)
    _, ddb, through = faulty(ddb_rules=[rule])
    faulted = settings_mod.load(env=through)
    slow = Store(faulted)
    plan = plan_sync(slow, faulted, SyncOptions())
    result = apply_sync(slow, faulted, plan)

    assert rule.fired == 1
    item = items(store, settings)[rid]
    assert item[field] == "written by the app meanwhile"  # never overwritten
    entry = next(e for e in result.entries if e.id == rid)
    if field == "paymentStatus":
        assert ddb.operations["UpdateItem"] == 1  # read again, judged again: a conflict
        assert entry.sides == {("field", "paymentStatus"): Side.CONFLICT}
        assert [e.id for e in result.problems()] == [rid]
    else:
        # The condition names only what the tool writes: the app's other field is not
        # in it, so the write goes ahead at once, and both edits stand.
        assert ddb.operations["UpdateItem"] == 1
        assert item["paymentStatus"] == "refunded" and result.ok


POINTS = [
    ("after the backup copy", "s3", Rule("kill", operation="CopyObject", nth=1, after=True)),
    (
        "a new image stored",
        "s3",
        Rule("kill", operation="PutObject", key_contains="userPhoto-", nth=1, after=True),
    ),
    ("before an UpdateItem", "dynamodb", Rule("kill", operation="UpdateItem", nth=2)),
    ("after an UpdateItem", "dynamodb", Rule("kill", operation="UpdateItem", nth=2, after=True)),
    ("after a DeleteItem", "dynamodb", Rule("kill", operation="DeleteItem", nth=1, after=True)),
    (
        "the manifest upload",
        "s3",
        Rule("kill", operation="PutObject", key_contains="migration-runs/", nth=1),
    ),
]


def _edited(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Migrated; then six payments refunded and two photos replaced in the source, the
    last record deleted there, and one field edited by the app."""
    records = copies(sample_records, 2)
    put_source(store, settings, records)
    create_table(store, settings)
    assert migrate(store, settings).ok
    source = copy.deepcopy(records[:-1])
    for record in source[:6]:
        record["paymentStatus"] = "refunded"
    source[1]["image"] = registrations(1, seed=99)[0]["image"]
    source[7]["image"] = registrations(1, seed=98)[0]["image"]
    put_source(store, settings, source)
    app_sets(store, settings, records[8]["id"], "village", "the app's")
    return records, source


SYNC = ["sync", "--apply", "--delete", "--max-delete", "100"]


def _killed_sync(faulty: ProxyPair, service: str, rule: Rule, name: str) -> None:
    # POINTS are shared by two tests: each run counts requests afresh.
    rule = dataclasses.replace(rule, seen=0, fired=0)
    args = [*SYNC, "-q", "--workers", "2"]
    assert killed_run(faulty, args, service, rule) == -signal.SIGKILL, f"not killed at: {name}"


@pytest.mark.parametrize(("name", "service", "rule"), POINTS, ids=[p[0] for p in POINTS])
def test_a_sync_killed_at_any_point_is_finished_by_the_next(
    name: str,
    service: str,
    rule: Rule,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    records, source = _edited(store, settings, sample_records)
    _killed_sync(faulty, service, rule, name)

    again = run(SYNC, env)

    assert again.returncode == 0, again.stderr
    table = items(store, settings)
    for record in source:
        item = table[record["id"]]
        assert item["paymentStatus"] == record["paymentStatus"]
    assert table[records[8]["id"]]["village"] == "the app's"
    assert records[-1]["id"] not in table
    assert run(["sync"], env).returncode == 0  # in step: nothing left to write
    deep = run(["verify", "--deep", "--allow-table-edits"], env)
    assert deep.returncode == 0, deep.stderr
    assert "Orphan image objects: 0" in deep.stderr


@pytest.mark.parametrize(
    ("name", "rule"),
    [p[::2] for p in POINTS if p[0] in ("after an UpdateItem", "after a DeleteItem")],
    ids=["after an UpdateItem", "after a DeleteItem"],
)
def test_a_sync_killed_after_a_write_is_undone_by_its_rollback(
    name: str,
    rule: Rule,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    """The killed run's outcome lines never reached its manifest; its intents did, and
    the items say which changes happened: rollback finds and undoes exactly those."""
    _edited(store, settings, sample_records)
    before = items(store, settings)
    _killed_sync(faulty, "dynamodb", rule, name)
    runs = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    killed = [r["runId"] for r in runs if r["kind"] == "sync"]
    assert len(killed) == 1, runs  # read from the local manifest the kill left

    undone = run(["rollback", "--run", killed[0], "--apply", "--json"], env)

    assert undone.returncode == 0, undone.stderr
    after = items(store, settings)
    assert set(after) == set(before)  # a deleted item is back
    for rid, item in before.items():
        assert {k: v for k, v in after[rid].items() if k not in PROVENANCE} == {
            k: v for k, v in item.items() if k not in PROVENANCE
        }, rid


def test_a_new_record_whose_putitem_answer_is_lost_is_the_syncs_own_write(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    migrated: list[dict[str, Any]],
) -> None:
    """The item reaches DynamoDB, the answer does not; botocore retries and the condition
    fails on the run's own item. It counts as migrated, is in the manifest, and a
    rollback of the sync removes it."""
    newcomer = {**copy.deepcopy(migrated[0]), "id": "KHPL_1701234567_latewr"}
    put_source(store, settings, [*migrated, newcomer])
    rule = Rule("reset_response", operation="PutItem", nth=1)
    _, _, through = faulty(ddb_rules=[rule])
    faulted = settings_mod.load(env=through)
    slow = Store(faulted)

    result = apply_sync(slow, faulted, plan_sync(slow, faulted, SyncOptions()))

    assert rule.fired == 1
    assert result.outcomes[newcomer["id"]] == "migrated", result.outcomes
    manifest = read_manifest(store, settings.require_bucket(), result.run_id, settings.state_dir)
    assert manifest is not None
    assert any(line.id == newcomer["id"] and line.item_written for line in manifest.records)
    apply_rollback(store, plan_rollback(store, settings, result.run_id))
    assert newcomer["id"] not in items(store, settings)


def test_a_short_read_of_the_source_during_a_sync_is_not_a_finished_sync(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    migrated: list[dict[str, Any]],
) -> None:
    """The apply pass reads the pinned source again; if it ends records early (the same
    length, fewer records), the records not read are not written and the run says so,
    instead of reporting a sync that did everything."""
    source = copy.deepcopy(migrated)
    for record in source:
        record["village"] = "Moved"
    put_source(store, settings, source)
    # The plan reads the source once (GET 1); the apply pass reads it again (GET 2).
    rule = Rule("rewrite", operation="GetObject", key=settings.source_key, nth=2)
    rule.body = fewer_records(2)
    _, _, through = faulty(s3_rules=[rule])
    faulted = settings_mod.load(env=through)
    slow = Store(faulted)
    plan = plan_sync(slow, faulted, SyncOptions())
    assert len(plan.to_write()) == len(source)

    result = apply_sync(slow, faulted, plan)

    assert rule.fired == 1
    assert not result.ok
    assert result.stopped == f"read 2 records, the plan has {len(source)}"
    moved = {rid for rid, item in items(store, settings).items() if item["village"] == "Moved"}
    assert moved == {r["id"] for r in source[:2]}
    manifest = read_manifest(store, settings.require_bucket(), result.run_id, settings.state_dir)
    assert manifest is not None and manifest.stopped == result.stopped
    again = apply_sync(store, settings, plan_sync(store, settings, SyncOptions()))
    assert again.ok and set(again.outcomes) == {r["id"] for r in source[2:]}


def test_new_records_whose_transaction_answer_is_lost_are_the_syncs_own_writes(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    migrated: list[dict[str, Any]],
) -> None:
    """Records new in the source go through the same item writer as a migration's: in a
    conditional transaction whose answer can be lost and retried; the retry finds the
    run's own items, and each is counted migrated, named in the manifest, and undone by a
    rollback of the sync."""
    newcomers = [
        {**copy.deepcopy(migrated[0]), "id": f"KHPL_1701234567_late{n:02d}"} for n in range(3)
    ]
    put_source(store, settings, [*migrated, *newcomers])
    rule = Rule("reset_response", operation="TransactWriteItems", nth=1)
    _, _, through = faulty(ddb_rules=[rule])
    faulted = settings_mod.load(env=through, workers=1)
    slow = Store(faulted)

    result = apply_sync(slow, faulted, plan_sync(slow, faulted, SyncOptions()))

    assert rule.fired == 1
    new = {r["id"] for r in newcomers}
    assert {rid: result.outcomes[rid] for rid in new} == dict.fromkeys(new, "migrated")
    manifest = read_manifest(store, settings.require_bucket(), result.run_id, settings.state_dir)
    assert manifest is not None
    assert {line.id for line in manifest.records if line.item_written} == new
    apply_rollback(store, plan_rollback(store, settings, result.run_id))
    assert not new & set(items(store, settings))
