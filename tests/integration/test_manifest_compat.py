"""Manifests written by the released khpl-migrate 0.1.0 still read: runs, history, rollbacks.

`tests/fixtures/manifests-0.1.0/migration-runs/` holds what 0.1.0 left in a bucket
(a migration with a failed record, a sync with intents of every kind it writes, a
rollback of that sync, a sharded run's header, parts and start markers, and a run
cut off and closed by the next one); `expected.json` is what 0.1.0 itself read
from them (`runs --json`'s runs, the records runs wrote, the last run per record).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.kernel.baseline import history
from khpl_migrate.kernel.runs import list_runs, read_rollbacks
from khpl_migrate.settings import Settings

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests-0.1.0"


@pytest.fixture
def old_bucket(store: Store, settings: Settings) -> str:
    bucket = settings.require_bucket()
    for path in sorted((FIXTURES / "migration-runs").rglob("*")):
        if path.is_file():
            key = str(path.relative_to(FIXTURES))
            store.put_object(bucket, key, path.read_bytes(), "application/json")
    return bucket


def test_runs_of_the_released_version_read_as_it_read_them(store: Store, old_bucket: str) -> None:
    expected = json.loads((FIXTURES / "expected.json").read_text())
    runs = list_runs(store, old_bucket)
    assert [run.to_json() for run in runs] == expected["runs"]
    assert {run.run_id: len(run.intents) for run in runs} == expected["intents"]
    past = history(store, old_bucket)
    assert sorted(past.written) == expected["written"]
    assert past.last_wrote == expected["lastWrote"]


def test_a_released_syncs_lines_read_with_todays_codes(store: Store, old_bucket: str) -> None:
    [sync] = [run for run in list_runs(store, old_bucket) if run.kind == "sync"]
    # 0.1.0 wrote a sync's planned counts in words; they read as today's codes.
    assert sync.header.planned["to_update"] == 3 and sync.header.planned["new"] == 1
    assert sync.header.schema == 1 and sync.header.source is not None
    intents = {intent.id: intent for intent in sync.intents}
    moved = [i for i in intents.values() if i.images]
    assert moved and all(m.from_ and m.to for i in moved for m in i.images.values())
    deleted = [i for i in intents.values() if i.delete]
    assert len(deleted) == 1 and deleted[0].item and "migrationRunId" in deleted[0].item
    [rollback] = read_rollbacks(store, old_bucket, sync.run_id)
    assert rollback.state == "partly_rolled_back" and rollback.kept == 3
    assert ("item", next(r.id for r in sync.records if r.item_written)) in rollback.deleted
