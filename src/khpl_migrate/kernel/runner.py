"""Bounded, swappable concurrency for per-record work.

`BoundedRunner` keeps at most `2 x workers` tasks in flight, so a run holds a
fixed number of records (and their image bytes) in memory whatever the size of
the source; `SerialRunner` runs each task at once and lets tests (and
`--workers 1`) see a deterministic order.

`Stop` is how a run on the pool ends on Ctrl-C (or SIGTERM): the first takes no
new record and lets those in flight finish, the second stops them at their next
step; neither cuts a request in half, so what was written is always recorded.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from khpl_migrate.core import errors

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


class Flight:
    """Records handed to the pool and not yet ended: what Ctrl-C's acknowledgement counts."""

    def __init__(self) -> None:
        self.handed = 0
        self.ended = 0
        self.left = 0  # ended without being started: a second Ctrl-C came first
        self._lock = threading.Lock()

    def hand(self) -> None:
        self.handed += 1  # the feeding thread only

    def end(self) -> None:
        with self._lock:  # the pool's threads
            self.ended += 1

    def leave(self) -> None:
        with self._lock:
            self.left += 1

    def count(self) -> int:
        return self.handed - self.ended


class Stop:
    """Ctrl-C (or SIGTERM) during a run on the pool, in two steps.

    The first sets `requested`: the feed takes no new record and the records in
    flight finish. The second sets `now`: a record not started yet is left, one
    under way stops at its next step (a request already sent is answered first),
    and the run still records what it wrote. Nothing raises in the middle of a
    request: the handlers only set flags and queue a line, which a thread of its own
    hands to `say` at once. (A handler that printed could deadlock: it runs in the
    main thread, maybe in the middle of that thread's own print, while the bars'
    thread holds the other lock the print needs.)
    """

    def __init__(
        self, in_flight: Callable[[], int], say: Callable[[str], None], *, writes: bool = True
    ) -> None:
        """`writes`: a run that writes (it records what it wrote), not a check."""
        self._in_flight = in_flight
        self._say = say
        self._then = "what was written is recorded" if writes else "nothing is reported"
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # put: reentrant
        self.requested = False
        self.now = False
        self.cut = False  # the feed stopped before the end of its records

    def signal(self) -> None:
        if not self.requested:
            self.requested = True
            self._lines.put(
                f"Stopping: finishing the {self._in_flight()} records in flight "
                "(Ctrl-C again to stop now)"
            )
        elif not self.now:
            self.now = True
            self._lines.put(
                f"Stopping now: the {self._in_flight()} records in flight stop at their next "
                f"step; {self._then}"
            )

    @property
    def early(self) -> bool:
        """The run did not do all it set out to: a Ctrl-C that came after the last record
        was handed only waited for the records in flight, and the run is whole."""
        return self.cut or self.now

    def _announce(self) -> None:
        while (line := self._lines.get()) is not None:
            self._say(line)

    @contextmanager
    def handling(self) -> Iterator[Stop]:
        """SIGINT and SIGTERM set the flags while the block runs (signals reach only the
        main thread: elsewhere the caller's KeyboardInterrupt, if any, is all there is)."""
        announcer = threading.Thread(target=self._announce, name="khpl-stop", daemon=True)
        announcer.start()
        signals = (signal.SIGINT, signal.SIGTERM)
        before = {}
        if threading.current_thread() is threading.main_thread():
            before = {number: signal.getsignal(number) for number in signals}

            def handler(number: int, frame: Any) -> None:
                self.signal()

            for number in signals:
                signal.signal(number, handler)
        try:
            yield self
        finally:
            for number, previous in before.items():
                signal.signal(number, previous)
            self._lines.put(None)
            announcer.join(timeout=10)  # every line said before the caller's last ones
