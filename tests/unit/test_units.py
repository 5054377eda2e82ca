"""Digests never conflate two values DynamoDB keeps apart, nor part two it holds equal."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary
from hypothesis import given
from hypothesis import strategies as st

from khpl_migrate.core.units import digest, reference_unit


def numbers() -> st.SearchStrategy[Decimal]:
    """What DynamoDB accepts: up to 38 significant digits, magnitude 1e-130 to 1e126."""
    return st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=38),
        st.integers(-128, 88),
    )


def respelled(number: Decimal, zeros: int) -> Decimal:
    """The same number, spelled with `zeros` more trailing zeros (1.1 -> 1.10)."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    return Decimal((sign, (*digits, *([0] * zeros)), exponent - zeros))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    numbers(),
    st.binary(max_size=4).map(Binary),
)
values = st.recursive(
    st.one_of(
        scalars,
        st.frozensets(st.text(max_size=3), min_size=1, max_size=3),
        st.frozensets(numbers(), min_size=1, max_size=3),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


def same(a: Any, b: Any) -> bool:
    """DynamoDB's equality, written plainly: numbers exact, sets unordered, maps by key."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        both = isinstance(a, Decimal) and isinstance(b, Decimal)
        return both and a == b  # Decimal equality is exact, whatever the context
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Binary) or isinstance(b, Binary):
        return isinstance(a, Binary) and isinstance(b, Binary) and a.value == b.value
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(values, values)
def test_two_values_share_a_digest_exactly_when_dynamodb_holds_them_equal(a: Any, b: Any) -> None:
    assert (digest(a) == digest(b)) == same(a, b)


@given(numbers(), st.integers(1, 5))
def test_a_number_respelled_is_the_same_number(number: Decimal, zeros: int) -> None:
    assert digest(respelled(number, zeros)) == digest(number)
    assert digest(number) == digest(Decimal(str(number)))


def test_numbers_differ_to_their_38th_digit() -> None:
    base = "1234567890123456789012345678901234567"
    assert digest(Decimal(base + "8")) != digest(Decimal(base + "9"))
    assert digest(Decimal("1234567890123456789012345678901")) != digest(
        Decimal("1234567890123456789012345678902")
    )
    assert digest(Decimal("1.10")) == digest(Decimal("1.1")) == digest(Decimal("11e-1"))
    assert digest(Decimal("1e0")) == digest(1) == digest(Decimal("1.000"))


REF = {
    "s3Key": "registration-images/KHPL_1/userPhoto.jpeg",
    "mimeType": "image/jpeg",
    "size": 10,
    "sha256": "ab" * 32,
    "field": ["image"],
}


def test_an_image_reference_is_judged_by_every_key() -> None:
    mine = reference_unit("KHPL_1", "userPhoto", REF)
    moved = {**REF, "s3Key": "registration-images/KHPL_1/userPhoto-abababababababab.jpeg"}
    assert reference_unit("KHPL_1", "userPhoto", moved) == mine  # both are the tool's keys
    for changed in (
        {**REF, "s3Key": "registration-images/KHPL_1/app-upload.jpeg"},
        {**REF, "size": 11},
        {**REF, "verifiedBy": "admin-42"},
        {k: v for k, v in REF.items() if k != "size"},
        {**REF, "dataUrlHeader": "data:image/jpeg;name=a.jpg;base64,"},
    ):
        assert reference_unit("KHPL_1", "userPhoto", changed) != mine, changed
    assert reference_unit("KHPL_1", "userPhoto", {**REF, "size": Decimal("10.0")}) == mine
