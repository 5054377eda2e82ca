"""What the library reports while it works: the command line draws it, tests ignore it.

The library never prints; it calls a `Progress`. The command line draws it
(`cli/bars.py`: bars on a terminal, only the lines that must be said without
one); `NullProgress` says nothing at all (the library's default, and the tests').
"""

from __future__ import annotations

from typing import Protocol


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

    def say(self, text: str) -> None:
        """A line for the person watching, now (above the bars while they are drawn)."""


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

    def say(self, text: str) -> None:
        pass
