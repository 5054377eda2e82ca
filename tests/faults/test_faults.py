"""The migration keeps going through throttling, errors, resets and slowness."""

from __future__ import annotations

from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from khpl_migrate.verify.deep import deep_verify
from tests.faults.proxy import ProxyPair, Rule, fewer_records
from tests.helpers import copies, end_state, put_source

pytestmark = pytest.mark.faults

EVERY_KIND = ["throttle", "internal", "reset_request", "reset_response", "slow"]


def test_a_migration_through_every_kind_of_fault_ends_like_a_clean_one(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    records = copies(sample_records, 4)  # 24
    put_source(store, settings, records)
    create_table(store, settings)
    rules = [Rule(kind, rate=0.08) for kind in EVERY_KIND]  # type: ignore[arg-type]
    s3, ddb, through = faulty(rules, [Rule(k, rate=0.08) for k in EVERY_KIND], seed=3)  # type: ignore[arg-type]
    faulted = settings_mod.load(env=through, max_attempts=12, workers=4)

    result = apply_plan(Store(faulted), faulted, build_plan(Store(faulted), faulted))

    assert (result.migrated, result.skipped, result.failed) == (24, 0, [])
    for kind in EVERY_KIND:
        assert s3.injected[kind] + ddb.injected[kind] > 0, f"no {kind} was injected"
    # The same end state as a clean run into fresh names.
    clean = settings_mod.load(
        env={
            **env,
            "REACT_APP_S3_BUCKET_NAME": settings.bucket + "-c",
            "REACT_APP_DYNAMODB_TABLE_NAME": settings.table + "-c",
        }
    )
    clean_store = Store(clean)
    clean_store.create_bucket(clean.bucket or "")
    put_source(clean_store, clean, records)
    create_table(clean_store, clean)
    apply_plan(clean_store, clean, build_plan(clean_store, clean))
    assert end_state(store, settings) == end_state(clean_store, clean)
    _, deep = deep_verify(store, settings)
    assert deep.ok, deep.lines()


def test_the_schedule_that_once_failed_a_record_of_the_every_fault_run(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    sample_records: list[dict[str, Any]],
) -> None:
    """An image's PutObject is stored but its answer is cut off; botocore retries and S3
    answers 412 (the key is taken); the tool reads the object to see whether the bytes are
    its own, and that answer is cut off mid-body too. The read is redone: the record is
    migrated, not failed with a StreamingError (a retry survives this fault)."""
    records = copies(sample_records, 1)
    put_source(store, settings, records)
    create_table(store, settings)
    rules = [
        Rule("reset_response", operation="PutObject", key_contains="registration-images/", nth=1),
        Rule("reset_response", operation="GetObject", key_contains="registration-images/", nth=1),
    ]
    _, _, through = faulty(rules)
    faulted = settings_mod.load(env=through, workers=1)

    result = apply_plan(Store(faulted), faulted, build_plan(Store(faulted), faulted))

    assert [rule.fired for rule in rules] == [1, 1]
    assert (result.migrated, result.failed) == (len(records), [])


def test_a_short_read_of_the_source_during_a_migration_is_not_a_finished_run(
    faulty: ProxyPair, store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    """The apply pass ends records early (the same length, fewer records): the records
    not read are not migrated, and the run says so; the next run migrates them."""
    put_source(store, settings, sample_records)
    create_table(store, settings)
    rule = Rule("rewrite", operation="GetObject", key=settings.source_key, nth=2)
    rule.body = fewer_records(2)
    _, _, through = faulty(s3_rules=[rule])
    faulted = settings_mod.load(env=through)
    slow = Store(faulted)

    result = apply_plan(slow, faulted, build_plan(slow, faulted))

    assert rule.fired == 1 and not result.ok
    assert result.stopped == f"read 2 records, the plan has {len(sample_records)}"
    assert result.migrated == 2
    again = apply_plan(store, settings, build_plan(store, settings))
    assert again.ok and again.migrated == len(sample_records) - 2
