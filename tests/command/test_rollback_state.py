"""What `runs` and `rollback` say about a run's rollback is true: its state, when and by
which rollback, the table and bucket it acts on; a rolled-back run is left alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from tests.helpers import app_sets, assert_clean_error, items, objects, run, two_runs

pytestmark = pytest.mark.command


def runs_by_id(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    proc = run(["runs", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return {r["runId"]: r for r in json.loads(proc.stdout)["runs"]}


def test_runs_show_each_runs_rollback_state_and_a_second_rollback_writes_nothing(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    first, second = two_runs(store, settings, sample_records)
    listed = runs_by_id(env)
    assert {r["rollbackState"] for r in listed.values()} == {"not_rolled_back"}
    assert listed[first.run_id]["rollback"] is None

    # The app edits one of the first run's two records: that one is left, the other goes.
    app_sets(store, settings, sample_records[1]["id"], "village", "edited by the app")
    partly = run(["rollback", "--run", first.run_id, "--apply", "--json"], env)
    assert partly.returncode == 0, partly.stderr
    assert "The run is now partly rolled back (4 of what it wrote left in place" in partly.stderr
    done = run(["rollback", "--run", second.run_id, "--apply", "--json"], env)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)["recordKey"]
    assert "The run is now rolled back" in done.stderr

    listed = runs_by_id(env)
    assert listed[second.run_id]["rollbackState"] == "rolled_back"
    assert listed[second.run_id]["rollback"]["record"] == record
    assert listed[second.run_id]["rollback"]["at"] in record
    assert listed[first.run_id]["rollbackState"] == "partly_rolled_back"
    assert listed[first.run_id]["rollback"]["kept"] == 4  # the item and its 3 images
    human = run(["runs"], {**env, "COLUMNS": "200"}).stderr
    assert f"↩️ {second.run_id}: rolled back on " in human and record in human
    assert f"↩️ {first.run_id}: partly rolled back on " in human

    # Rolling the rolled-back run back again: it says so, and writes nothing at all.
    before = (objects(store, settings), items(store, settings))
    for args in (["--json"], ["--apply", "--json"]):
        again = run(["rollback", "--run", second.run_id, *args], env)
        assert again.returncode == 0, again.stderr
        data = json.loads(again.stdout)
        assert data["alreadyRolledBack"]["record"] == record
        assert data["alreadyRolledBack"]["state"] == "rolled_back"
        assert data["recordKey"] is None and not data["deleted"]
        assert "Already rolled back on " in again.stderr and record in again.stderr
        assert "nothing to do, nothing written" in again.stderr
        reasons = {step["reason"] for step in data["left"]}
        assert "already gone" not in reasons
        assert all(r.startswith("already rolled back (deleted by the rollback of") for r in reasons)
    assert (objects(store, settings), items(store, settings)) == before


def test_rollback_names_its_table_and_bucket_and_refuses_others(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    first, _ = two_runs(store, settings, sample_records)
    plan = run(["rollback", "--run", first.run_id, "--json"], env)
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert (data["table"], data["bucket"]) == (settings.table, settings.bucket)
    assert f"Acts on: table {settings.table}, bucket {settings.bucket}" in plan.stderr

    before = (objects(store, settings), items(store, settings))
    other = run(["rollback", "--run", first.run_id, "--apply", "--table", "KHPL-Other"], env)
    assert_clean_error(other, f"wrote to table {settings.table}", f"--table {settings.table}")

    # The run's manifest only on this machine, another bucket named: refused, not acted on.
    bucket = f"{settings.bucket}-other"
    store.create_bucket(bucket)
    wrong = run(["rollback", "--run", first.run_id, "--apply", "--bucket", bucket], env)
    assert_clean_error(wrong, f"wrote to bucket {settings.bucket}", f"--bucket {settings.bucket}")
    assert (objects(store, settings), items(store, settings)) == before

    done = run(["rollback", "--run", first.run_id, "--apply", "--json"], env)
    result = json.loads(done.stdout)
    assert (result["table"], result["bucket"]) == (settings.table, settings.bucket)
    assert f"Acts on: table {settings.table}, bucket {settings.bucket}" in done.stderr
