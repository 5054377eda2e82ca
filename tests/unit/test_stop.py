"""Ctrl-C during a run on the pool (`runner.Stop`): two steps, and the handler never prints."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

from khpl_migrate.kernel.runner import Flight, Stop


def soon(condition: Callable[[], bool]) -> bool:
    """The signal may reach another of the process's threads first: the main thread's
    handler then runs at its next step, not necessarily before `os.kill` returns."""
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    return condition()


def test_two_signals_set_two_flags_and_say_so_from_another_thread() -> None:
    flight = Flight()
    for _ in range(5):
        flight.hand()
    flight.end()
    said: list[tuple[str, str]] = []
    stop = Stop(flight.count, lambda line: said.append((threading.current_thread().name, line)))
    before = signal.getsignal(signal.SIGINT)
    with stop.handling():
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: a flag
        assert soon(lambda: stop.requested) and not stop.now and not stop.early
        os.kill(os.getpid(), signal.SIGTERM)
        assert soon(lambda: stop.now) and stop.early
        os.kill(os.getpid(), signal.SIGINT)  # a third changes nothing
    assert signal.getsignal(signal.SIGINT) == before
    assert said == [
        ("khpl-stop", "Stopping: finishing the 4 records in flight (Ctrl-C again to stop now)"),
        (
            "khpl-stop",
            "Stopping now: the 4 records in flight stop at their next step; what was written "
            "is recorded",
        ),
    ]


def test_a_stop_after_the_last_record_cuts_nothing_short() -> None:
    stop = Stop(lambda: 0, lambda line: None)
    with stop.handling():
        stop.signal()
    assert stop.requested and not stop.early
    stop.cut = True
    assert stop.early
