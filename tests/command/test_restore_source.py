"""A broken source: the error names the last checked backup, and restore-source puts it
back, a dry run first, then only over the version of the source the operator saw."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.cutover.restore import apply_restore, plan_restore
from khpl_migrate.settings import Settings
from tests.helpers import assert_clean_error, put_source, run

pytestmark = pytest.mark.command

TRUNCATED = b'[{"id": "KHPL_1", "name": "A"}, {"id": "KHPL_2", "na'


def the_backup(store: Store, settings: Settings) -> str:
    keys = [i.key for i in store.list_objects(settings.bucket or "", "migration-backup-")]
    assert len(keys) == 1, keys
    return keys[0]


def source_bytes(store: Store, settings: Settings) -> bytes | None:
    return store.get_bytes(settings.bucket or "", settings.source_key)


def shown(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def test_a_broken_source_names_the_last_checked_backup_and_is_restored(
    migrated: list[dict[str, Any]], store: Store, settings: Settings, env: dict[str, str]
) -> None:
    backup = the_backup(store, settings)
    good = store.get_bytes(settings.bucket or "", backup)
    put_source(store, settings, raw=TRUNCATED)

    broken = run(["verify"], env)
    assert_clean_error(
        broken,
        "not valid JSON near byte",
        f"the last checked backup is {backup}",
        f"`khpl-migrate restore-source --backup {backup}` puts it back",
        "`khpl-migrate backups` lists them all",
    )

    dry = run(["restore-source", "--backup", backup, "--json"], env)
    plan = shown(dry)
    etag = plan["current"]["etag"]
    assert plan["dryRun"] is True and plan["restored"] is False
    assert plan["backup"]["key"] == backup and plan["backup"]["records"] == len(migrated)
    assert plan["backup"]["matchesSource"] is True and plan["current"]["size"] == len(TRUNCATED)
    assert "dry run: nothing was written" in dry.stderr and plan["backup"]["sha256"] in dry.stderr
    assert f"--apply --expect-etag {etag}" in " ".join(dry.stderr.split())
    assert source_bytes(store, settings) == TRUNCATED

    needs = run(["restore-source", "--backup", backup, "--apply"], env)
    assert needs.returncode == 2 and "--expect-etag" in needs.stderr
    assert_clean_error(
        run(["restore-source", "--backup", backup, "--apply", "--expect-etag", "0abc"], env),
        f"is now ETag {etag}, not 0abc",
        "nothing was written",
    )
    assert source_bytes(store, settings) == TRUNCATED

    done = run(["restore-source", "--backup", backup, "--apply", "--expect-etag", etag], env)
    assert done.returncode == 0, done.stderr
    assert f"✅ Restored s3://{settings.bucket}/{settings.source_key} from {backup}" in done.stderr
    assert source_bytes(store, settings) == good
    assert run(["verify"], env).returncode == 0


def test_the_apps_write_after_the_look_is_never_overwritten(
    migrated: list[dict[str, Any]], store: Store, settings: Settings, env: dict[str, str]
) -> None:
    backup = the_backup(store, settings)
    put_source(store, settings, raw=TRUNCATED)
    seen = shown(run(["restore-source", "--backup", backup, "--json"], env))["current"]["etag"]
    apps = put_source(store, settings, migrated[:2])  # the app writes a new version

    assert_clean_error(
        run(["restore-source", "--backup", backup, "--apply", "--expect-etag", seen], env),
        "the one you saw",
    )
    assert source_bytes(store, settings) == apps

    # The app writes between the look (the plan) and the write: S3's If-Match refuses it.
    plan = plan_restore(store, settings, backup)
    later = put_source(store, settings, migrated[:1])
    with pytest.raises(errors.SourceChanged, match="changed between the look and the write"):
        apply_restore(store, plan, plan.current_etag)
    assert source_bytes(store, settings) == later


def test_restore_refuses_what_is_not_a_good_backup(
    migrated: list[dict[str, Any]], store: Store, settings: Settings, env: dict[str, str]
) -> None:
    bucket = settings.bucket or ""
    backup = the_backup(store, settings)
    assert_clean_error(
        run(["restore-source", "--backup", settings.source_key], env), "not one of the tool's"
    )
    missing = "migration-backup-2020-01-01T00:00:00.000Z-registrations.json"
    assert_clean_error(run(["restore-source", "--backup", missing], env), "does not exist")
    store.put_object(bucket, backup, b"[]", "application/json")  # damaged since its run
    assert_clean_error(
        run(["restore-source", "--backup", backup], env), "no longer hashes to the source"
    )


def test_a_missing_source_is_restored_only_while_still_missing(
    migrated: list[dict[str, Any]], store: Store, settings: Settings, env: dict[str, str]
) -> None:
    backup = the_backup(store, settings)
    store.s3.delete_object(Bucket=settings.bucket or "", Key=settings.source_key)
    plan = shown(run(["restore-source", "--backup", backup, "--json"], env))
    assert plan["current"] is None
    command = ["restore-source", "--backup", backup, "--apply", "--expect-etag", "none"]
    assert run(command, env).returncode == 0
    assert source_bytes(store, settings) == store.get_bytes(settings.bucket or "", backup)
    assert_clean_error(run(command, env), "not none")


def test_a_broken_source_without_backups_still_names_the_commands(
    seeded: Store, settings: Settings, env: dict[str, str]
) -> None:
    put_source(seeded, settings, raw=TRUNCATED)
    proc = run(["migrate"], env)
    assert_clean_error(proc, "`khpl-migrate backups`", "khpl-migrate restore-source --backup KEY")
    assert "last checked backup" not in proc.stderr
