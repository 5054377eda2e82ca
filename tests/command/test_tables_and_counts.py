"""What the tool says agrees with what is there: the table the runs wrote, and the counts
each command gives for the same thing."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from tests.helpers import app_sets, put_source, run, two_runs
from tests.review_server import start_review

pytestmark = pytest.mark.command


def test_verify_of_a_missing_table_names_the_tables_the_runs_wrote(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    two_runs(store, settings, sample_records)
    wrong = {**env, "REACT_APP_DYNAMODB_TABLE_NAME": "KHPL-Typo"}
    for deep in ([], ["--deep"]):
        proc = run(["verify", *deep, "--json"], wrong)
        assert proc.returncode == 1, proc.stderr
        assert json.loads(proc.stdout)["tablesOfRuns"] == [settings.table]
        assert (
            f"table KHPL-Typo does not exist; the runs recorded in this bucket wrote to "
            f"{settings.table}: pass --table {settings.table}"
        ) in proc.stderr
        assert f"💡 Run: khpl-migrate verify --table {settings.table}" in proc.stderr
    flag = run(["verify", "--table", "KHPL-Typo"], env)
    assert f"wrote to {settings.table}: pass --table {settings.table}" in flag.stderr
    # No run wrote any table: the missing table is simply not created yet.
    fresh = {**wrong, "REACT_APP_S3_BUCKET_NAME": f"{settings.bucket}-new"}
    store.create_bucket(f"{settings.bucket}-new")
    put_source(store, replace(settings, bucket=f"{settings.bucket}-new"), sample_records[:1])
    assert "does not exist yet: run `khpl-migrate create-table`" in run(["verify"], fresh).stderr


def test_runs_and_the_review_page_count_a_run_the_same_way(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    records = [dict(record) for record in sample_records[:3]]
    put_source(store, settings, records)
    assert run(["create-table"], env).returncode == 0
    assert run(["migrate", "--apply"], env).returncode == 0
    records[0]["village"] = "edited in the source"
    put_source(store, settings, records)
    assert run(["sync", "--apply"], env).returncode == 0  # a sync run: one record updated
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    counts = {r["runId"]: r["counts"] for r in listed}
    assert [(r["kind"], r["counts"]["written"]) for r in listed] == [("migrate", 3), ("sync", 1)]

    server = start_review(env)
    try:
        server.log_in()
        page = server.request("GET", "/").text
    finally:
        server.stop()
    rows = re.findall(
        r'data-run="([^"]+)">.*?<td class="num">(\d+)</td><td class="num">(\d+)</td>'
        r'<td class="num">(\d+)</td>',
        page,
        re.S,
    )
    shown = {
        rid: dict(zip(("written", "skipped", "failed"), map(int, n), strict=True))
        for rid, *n in rows
    }
    assert shown == counts


def test_the_sync_plans_kept_count_is_the_records_it_names(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    records = [dict(record) for record in sample_records[:4]]
    put_source(store, settings, records)
    assert run(["create-table"], env).returncode == 0
    assert run(["migrate", "--apply"], env).returncode == 0
    # Record 0: only the app edited it (in step, its edit kept). Record 1: the app edited
    # one field and the source another (to update: not in step, though an edit is kept).
    app_sets(store, settings, records[0]["id"], "village", "the app's village")
    app_sets(store, settings, records[1]["id"], "village", "the app's village")
    records[1]["fatherName"] = "edited in the source"
    put_source(store, settings, records)

    proc = run(["sync", "--json"], {**env, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr  # a dry run with a record to write
    counts = re.search(r"In step: (\d+) \(with edits made in DynamoDB, kept: (\d+)\)", proc.stderr)
    assert counts is not None, proc.stderr
    in_step, kept = map(int, counts.groups())
    named_kept = re.findall(r"^   = (\S+): kept from DynamoDB: field village$", proc.stderr, re.M)
    assert (in_step, kept, named_kept) == (3, 1, [records[0]["id"]]), proc.stderr
    listed = json.loads(proc.stdout)["records"]
    assert {r["id"] for r in listed if r["keptFromTable"]} == {records[0]["id"], records[1]["id"]}


def test_rollback_help_describes_sync_runs_and_the_runs_table_and_bucket() -> None:
    shown = " ".join(run(["rollback", "--help"], {}).stdout.split())
    assert "a migration or a sync" in shown
    assert "a sync's changes are put back field by field" in shown
    assert "a --table or --bucket that differs is refused" in shown
