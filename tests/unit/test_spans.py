"""core/spans.py: each element's bytes found in any chunking, strings and escapes respected,
and a false boundary (`,{` inside a string) told from a true one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khpl_migrate.core.errors import SourceInvalid
from khpl_migrate.core.spans import BOM, Spans, candidate, nominal_offsets

# Text a hostile source puts in a field: what looks like structure, escapes, non-ASCII.
TRICKY = st.sampled_from(
    ['},{"id":"x"}', "[", "]", "{", "}", ",", '"', "\\", '\\"', ',{"id":', "é", "😀", ":"]
)
TEXT = st.lists(st.one_of(TRICKY, st.text(max_size=8)), max_size=6).map("".join)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), TEXT)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
RECORD = st.fixed_dictionaries({"id": TEXT, "name": TEXT}, optional={"more": VALUE})
ELEMENT = st.one_of(RECORD, RECORD, VALUE)
SPACE = st.sampled_from(["", " ", "\n", "\r\n  ", "\t"])


def _array(elements: list[Any], spaces: list[str], ascii_only: bool) -> tuple[bytes, list]:
    """The array's bytes, and each element's (start, end) as written."""
    out, spans = bytearray(b"[" + spaces[0].encode()), []
    for i, element in enumerate(elements):
        if i:
            out += b"," + spaces[i % len(spaces)].encode()
        text = json.dumps(element, ensure_ascii=ascii_only).encode()
        spans.append((len(out), len(out) + len(text)))
        out += text + spaces[-1].encode()
    return bytes(out + b"]"), spans


def _scan(data: bytes, cuts: list[int], **kwargs: Any) -> Spans:
    scanner = Spans(**kwargs)
    last = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        scanner.feed(data[last:cut] if cut >= last else b"")
        last = max(last, cut)
    return scanner


@settings(max_examples=300)
@given(
    st.lists(ELEMENT, max_size=6),
    st.lists(SPACE, min_size=1, max_size=3),
    st.booleans(),
    st.lists(st.integers(0, 10_000), max_size=12),
)
def test_every_element_is_found_in_any_chunking(elements, spaces, ascii_only, cuts):
    data, expected = _array(elements, spaces, ascii_only)
    scanner = _scan(data, cuts)
    assert scanner.spans == expected
    assert scanner.closed
    assert [json.loads(data[a:b]) for a, b in scanner.spans] == elements


@settings(max_examples=150)
@given(st.lists(ELEMENT, max_size=5), st.lists(st.integers(0, 10_000), max_size=8), VALUE)
def test_the_array_at_a_records_path_is_the_one_scanned(elements, cuts, decoy):
    array, spans = _array(elements, [" "], True)
    # Keys before the path that look like it, an array before it, escapes in a key.
    head = b'{"meta": {"data": [1, 2]}, "d\\u0061ta": {"x": ' + json.dumps(decoy).encode()
    head += b', "regs": '
    data = head + array + b'}, "after": [9]}'
    scanner = _scan(data, cuts, path="data.regs")
    assert scanner.spans == [(a + len(head), b + len(head)) for a, b in spans]


@settings(max_examples=300)
@given(st.lists(RECORD, min_size=2, max_size=6), st.integers(0, 10_000))
def test_a_candidate_boundary_is_proven_or_refuted_by_the_scan_before_it(records, at):
    data, expected = _array(records, [""], True)
    offset = at % len(data)
    found = candidate(data, offset)
    starts = [start for start, _ in expected]
    if found is None:
        assert not [s for s in starts[1:] if s >= offset]
        return
    scanner = Spans()
    scanner.feed(data[:found])
    assert scanner.starts_at(found) is False or found in starts
    whole = _scan(data, [])
    assert whole.starts_at(found) == (found in starts)
    if found in starts:  # a slice begun at a true boundary reads the records after it
        slice_ = Spans(offset=found, inside=True)
        slice_.feed(data[found:])
        assert slice_.spans == [s for s in expected if s[0] >= found]


def test_a_boundary_written_inside_a_name_is_text():
    records = [{"id": "a", "name": 'x},{"id":"b","name":"y'}, {"id": "c", "name": "z"}]
    data, expected = _array(records, [""], True)
    fake = data.index(b',{\\"id\\":\\"b') + 1  # json.dumps escaped its quotes
    assert candidate(data, 1) == fake  # the first thing that looks like a boundary
    assert not _scan(data, []).starts_at(fake)
    assert _scan(data, []).spans == expected


def test_an_escape_cut_between_chunks_does_not_end_the_string():
    data = b'[{"n":"a\\"],{"}, {"n":"b"}]'
    for cut in range(len(data)):
        assert _scan(data, [cut]).spans == [(1, 15), (17, 26)], cut


def test_a_byte_order_mark_is_not_part_of_the_first_record():
    data = BOM + b'[{"id":"a"}]'
    assert _scan(data, [2]).spans == [(4, 14)]


def test_a_source_cut_short_is_named():
    scanner = Spans()
    scanner.feed(b'[{"id":"a"},{"id":')
    with pytest.raises(SourceInvalid, match="ends before"):
        scanner.end()


def test_nominal_offsets_split_evenly():
    assert nominal_offsets(100, 4) == [0, 25, 50, 75]
    assert nominal_offsets(10, 1) == [0]
