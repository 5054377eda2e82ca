"""Bounded, swappable concurrency for per-record work.

`BoundedRunner` keeps at most `2 x workers` tasks in flight, so a run holds a
fixed number of records (and their image bytes) in memory whatever the size of
the source; `SerialRunner` runs each task at once and lets tests (and
`--workers 1`) see a deterministic order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from khpl_migrate import errors

T = TypeVar("T")


class Runner(Protocol):
    """Runs record tasks; `submit` blocks when too many are in flight (back-pressure)."""

    def submit(self, task: Callable[[], T], done: Callable[[Future[T]], None]) -> None: ...

    def drain(self) -> None: ...


class SerialRunner:
    """Runs each task at once in the caller's thread: for tests and --workers 1."""

    def submit(self, task: Callable[[], T], done: Callable[[Future[T]], None]) -> None:
        future: Future[T] = Future()
        try:
            future.set_result(task())
        except BaseException as exc:  # handed to `done`, as a pool would
            future.set_exception(exc)
        done(future)

    def drain(self) -> None:
        pass


class BoundedRunner:
    """A thread pool with at most `2 x workers` tasks in flight, so memory stays bounded."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise errors.ConfigError(f"--workers must be at least 1, not {workers}", "use 1-64")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="khpl")
        self._slots = threading.BoundedSemaphore(workers * 2)

    def submit(self, task: Callable[[], T], done: Callable[[Future[T]], None]) -> None:
        self._slots.acquire()
        future = self._pool.submit(task)

        def finished(f: Future[T]) -> None:
            try:
                done(f)
            finally:
                self._slots.release()

        future.add_done_callback(finished)

    def drain(self) -> None:
        self._pool.shutdown(wait=True)


def make_runner(workers: int) -> Runner:
    return SerialRunner() if workers == 1 else BoundedRunner(workers)
