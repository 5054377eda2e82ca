"""Concurrency changes the speed, never the result; and the pool stays bounded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.kernel.runner import BoundedRunner, SerialRunner
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.helpers import Timeline, copies, end_state, put_source

pytestmark = pytest.mark.integration
T = TypeVar("T")


def test_serial_and_pooled_runs_end_in_the_same_table_and_objects(
    stack: Any, env: dict[str, str], names: tuple[str, str], sample_records: list[dict[str, Any]]
) -> None:
    records = [
        *sample_records,
        {"id": "KHPL_bad", "image": "data:image/png;base64,!!"},
        {"no": "id"},
    ]
    states = []
    for workers, batch, suffix in ((1, 1, "a"), (16, 100, "b")):
        bucket, table = names[0] + suffix, names[1] + suffix
        settings = settings_mod.load(
            env={**env, "REACT_APP_S3_BUCKET_NAME": bucket, "REACT_APP_DYNAMODB_TABLE_NAME": table},
            workers=workers,
        )
        store = Store(settings)
        store.create_bucket(bucket)
        put_source(store, settings, records)
        create_table(store, settings)
        runner = SerialRunner() if workers == 1 else BoundedRunner(workers)
        result = apply_plan(
            store, settings, build_plan(store, settings), runner=runner, item_batch=batch
        )
        assert (result.migrated, len(result.failed)) == (6, 2)
        states.append(end_state(store, settings))
    assert states[0] == states[1]
    assert len(states[0][0]) == 6 and len(states[0][1]) == 18


class CountingRunner:
    """Wraps a runner and records how many records it holds at once."""

    def __init__(self, inner: BoundedRunner) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def submit(self, task: Callable[[], T], done: Callable[[Future[T]], None]) -> None:
        with self.lock:  # counted from the moment the record is handed over
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

        def finished(future: Future[T]) -> None:
            with self.lock:
                self.in_flight -= 1
            done(future)

        self.inner.submit(task, finished)

    def drain(self) -> None:
        self.inner.drain()


def test_a_run_never_holds_more_records_than_the_bound(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    many = copies(sample_records, 8)  # 48 records
    put_source(store, settings, many)
    create_table(store, settings)
    workers = 2
    runner = CountingRunner(BoundedRunner(workers))
    result = apply_plan(store, settings, build_plan(store, settings), runner=runner)
    assert result.migrated == 48
    # Two per worker in the pool, plus the one the reader is handing over.
    assert runner.peak <= 2 * workers + 1, runner.peak


def test_the_bounded_runner_blocks_at_twice_its_workers() -> None:
    workers, release = 3, threading.Event()
    runner = BoundedRunner(workers)
    lock = threading.Lock()
    state = {"in_flight": 0, "peak": 0, "done": 0}

    def done(_: Future[None]) -> None:
        with lock:
            state["in_flight"] -= 1
            state["done"] += 1

    def feed() -> None:
        for _ in range(40):
            with lock:
                state["in_flight"] += 1
                state["peak"] = max(state["peak"], state["in_flight"])
            runner.submit(release.wait, done)

    feeder = threading.Thread(target=feed)
    feeder.start()
    feeder.join(timeout=1.0)
    assert feeder.is_alive(), "submit did not block: the runner is not bounded"
    assert state["in_flight"] == 2 * workers + 1  # six held, the seventh waiting to get in
    release.set()
    feeder.join(timeout=10)
    runner.drain()
    assert state["done"] == 40 and state["peak"] == 2 * workers + 1


def test_the_write_cap_is_applied_to_every_item_a_run_writes(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    """`--max-write-rate` reaches the item writer: every item written goes through the cap,
    and at 2 items a second six items, one a request, book 3 s of the timeline."""
    put_source(store, settings, sample_records)
    create_table(store, settings)
    clock = Timeline()
    rate = WriteRate(2, clock=clock, sleep=clock.sleep)

    result = apply_plan(
        store, settings, build_plan(store, settings), item_batch=1, rate=rate, runner=SerialRunner()
    )

    assert result.migrated == len(sample_records) == rate.items == 6
    assert clock.now == pytest.approx(2.5)  # the first goes at once, five wait 0.5 s each
