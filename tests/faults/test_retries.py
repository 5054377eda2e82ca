"""Retries are counted and end in a typed error that carries the last cause."""

from __future__ import annotations

from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.aws.items import BATCH_GET_ROUNDS
from khpl_migrate.aws.stream import ResumingStream
from khpl_migrate.core import errors
from khpl_migrate.migrate.plan import Action, build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.faults.proxy import ProxyPair, Rule
from tests.helpers import copies, items, put_source

pytestmark = pytest.mark.faults


def test_unprocessed_keys_are_read_again_never_dropped(
    faulty: ProxyPair, migrated: list[dict[str, Any]]
) -> None:
    # Each rule fires on the first request it sees: three throttled answers in a row.
    rules = [Rule("unprocessed", operation="BatchGetItem", nth=1) for _ in range(3)]
    _, _, through = faulty(ddb_rules=rules)
    slept: list[float] = []
    faulted = settings_mod.load(env=through)
    plan = build_plan(Store(faulted, sleep=slept.append), faulted)
    assert [rule.fired for rule in rules] == [1, 1, 1]
    assert plan.count(Action.SKIP) == len(migrated) and plan.count(Action.CREATE) == 0
    assert len(slept) == 3 and slept == sorted(slept)  # backing off, longer each time


def test_keys_left_unprocessed_every_time_end_in_a_typed_error(
    faulty: ProxyPair, migrated: list[dict[str, Any]]
) -> None:
    rule = Rule("unprocessed", operation="BatchGetItem", rate=1.0)
    _, _, through = faulty(ddb_rules=[rule])
    slept: list[float] = []
    faulted = settings_mod.load(env=through)
    with pytest.raises(errors.RetriesExhausted) as caught:
        build_plan(Store(faulted, sleep=slept.append), faulted)
    assert rule.fired == BATCH_GET_ROUNDS and len(slept) == BATCH_GET_ROUNDS - 1
    assert f"{len(migrated)} of {len(migrated)} keys" in caught.value.message
    assert "throttled" in caught.value.fix
    assert caught.value.last_cause.startswith("UnprocessedKeys")
    assert max(slept) <= 5.0  # capped backoff


def test_a_stream_that_keeps_dropping_gives_up_with_its_cause(
    faulty: ProxyPair, store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, copies(sample_records, 4))
    create_table(store, settings)
    rule = Rule("reset_response", operation="GetObject", key_contains=".json", rate=1.0)
    _, _, through = faulty([rule])
    faulted = settings_mod.load(env=through, max_attempts=1)
    with pytest.raises(errors.RetriesExhausted) as caught:
        build_plan(Store(faulted), faulted)
    assert rule.fired == ResumingStream.RESUMES + 1  # the first read, then every resume
    assert caught.value.last_cause and caught.value.last_cause in caught.value.message
    assert isinstance(caught.value.__cause__, Exception)
    assert items(store, settings) == {}


def test_an_object_whose_body_is_cut_off_is_read_again(
    faulty: ProxyPair, migrated: list[dict[str, Any]], settings: Settings
) -> None:
    """botocore retries a request, not the reading of its answer: the cut GET is redone
    (the fault that once failed one record of the every-fault migration)."""
    key = f"registration-images/{migrated[0]['id']}/userPhoto.jpeg"
    whole = Store(settings).get_bytes(settings.require_bucket(), key)
    rules = [Rule("reset_response", operation="GetObject", key_contains=key, nth=1)]
    s3, _, through = faulty(rules)
    faulted = settings_mod.load(env=through)
    found = Store(faulted).get_object(settings.require_bucket(), key)
    assert rules[0].fired == 1 and s3.operations["GetObject"] == 2
    assert found is not None and found[0] == whole


def test_an_object_cut_off_every_time_ends_in_a_typed_error(
    faulty: ProxyPair, migrated: list[dict[str, Any]], settings: Settings
) -> None:
    key = f"registration-images/{migrated[0]['id']}/userPhoto.jpeg"
    rule = Rule("reset_response", operation="GetObject", key_contains=key, rate=1.0)
    _, _, through = faulty([rule])
    faulted = settings_mod.load(env=through)
    slept: list[float] = []
    with pytest.raises(errors.RetriesExhausted, match="cut off 6 times"):
        Store(faulted, sleep=slept.append).get_object(settings.require_bucket(), key)
    assert len(slept) == 5 and slept == sorted(slept)  # backing off, longer each time
