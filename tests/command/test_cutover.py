"""The cut-over as the operator runs it: sync's exit codes and output, freeze-source."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.cutover.freeze import sid
from khpl_migrate.settings import Settings
from tests.helpers import app_sets, assert_clean_error, image_key, put_source, run

pytestmark = pytest.mark.command


@pytest.fixture
def edited(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Migrated; then the source edited, and the app's conflicting edit of one field."""
    put_source(store, settings, sample_records)
    assert run(["create-table"], env).returncode == 0
    assert run(["migrate", "--apply"], env).returncode == 0
    source = copy.deepcopy(sample_records)
    source[0]["paymentStatus"] = "refunded"
    source[1]["village"] = "Source village"
    put_source(store, settings, source)
    app_sets(store, settings, source[1]["id"], "village", "App village")
    return source


def test_sync_dry_run_apply_settle_and_in_step(
    edited: list[dict[str, Any]], env: dict[str, str], tmp_path: Path
) -> None:
    dry = run(["sync"], env)
    assert dry.returncode == 1, dry.stderr  # a conflict is left
    assert "dry run: nothing was written" in dry.stderr
    assert f"* {edited[0]['id']}: from the source: field paymentStatus" in dry.stderr
    assert f"! {edited[1]['id']}: conflict (changed on both sides, differently): field village" in (
        dry.stderr
    )
    assert dry.stdout == ""
    for value in ("refunded", "Source village", "App village"):  # names, never values
        assert value not in dry.stderr

    applied = run(["sync", "--apply", "--json"], env)
    assert applied.returncode == 1
    data = json.loads(applied.stdout)
    assert data["outcomes"] == {"updated": 1} and data["ok"] is False
    assert data["conflicts"] == 1 and data["manifestKey"].startswith("migration-runs/")

    ids = tmp_path / "settle.txt"
    ids.write_text(edited[1]["id"] + "\n")
    settled = run(["sync", "--apply", "--only-ids", str(ids), "--take", "source"], env)
    assert settled.returncode == 0, settled.stderr
    assert "✅ Source and table in step" in settled.stderr
    again = run(["sync", "--json"], env)
    assert again.returncode == 0 and json.loads(again.stdout)["toUpdate"] == 0


def test_sync_errors_are_clean(env: dict[str, str], edited: list[dict[str, Any]]) -> None:
    assert_clean_error(run(["sync", "--table", "KHPL-Nope"], env), "does not exist")
    bad = run(["sync", "--take", "source"], env)
    assert bad.returncode == 2 and "--only-ids" in bad.stderr and "Traceback" not in bad.stderr


def test_sync_on_a_table_no_run_wrote_names_the_first_migration(
    seeded: Store, settings: Settings, env: dict[str, str]
) -> None:
    """A sync there would migrate every record without the plan, backup and review."""
    seeded.put_item_if_absent(settings.table, {"id": "KHPL_app_only", "name": "New Player"})
    for command in (["sync"], ["sync", "--apply"]):
        proc = run(command, env)
        assert_clean_error(
            proc,
            f"No run of khpl-migrate has written table {settings.table}",
            "this is a first migration",
            "run `khpl-migrate migrate` (the plan",
            "backs up the source first",
            "khpl-migrate review",
        )
    assert [info.key for info in seeded.list_objects(settings.bucket or "", "")] == [
        settings.source_key
    ]
    assert [item["id"] for item in seeded.scan(settings.table)] == ["KHPL_app_only"]


