"""Where each record's bytes lie in the source: the spans of a JSON array's elements. Pure.

ijson parses records but does not say where they are in the file. Two things of
issue 21's one-pass run need exactly that: a baseline fetched by range (a
record's offset and length in the backup, recorded in the manifest: numbers
only) and shards that read only their slice of the source. `Spans` is fed the
bytes as they stream past (any chunking) and gives back each element's
`(start, end)` byte offsets, in order; it knows strings (a `},{"id":` inside a
name is text, not a boundary) and escapes (`\\"` does not close a string, even
when the backslash ends one chunk and the quote starts the next).

It is fast where the bytes are: a regular expression jumps over a string's body
(a base64 image is one string of hundreds of KB) and over the text between two
structural characters, so Python looks at a few dozen positions a record.

A shard starting at an arbitrary byte cannot know whether it is inside a string.
`candidate` finds the first place after an offset that looks like the start of
an element (`,` then `{`); only a scan from a true boundary can prove it is one:
`Spans.starts_at` answers that for the scan that reached it (docs/design.md,
"Sharded runs": the chain of slices).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from khpl_migrate.core.errors import SourceInvalid

# Outside a string: the characters that open, close or separate something.
_STRUCTURE = re.compile(rb'["\[\]{},:]')
_SPACE = b" \t\r\n"
# An element that starts after a comma: what a shard looks for from its nominal offset.
_CANDIDATE = re.compile(rb",[ \t\r\n]*\{")
BOM = b"\xef\xbb\xbf"


@dataclass
class _Level:
    """One open container: an object (its current key) or an array."""

    is_object: bool
    key: str | None = None
    expecting_key: bool = True


@dataclass
class Spans:
    """The byte spans of the elements of one JSON array, from bytes fed in any chunks.

    `path` is the dotted path of the array when the top level is an object
    (`--records-path`), else None: the top level is the array. `offset` is the
    absolute position of the first byte fed; with `inside`, the scan starts just
    inside the array (at an element's start, as a shard's slice does) instead of
    at the start of the file.
    """

    path: str | None = None
    offset: int = 0
    inside: bool = False
    keep: bool = True  # False: `spans` holds only what the last `feed` completed (memory)
    spans: list[tuple[int, int]] = field(default_factory=list)
    closed: bool = False  # the array's `]` was seen
    _levels: list[_Level] = field(default_factory=list)
    _array_depth: int | None = None  # len(_levels) inside the records array
    _in_string: bool = False
    _escape: bool = False  # a backslash ended the last chunk, inside a string
    _key_bytes: bytearray | None = None  # a key being read (outside the records array)
    _element: int | None = None  # where the current element started
    _last: int = 0  # just past the last byte of a value seen in the array
    _pos: int = 0  # absolute position of the next byte to feed
    _begun: bool = False

    def __post_init__(self) -> None:
        self._pos = self.offset
        if self.inside:
            self._levels = [_Level(is_object=False)]
            self._array_depth = 1

    def feed(self, chunk: bytes) -> list[tuple[int, int]]:
        """Scan `chunk` (the bytes after those fed so far); the spans it completed."""
        if not self.keep:
            self.spans = []
        done = len(self.spans)
        if not self._begun:
            self._begun = True
            if self.offset == 0 and not self.inside and chunk.startswith(BOM):
                self._pos += len(BOM)
                chunk = chunk[len(BOM) :]
        base, pos, size = self._pos, 0, len(chunk)
        while pos < size and not self.closed:
            pos = (
                self._string(chunk, pos, base)
                if self._in_string
                else self._between(chunk, pos, base)
            )
        self._pos = base + size
        return self.spans[done:]

    def starts_at(self, position: int) -> bool:
        """Whether an element of the array starts at `position` (as far as scanned, and of
        what is kept)."""
        return any(start == position for start, _ in self.spans) or self._element == position

    @property
    def position(self) -> int:
        return self._pos

    @property
    def in_array(self) -> bool:
        return self._array_depth is not None and len(self._levels) >= self._array_depth

    def end(self) -> None:
        """The input ended: the array must have been closed."""
        if not self.closed:
            raise SourceInvalid(
                "The source ends before its array of records is closed",
                "check that the file is complete (the upload may have been cut off)",
            )

    # -- the two states --------------------------------------------------------------------

    def _string(self, chunk: bytes, pos: int, base: int) -> int:
        if self._escape:  # the escaped byte is the first of this chunk
            self._escape = False
            self._keep_key(chunk, pos, pos + 1)
            return pos + 1
        # Two memchr-speed finds: the next quote, and a backslash before it.
        quote = chunk.find(b'"', pos)
        at = chunk.find(b"\\", pos, len(chunk) if quote < 0 else quote)
        if at >= 0:  # a backslash: the next byte is escaped, wherever it is
            self._keep_key(chunk, pos, at + 1)
            if at + 1 == len(chunk):
                self._escape = True
                return at + 1
            self._keep_key(chunk, at + 1, at + 2)
            return at + 2
        if quote < 0:
            self._keep_key(chunk, pos, len(chunk))
            return len(chunk)
        at = quote
        self._keep_key(chunk, pos, at)
        self._in_string = False
        self._close_value(base + at + 1)
        if self._key_bytes is not None:
            self._levels[-1].key = json.loads(b'"' + bytes(self._key_bytes) + b'"')
            self._key_bytes = None
        return at + 1

    def _between(self, chunk: bytes, pos: int, base: int) -> int:
        found = _STRUCTURE.search(chunk, pos)
        stop = len(chunk) if found is None else found.start()
        text = chunk[pos:stop].strip(_SPACE)
        if text:  # a number, true, false or null (or nonsense the parser will name)
            lead = len(chunk[pos:stop]) - len(chunk[pos:stop].lstrip(_SPACE))
            self._open_value(base + pos + lead)
            self._close_value(base + pos + lead + len(text))
        if found is None:
            return len(chunk)
        self._structure(chunk[stop], base + stop)
        return stop + 1

    def _structure(self, char: int, at: int) -> None:
        if char == 0x22:  # "
            level = self._levels[-1] if self._levels else None
            if level is not None and level.is_object and level.expecting_key and not self.in_array:
                self._key_bytes = bytearray()
            else:
                self._open_value(at)
            self._in_string = True
        elif char in (0x7B, 0x5B):  # { [
            self._open_value(at)
            self._levels.append(_Level(is_object=char == 0x7B))
            if char == 0x5B and self._array_depth is None and self._is_records_array():
                self._array_depth = len(self._levels)
        elif char in (0x7D, 0x5D):  # } ]
            if self._array_depth is not None and len(self._levels) == self._array_depth:
                self._end_element()
                self.closed = True
                return
            if self._levels:
                self._levels.pop()
            self._close_value(at + 1)
        elif char == 0x3A and self._levels:  # :
            self._levels[-1].expecting_key = False
        elif char == 0x2C:  # ,
            if self._array_depth is not None and len(self._levels) == self._array_depth:
                self._end_element()
            elif self._levels and self._levels[-1].is_object:
                self._levels[-1].expecting_key = True

    # -- elements --------------------------------------------------------------------------

    def _is_records_array(self) -> bool:
        if self.path is None:
            return len(self._levels) == 1
        keys = [level.key for level in self._levels[:-1]]
        return (
            all(level.is_object for level in self._levels[:-1])
            and ".".join(str(k) for k in keys) == self.path
        )

    def _open_value(self, at: int) -> None:
        at_array = self._array_depth is not None and len(self._levels) == self._array_depth
        if at_array and self._element is None:
            self._element = at

    def _close_value(self, end: int) -> None:
        if self.in_array:
            self._last = end

    def _end_element(self) -> None:
        if self._element is not None:
            self.spans.append((self._element, self._last))
        self._element = None

    def _keep_key(self, chunk: bytes, start: int, stop: int) -> None:
        # Only a key outside the records array is kept: a record's bytes are never copied.
        if self._key_bytes is not None:
            self._key_bytes += chunk[start:stop]


def candidate(chunk: bytes, offset: int, base: int = 0) -> int | None:
    """The first position at or after `offset` (absolute; `chunk` starts at `base`) where
    an element seems to start: a `{` after a comma. Only a scan from a true boundary can
    say it is one (`Spans.starts_at`): inside a string, `,{` is text."""
    found = _CANDIDATE.search(chunk, max(0, offset - base - 1))
    while found is not None and base + found.end() - 1 < offset:
        found = _CANDIDATE.search(chunk, found.start() + 1)
    return None if found is None else base + found.end() - 1


def nominal_offsets(size: int, slices: int) -> list[int]:
    """Where each of `slices` equal slices of `size` bytes begins, nominally."""
    return [size * i // slices for i in range(slices)]
