"""The three-way judgement, row by row of the table, and as properties over any values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khpl_migrate.core.threeway import CONFLICTS, RecordState, Side, judge, side
from khpl_migrate.core.units import Unit, digest

A, B, C = digest("a"), digest("b"), digest("c")
F: Unit = ("field", "paymentStatus")
G: Unit = ("field", "village")
P: Unit = ("image", "userPhoto")


@pytest.mark.parametrize(
    ("base", "source", "item", "expected"),
    [
        (A, A, A, Side.SAME),  # same, same
        (A, B, A, Side.SOURCE),  # changed in the source: carry it over
        (A, A, B, Side.TABLE),  # changed in DynamoDB: keep the app's edit
        (A, B, B, Side.AGREED),  # both, the same way: a false conflict
        (A, B, C, Side.CONFLICT),  # both, differently
        (None, A, None, Side.SOURCE),  # a field the source added
        (A, None, A, Side.SOURCE),  # a field the source removed
        (None, None, A, Side.TABLE),  # a field the app added
        (A, A, None, Side.TABLE),  # a field the app removed
        (A, None, B, Side.CONFLICT),  # removed in the source, edited in DynamoDB
    ],
)
def test_each_row_of_the_table(
    base: bytes | None, source: bytes | None, item: bytes | None, expected: Side
) -> None:
    assert side(base, source, item, known=True) is expected


def test_a_unit_without_a_baseline_is_the_same_or_a_conflict() -> None:
    assert side(None, A, A, known=False) is Side.SAME
    assert side(None, A, B, known=False) is Side.NO_BASELINE
    assert Side.NO_BASELINE in CONFLICTS


def test_digests_compare_numbers_as_numbers_and_keep_types_apart() -> None:
    assert digest(Decimal("499.50")) == digest(Decimal("499.5")) == digest(Decimal("4.995E+2"))
    assert digest(0) == digest(Decimal("0.00")) == digest(Decimal("-0"))
    assert digest({"a": 1, "b": [True]}) == digest({"b": [True], "a": Decimal("1.0")})
    assert len({digest(v) for v in ("1", 1, True, None, [1], {"1": 1}, "", [])}) == 8


def test_the_apps_sets_and_binary_values_have_digests() -> None:
    """The app may write DynamoDB sets and binary attributes; one such item must not stop
    a sync (boto3 gives them back as Python sets and `Binary`)."""
    from boto3.dynamodb.types import Binary

    assert digest({"b", "a"}) == digest({"a", "b"}) != digest(["a", "b"])
    assert digest({Decimal("1.0"), Decimal(2)}) == digest({Decimal(1), Decimal("2.00")})
    assert digest(Binary(b"\x00\x01")) == digest(b"\x00\x01") != digest("\x00\x01")
    assert digest({Binary(b"x")}) != digest({Binary(b"y")})


def test_records_new_deleted_and_the_apps_own() -> None:
    assert judge({F: A}, None, {}, tool_item=False).kind is RecordState.NEW
    # The app deleted the item: its deletion stands while the source is as the tool
    # last wrote it; an edit made in the source since is a conflict, not lost quietly.
    assert judge({F: A}, None, {F: A}, tool_item=False, written_before=True).kind is (
        RecordState.DELETED_IN_TABLE
    )
    edited = judge({F: B, G: A}, None, {F: A, G: A}, tool_item=False, written_before=True)
    assert edited.kind is RecordState.TABLE_DELETE_CONFLICT and edited.carry == [F]
    assert judge(None, {F: A}, {F: A}, tool_item=True).kind is RecordState.DELETED_IN_SOURCE
    gone = judge(None, {F: B}, {F: A}, tool_item=True)
    assert gone.kind is RecordState.DELETE_CONFLICT and gone.kept == [F]
    assert judge({F: A}, {F: A}, {}, tool_item=False).kind is RecordState.APP_EQUAL
    differs = judge({F: A}, {F: B}, {}, tool_item=False)
    assert differs.kind is RecordState.APP_CONFLICT and differs.conflicts == [F]


def test_a_record_both_sides_edited() -> None:
    verdict = judge(
        {F: B, G: A, P: C},
        {F: A, G: B, P: B},
        {F: A, G: A, P: A},
        tool_item=True,
    )
    assert verdict.kind is RecordState.UPDATE
    assert (verdict.carry, verdict.kept, verdict.conflicts) == ([F], [G], [P])


values = st.sampled_from([A, B, C, None])


@settings(max_examples=500)  # pure and fast: many more than the suite's default
@given(
    units=st.dictionaries(
        st.sampled_from([F, G, P, ("field", "x"), ("image", "y")]),
        st.tuples(values, values, values, st.booleans()),
    ),
    tool_item=st.booleans(),
)
def test_nothing_the_app_wrote_is_overwritten_and_no_source_edit_is_dropped_silently(
    units: dict[Unit, tuple[bytes | None, bytes | None, bytes | None, bool]], tool_item: bool
) -> None:
    source = {u: s for u, (_, s, _, _) in units.items() if s is not None}
    item = {u: d for u, (_, _, d, _) in units.items() if d is not None}
    baseline = {u: b for u, (b, _, _, known) in units.items() if known}
    verdict = judge(source, item, baseline, tool_item=tool_item)
    for unit, (b, s, d, known) in units.items():
        found = verdict.sides.get(unit, Side.SAME)
        if found is Side.SOURCE:
            assert known and d == b, "only a unit still at its baseline is written"
        if s != d:
            # The two sides differ: sync carries the source over, keeps the app's
            # edit, or reports a conflict; it never quietly drops the difference.
            assert found in {Side.SOURCE, Side.TABLE} | CONFLICTS
        if found is Side.TABLE:
            assert known and s == b and d != b, "a kept edit is the app's alone"
        if s == d:
            assert found in (Side.SAME, Side.AGREED)


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from([F, G, P]), st.tuples(values, values)),
)
def test_a_second_judgement_after_carrying_everything_over_is_in_step(
    units: dict[Unit, tuple[bytes | None, bytes | None]],
) -> None:
    """After sync writes the source's units and moves their baseline, nothing is left."""
    source = {u: s for u, (s, _) in units.items() if s is not None}
    base = {u: b for u, (b, _) in units.items()}
    first = judge(source, {u: b for u, b in base.items() if b is not None}, base, tool_item=True)
    assert first.conflicts == [] and first.kept == []
    after_item = dict(source)
    after_base = {u: source.get(u) for u in set(base) | set(source)}
    assert judge(source, after_item, after_base, tool_item=True).kind is RecordState.IN_STEP


def test_an_image_nested_in_a_field_the_app_changed_is_a_conflict() -> None:
    field, photo = ("field", "children"), ("image", "children.1.photo")
    baseline = {field: A, photo: A}
    groups = {photo: "children"}
    # The app removed an element; the source replaced a photo inside: no shifted write.
    verdict = judge(
        {field: A, photo: B}, {field: B, photo: A}, baseline, tool_item=True, groups=groups
    )
    assert verdict.sides == {field: Side.TABLE, photo: Side.CONFLICT}
    assert verdict.kind is RecordState.CONFLICT
    # Ungrouped, the same edits would be carried: the grouping is what keeps it out.
    loose = judge({field: A, photo: B}, {field: B, photo: A}, baseline, tool_item=True)
    assert loose.sides[photo] is Side.SOURCE
    # The source alone changing a nested photo is still carried.
    alone = judge(
        {field: A, photo: B}, {field: A, photo: A}, baseline, tool_item=True, groups=groups
    )
    assert alone.sides == {photo: Side.SOURCE} and alone.kind is RecordState.UPDATE