def test_freeze_source_adds_and_removes_exactly_its_statement(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    put_source(store, settings, sample_records[:1])
    theirs = {
        "Sid": "TheirsAlready",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    store.set_bucket_policy(bucket, {"Version": "2012-10-17", "Statement": [theirs]})

    dry = run(["freeze-source"], env)
    assert dry.returncode == 0 and json.loads(dry.stdout)["Sid"] == sid("registrations.json")
    assert store.bucket_policy(bucket) == {"Version": "2012-10-17", "Statement": [theirs]}

    assert run(["freeze-source", "--apply"], env).returncode == 0
    statements = (store.bucket_policy(bucket) or {})["Statement"]
    assert statements[0] == theirs and len(statements) == 2
    ours = statements[1]
    assert ours["Effect"] == "Deny" and sorted(ours["Action"]) == [
        "s3:DeleteObject",
        "s3:PutObject",
    ]
    assert ours["Resource"] == f"arn:aws:s3:::{bucket}/registrations.json"
    again = run(["freeze-source", "--apply"], env)
    assert "frozen already" in again.stderr and len(store.bucket_policy(bucket)["Statement"]) == 2

    # Nothing was migrated: the removal is refused, and the policy is left as it was.
    frozen = store.bucket_policy(bucket)
    refused = run(["archive-source", "--remove-original", "--yes"], env)
    assert refused.returncode == 1 and "records identical" in refused.stderr
    assert store.get_bytes(bucket, "registrations.json") is not None
    assert store.bucket_policy(bucket) == frozen

    undone = run(["freeze-source", "--undo", "--apply"], env)
    assert undone.returncode == 0
    assert store.bucket_policy(bucket) == {"Version": "2012-10-17", "Statement": [theirs]}


def test_freeze_source_undo_removes_a_policy_that_was_only_ours(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records[:1])
    assert run(["freeze-source", "--apply"], env).returncode == 0
    dry = run(["freeze-source", "--undo"], env)
    assert "Would remove" in dry.stderr and store.bucket_policy(settings.bucket or "")
    assert run(["freeze-source", "--undo", "--apply"], env).returncode == 0
    assert store.bucket_policy(settings.bucket or "") is None


def test_verify_deep_names_allow_table_edits_when_every_difference_is_the_apps(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records)
    assert run(["create-table"], env).returncode == 0
    assert run(["migrate", "--apply"], env).returncode == 0
    app_sets(store, settings, sample_records[1]["id"], "jerseySize", "XXL")
    app_sets(store, settings, sample_records[2]["id"], "village", "App village")
    synced = run(["sync", "--apply"], env)  # the app's edits are kept
    assert synced.returncode == 0 and "with edits made in DynamoDB, kept: 2" in synced.stderr

    plain = run(["verify", "--deep"], env)
    assert plain.returncode == 1
    assert "❌ Deep check found differences" in plain.stderr
    assert (
        "💡 Every difference is an edit made in DynamoDB since the migration (the app's, after "
        "the cut-over: 2 records edited in DynamoDB); to accept them: "
        "khpl-migrate verify --deep --allow-table-edits"
    ) in plain.stderr
    allowed = run(["verify", "--deep", "--allow-table-edits", "--json"], env)
    assert allowed.returncode == 0, allowed.stderr
    assert "• The app's edits accepted: 2 records edited in DynamoDB" in allowed.stderr
    assert json.loads(allowed.stdout)["deep"]["allowedTableEdits"] == 2

    # Damage in S3 besides: the flag does not pass it, and no hint points at the flag.
    bucket = settings.bucket or ""
    store.s3.delete_object(Bucket=bucket, Key=image_key(sample_records[3], "aadhaar"))
    damaged = run(["verify", "--deep"], env)
    assert damaged.returncode == 1 and "--allow-table-edits" not in damaged.stderr
    assert run(["verify", "--deep", "--allow-table-edits"], env).returncode == 1


def test_archive_source_removes_a_frozen_original_and_leaves_it_frozen(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    bucket = settings.bucket or ""
    theirs = {
        "Sid": "TheirsAlready",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    store.set_bucket_policy(bucket, {"Version": "2012-10-17", "Statement": [theirs]})
    put_source(store, settings, sample_records[:2])
    for command in (["create-table"], ["migrate", "--apply"], ["freeze-source", "--apply"]):
        assert run(command, env).returncode == 0
    frozen = store.bucket_policy(bucket)

    trace = tmp_path / "trace.jsonl"
    removed = run(
        ["archive-source", "--remove-original", "--yes", "--json"],
        {**env, "KHPL_TRACE_OPERATIONS": str(trace)},
    )
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["frozen"] == sid("registrations.json")
    assert f"Still frozen (statement {sid('registrations.json')})" in removed.stderr
    assert store.head_object(bucket, settings.source_key) is None
    assert store.bucket_policy(bucket) == frozen  # every statement as it was
    # Only around the delete is the tool's own statement narrowed (to deny writes only).
    calls = [json.loads(line)["operation"] for line in trace.read_text().splitlines()]
    policy_calls = [c for c in calls if c in {"PutBucketPolicy", "DeleteObject"}]
    assert policy_calls == ["PutBucketPolicy", "DeleteObject", "PutBucketPolicy"]
