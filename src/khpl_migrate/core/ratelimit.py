"""A cap on writes per second, shared by a run's workers. Pure: the clock is given.

`--max-write-rate R` caps a whole run at R items a second so that a live table
keeps its capacity for the app; a sharded run gives each of its N shards R/N.
The cap is a schedule, not a bucket of tokens: each write of n items takes the
next n/R seconds of the timeline, and waits until its slot comes. A batch of
100 items under a cap of 10 a second therefore waits 10 s before the next one,
which is what the cap means, with no burst allowance to tune.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class WriteRate:
    """Thread-safe: `acquire(n)` blocks until n more items may be written."""

    def __init__(
        self,
        per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("a write rate is a positive number of items a second")
        self.per_second = per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0  # when the timeline is free again
        self.waited = 0.0  # seconds spent waiting, all callers together
        self.items = 0  # items let through

    def acquire(self, items: int = 1) -> None:
        with self._lock:
            self.items += max(0, items)
        if self.per_second is None or items <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + items / self.per_second
            wait = start - now
            self.waited += wait
        if wait > 0:
            self._sleep(wait)

    def share(self, shards: int) -> WriteRate:
        """The cap of one of `shards` processes that together keep to this one."""
        rate = None if self.per_second is None else self.per_second / max(1, shards)
        return WriteRate(rate, clock=self._clock, sleep=self._sleep)


UNLIMITED = WriteRate(None)
