"""`khpl-migrate archive-source` as the operator runs it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from tests.helpers import put_source, run

pytestmark = pytest.mark.command


@pytest.fixture
def migrated_by_command(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> bytes:
    body = put_source(store, settings, sample_records)
    assert run(["create-table"], env).returncode == 0
    assert run(["migrate", "--apply"], env).returncode == 0
    return body


def test_archive_source_reports_the_checked_copy(
    migrated_by_command: bytes, env: dict[str, str], store: Store, settings: Settings
) -> None:
    proc = run(["archive-source"], env)
    assert proc.returncode == 0, proc.stderr
    assert "🗄️ Archived s3://" in proc.stderr and "(checked)" in proc.stderr
    assert "The original stays in place" in proc.stderr
    again = run(["archive-source", "--json"], env)
    data = json.loads(again.stdout)
    assert data["alreadyArchived"] is True and data["removedOriginal"] is False
    assert store.get_bytes(settings.bucket or "", data["archiveKey"]) == migrated_by_command


def test_removing_the_original_needs_yes_without_a_terminal(
    migrated_by_command: bytes, env: dict[str, str], store: Store, settings: Settings
) -> None:
    proc = run(["archive-source", "--remove-original"], env)
    assert proc.returncode == 2 and "--yes" in proc.stderr and "Traceback" not in proc.stderr
    assert store.get_bytes(settings.bucket or "", settings.source_key) == migrated_by_command


def test_removal_is_refused_with_exit_1_while_a_record_differs(
    migrated_by_command: bytes,
    env: dict[str, str],
    store: Store,
    settings: Settings,
    sample_records: list[dict[str, Any]],
) -> None:
    bucket = settings.bucket or ""
    store.s3.delete_object(
        Bucket=bucket, Key=f"registration-images/{sample_records[1]['id']}/aadhaar.png"
    )
    proc = run(["archive-source", "--remove-original", "--yes"], env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "5 of 6 records identical" in proc.stderr and "Fix:" in proc.stderr
    assert store.get_bytes(bucket, settings.source_key) == migrated_by_command


def test_removal_after_a_complete_migration(
    migrated_by_command: bytes, env: dict[str, str], store: Store, settings: Settings
) -> None:
    proc = run(["archive-source", "--remove-original", "--yes"], env)
    assert proc.returncode == 0, proc.stderr
    assert "The original was removed" in proc.stderr
    assert store.head_object(settings.bucket or "", settings.source_key) is None
    after = run(["verify"], env)
    assert after.returncode == 2 and "--source-key archive/" in after.stderr
