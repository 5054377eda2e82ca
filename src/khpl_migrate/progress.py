"""What the library reports while it works: the command line draws it, tests ignore it.

The library never prints; it calls a `Progress`. The command line
passes `RichProgress` (bars on stderr) on a terminal and `NullProgress`
otherwise (no terminal, `--quiet`, `--json`).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from rich.console import Console


class Progress(Protocol):
    """`total` counts records, or bytes of the source when `by_bytes` (the plan
    pass does not know the record count until it has read everything); then
    `advance` says how far the stream is with `position`.
    """

    def start(self, phase: str, total: int | None, *, by_bytes: bool = False) -> None: ...

    def advance(
        self,
        *,
        records: int = 1,
        images: int = 0,
        nbytes: int = 0,
        failed: bool = False,
        position: int | None = None,
    ) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    def start(self, phase: str, total: int | None, *, by_bytes: bool = False) -> None:
        pass

    def advance(
        self,
        *,
        records: int = 1,
        images: int = 0,
        nbytes: int = 0,
        failed: bool = False,
        position: int | None = None,
    ) -> None:
        pass

    def finish(self) -> None:
        pass


class RichProgress:
    """Progress bars on stderr for a terminal: records, images, MB, rate, ETA, failures."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars

        self._progress = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[done]}"),
            TextColumn("{task.fields[images]} images, {task.fields[mb]:.1f} MB"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None
        self._total: int | None = None
        self._by_bytes = False
        self._records = self._images = self._bytes = self._failed = 0
        self._began = 0.0

    def start(self, phase: str, total: int | None, *, by_bytes: bool = False) -> None:
        self._records = self._images = self._bytes = self._failed = 0
        self._total, self._by_bytes, self._began = total, by_bytes, time.monotonic()
        self._progress.start()
        self._task = self._progress.add_task(
            phase, total=total, done="", images=0, mb=0.0, rate="", failed=0
        )

    def advance(
        self,
        *,
        records: int = 1,
        images: int = 0,
        nbytes: int = 0,
        failed: bool = False,
        position: int | None = None,
    ) -> None:
        self._records += records
        self._images += images
        self._bytes += nbytes
        self._failed += int(failed)
        elapsed = max(time.monotonic() - self._began, 1e-6)
        if self._by_bytes:
            done = f"{self._records} records"
            completed = position if position is not None else 0
        else:
            done = (
                f"{self._records}/{self._total}" if self._total is not None else str(self._records)
            )
            completed = self._records
        self._progress.update(
            self._task,
            completed=completed,
            done=done,
            images=self._images,
            mb=self._bytes / 1048576,
            rate=f"{self._records / elapsed:.0f} rec/s",
            failed=self._failed,
        )

    def finish(self) -> None:
        self._progress.stop()
