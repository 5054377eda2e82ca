"""The bars on a terminal, and the lines without one: the face of `kernel.progress.Progress`.

The command line passes `RichProgress` (bars on stderr) on a terminal and
`LineProgress` otherwise (no terminal, `--quiet`): no bars, only the lines a
person must see at once, such as Ctrl-C's acknowledgement.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from khpl_migrate.kernel.progress import NullProgress


class LineProgress(NullProgress):
    """No bars (stderr is not a terminal, or --quiet): only what `say` says, on stderr."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def say(self, text: str) -> None:
        self._console.print(text, highlight=False, markup=False)


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
        """Draws the first frame at once (a bar with no total pulses until it has one);
        a later phase replaces the earlier one's bar."""
        self._records = self._images = self._bytes = self._failed = 0
        self._total, self._by_bytes, self._began = total, by_bytes, time.monotonic()
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._progress.start()
        done = "0 records" if by_bytes or total is None else f"0/{total}"
        self._task = self._progress.add_task(
            phase, total=total, done=done, images=0, mb=0.0, rate="", failed=0
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
        if self._task is None:
            return  # finished: a late record must not draw the bar again
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
        """Stops the bars for good: nothing redraws after the lines that follow."""
        self._progress.stop()
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def say(self, text: str) -> None:
        self._progress.console.print(text, highlight=False, markup=False)
