"""Each record line says where its record lies in the run's backup (`at`: offset, length),
and a run's copies of a few records are fetched by range: the proxy sees every GET of a
backup, and its Range header."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core.layout import manifest_key
from khpl_migrate.core.spans import BOM
from khpl_migrate.kernel.manifest import Manifest
from khpl_migrate.kernel.runs import list_runs
from khpl_migrate.rollback import apply_rollback, plan_rollback
from khpl_migrate.settings import Settings
from khpl_migrate.setup.sample import registrations, source_bytes
from khpl_migrate.sync.apply import apply_sync
from khpl_migrate.sync.model import SyncOptions
from khpl_migrate.sync.plan import plan_sync
from tests.faults.proxy import ProxyPair, Request, Rule
from tests.helpers import items, migrate, put_source

pytestmark = pytest.mark.faults

# Text that looks like the array's structure, and escapes: only a string-aware scan
# locates the records around it.
TRICKY = 'Ra },{"id":"KHPL-fake","x":[1,{"y":"]"}]} \\" vi'


def _runs(store: Store, settings: Settings) -> list[Manifest]:
    return list_runs(store, settings.require_bucket())


def _located(store: Store, settings: Settings, run: Manifest) -> dict[str, Any]:
    """id -> the record as the bytes the run's line locates in its backup hold it."""
    backup = store.get_bytes(settings.require_bucket(), str(run.header.backup_key))
    assert backup is not None
    out = {}
    for line in run.records:
        assert line.at is not None, line
        offset, length = line.at
        out[str(line.id)] = json.loads(backup[offset : offset + length], parse_float=Decimal)
    return out


def test_every_record_line_locates_its_record_in_the_backup(
    seeded: Store, settings: Settings
) -> None:
    store = seeded
    records = registrations(5, seed=11)
    records[1]["fullName"] = TRICKY
    records[3]["village"] = "ಕುಂದಾಪುರ " + TRICKY  # non-ASCII: offsets are bytes
    # Spaces between the records, as an editor's pretty-printing leaves them.
    body = BOM + b"[\n " + b",\n ".join(source_bytes([r])[1:-1] for r in records) + b"\n]"
    put_source(store, settings, raw=body)
    assert migrate(store, settings).ok

    [run] = _runs(store, settings)
    assert _located(store, settings, run) == {r["id"]: r for r in records}

    edited = copy.deepcopy(records)
    edited[1]["paymentStatus"] = "refunded"
    edited.insert(0, registrations(1, seed=12)[0])  # every offset after it moves
    put_source(store, settings, edited)
    plan = plan_sync(store, settings, SyncOptions())
    assert apply_sync(store, settings, plan).ok
    sync_run = _runs(store, settings)[-1]
    located = _located(store, settings, sync_run)
    assert located == {r["id"]: r for r in (edited[0], edited[2])}  # new, and updated


def _backup_reads(faulty: ProxyPair, settings: Settings) -> tuple[Settings, list[str | None]]:
    """Settings through the proxy, and the Range header of each GET of a backup."""
    ranges: list[str | None] = []

    def seen(request: Request) -> None:
        ranges.append(request.headers.get("range"))

    rule = Rule("hook", "s3", "GetObject", key_contains="migration-backup", rate=1.0)
    rule.on_request = seen
    _, _, env = faulty([rule])
    return settings_mod.load(env=env, workers=settings.workers), ranges


def _synced(store: Store, settings: Settings) -> tuple[list[dict[str, Any]], str]:
    """20 records migrated, then 2 edited in the source and synced: the sync's run id."""
    records = registrations(20, seed=21)
    put_source(store, settings, records)
    assert migrate(store, settings).ok
    edited = copy.deepcopy(records)
    edited[4]["paymentStatus"] = "refunded"
    edited[15]["village"] = "Elsewhere"
    put_source(store, settings, edited)
    plan = plan_sync(store, settings, SyncOptions())
    assert apply_sync(store, settings, plan).ok
    return records, plan.stamp.run_id


def test_a_rollback_of_a_sync_fetches_only_the_records_it_puts_back(
    seeded: Store, settings: Settings, faulty: ProxyPair
) -> None:
    store = seeded
    records, run_id = _synced(store, settings)
    before = {r["id"]: r for r in records}
    traced, ranges = _backup_reads(faulty, settings)
    watched = Store(traced)

    undo = apply_rollback(watched, plan_rollback(watched, traced, run_id))

    assert {s.target for s in undo.put_back} == {records[4]["id"], records[15]["id"]}
    now = items(store, settings)
    assert now[records[4]["id"]]["paymentStatus"] == before[records[4]["id"]]["paymentStatus"]
    assert ranges and all(r is not None and r.startswith("bytes=") for r in ranges), ranges
    migration = _runs(store, settings)[0]
    lengths = {str(line.id): line.at[1] for line in migration.records if line.at}
    asked = sum(int(b) - int(a) + 1 for a, b in (r[6:].split("-") for r in ranges if r))
    # The two records (a third of a record's bytes apart at most: coalesced or not), no more.
    assert asked <= lengths[records[4]["id"]] + lengths[records[15]["id"]] + 2 * 128 * 1024


def test_a_run_whose_lines_locate_nothing_is_read_whole_as_before(
    seeded: Store, settings: Settings, faulty: ProxyPair
) -> None:
    """0.1.0's manifests locate no record: the backup is streamed, and the rollback is the
    same."""
    store = seeded
    records, run_id = _synced(store, settings)
    bucket = settings.require_bucket()
    for run in _runs(store, settings):  # as 0.1.0 wrote them: no `at`
        key = manifest_key(run.run_id)
        body = store.get_bytes(bucket, key)
        assert body is not None
        lines = [json.loads(raw) for raw in body.splitlines() if raw.strip()]
        for line in lines:
            line.pop("at", None)
        old = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        store.put_object(bucket, key, old, "application/x-ndjson")
    traced, ranges = _backup_reads(faulty, settings)
    watched = Store(traced)

    undo = apply_rollback(watched, plan_rollback(watched, traced, run_id))

    assert {s.target for s in undo.put_back} == {records[4]["id"], records[15]["id"]}
    assert ranges and None in ranges  # a whole GET of the backup
