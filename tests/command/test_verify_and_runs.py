"""verify --deep's report files, runs, backups, the re-feed loop and rollback, as commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.helpers import damage_five_ways, items, migrate, put_source, run, two_runs

pytestmark = pytest.mark.command


def test_deep_verify_writes_the_report_and_the_ids_to_rerun(
    store: Store,
    settings: Settings,
    migrated: list[dict[str, Any]],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    deleted, changed, _, _, _, clean = damage_five_ways(store, settings, migrated)
    report, failed = tmp_path / "report.txt", tmp_path / "ids.txt"
    proc = run(["verify", "--deep", "--report", str(report), "--failed-ids", str(failed)], env)
    assert proc.returncode == 1
    lines = report.read_text().splitlines()
    assert lines[0] == (
        f"- {deleted['id']}: deleted in DynamoDB since the migration (the app, or damage)"
    )
    assert lines[1] == (
        f"* {changed['id']}: field village: value differs "
        "(changed in DynamoDB since the migration: the app, or damage)"
    )
    assert lines[5] == f"= {clean['id']}"
    assert failed.read_text().split() == [r["id"] for r in migrated[:5]]
    assert "❌ Deep check found differences" in proc.stderr


def test_runs_and_backups_commands(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    first, second = two_runs(store, settings, sample_records)
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    assert [r["runId"] for r in listed] == [first.run_id, second.run_id]
    assert run(["backups"], env).returncode == 0

    store.put_object(settings.bucket or "", first.backup_key or "", b"[]", "application/json")
    proc = run(["backups", "--json"], env)  # one backup damaged
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
