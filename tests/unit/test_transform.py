"""The pure transform: data URLs, key naming, exact numbers, DynamoDB sizes, round trip."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khpl_migrate.core.dataurls import looks_like_data_url, parse_data_url
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.limits import MAX_ITEM_BYTES, item_size
from khpl_migrate.core.transform import (
    METADATA_FIELDS,
    RunStamp,
    dumps,
    extension,
    restore,
    transform,
)

STAMP = RunStamp(run_id="20251219T103000000Z-abc123", migration_date="2025-12-19T10:30:00.000Z")
PNG = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 20 + b"png-body"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{b64(data)}"


# -- data URLs ----------------------------------------------------------------


def test_canonical_data_url_decodes_to_its_bytes() -> None:
    parsed = parse_data_url(url("image/jpeg", JPEG))
    assert (parsed.mime, parsed.data, parsed.canonical) == ("image/jpeg", JPEG, True)


def test_upper_case_mime_is_normalised_and_the_header_kept() -> None:
    parsed = parse_data_url(f"DATA:IMAGE/PNG;BASE64,{b64(PNG)}")
    assert parsed.mime == "image/png"
    assert parsed.data == PNG
    assert parsed.header == "DATA:IMAGE/PNG;BASE64,"
    assert not parsed.canonical


def test_line_breaks_in_the_base64_are_ignored() -> None:
    text = b64(JPEG)
    wrapped = "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert parse_data_url(f"data:image/jpeg;base64,{wrapped}\n").data == JPEG


def test_extra_parameters_are_allowed() -> None:
    parsed = parse_data_url(f"data:image/jpeg;name=photo.jpg;charset=binary;base64,{b64(JPEG)}")
    assert parsed.data == JPEG and parsed.mime == "image/jpeg"


def test_missing_padding_is_repaired_without_changing_bytes() -> None:
    data = b"abcd1"  # 5 bytes: base64 needs one '=' of padding
    assert parse_data_url(f"data:image/png;base64,{b64(data).rstrip('=')}").data == data


def test_pdf_gets_the_pdf_extension() -> None:
    parsed = parse_data_url(url("application/pdf", b"%PDF-1.4 body"))
    assert parsed.mime == "application/pdf"
    assert extension(parsed.mime) == "pdf"


def test_percent_encoded_data_url_is_decoded() -> None:
    assert parse_data_url("data:text/plain,hello%20world").data == b"hello world"


@pytest.mark.parametrize(
    "bad",
    [
        "data:image/png;base64,@@@@",  # not base64 at all
        "data:image/png;base64,QUJD$Q==",  # one bad character
        "data:image/png;base64,QUJDR",  # truncated: 4n+1 characters
        "data:image/png;base64,",  # empty
        "data:image/png;base64,ÀÁ==",  # non-ASCII
    ],
)
def test_invalid_data_urls_fail_the_record_with_the_field(bad: str) -> None:
    with pytest.raises(RecordError, match=r"at image"):
        transform({"id": "KHPL_1", "image": bad}, STAMP)


def test_plain_strings_are_not_data_urls() -> None:
    assert not looks_like_data_url("data: the player's data")
    assert not looks_like_data_url("Kundapura")
    assert looks_like_data_url("data:image/png;base64,AAAA")


@pytest.mark.parametrize(
    "remark",
    [
        "data:image/jpeg;base64 was missing here",  # no comma: RFC 2397 needs one
        "data:image/jpeg;base64 was missing here, sorry",  # a comma, but not a header's
        "data:image/jpeg",
        "data:image/jpeg;base64",
        "data: see the attached copy",
        "data:image/jpeg; base64,AAAA",  # a space inside the header
    ],
)
def test_a_remark_that_starts_like_a_data_url_stays_a_plain_field(remark: str) -> None:
    assert not looks_like_data_url(remark)
    done = transform({"id": "KHPL_1", "remarks": remark}, STAMP)
    assert done.images == () and done.item["remarks"] == remark


@pytest.mark.parametrize(
    "header",
    [
        "data:image/png;base64,",
        "DATA:IMAGE/PNG;BASE64,",
        "data:image/png;name=card.png;base64,",
        'data:image/png;name="card one.png";base64,',
        "data:,",  # no media type: text/plain by RFC 2397, kept as octet-stream
    ],
)
def test_the_shapes_rfc_2397_allows_are_data_urls(header: str) -> None:
    assert looks_like_data_url(header + "iVBORw0KGgo=")


# -- naming and keys ------------------------------------------------------------


def test_the_guides_example_record() -> None:
    record = {
        "id": "KHPL_123",
        "name": "John Doe",
        "image": url("image/jpeg", JPEG),
        "aadhaarCopy": url("image/png", PNG),
    }
    result = transform(record, STAMP)
    assert result.item == {
        "id": "KHPL_123",
        "name": "John Doe",
        "imageUploadResults": {
            "userPhoto": {
                "s3Key": "registration-images/KHPL_123/userPhoto.jpeg",
                "mimeType": "image/jpeg",
                "size": len(JPEG),
                "sha256": hashlib.sha256(JPEG).hexdigest(),
                "field": ["image"],
            },
            "aadhaar": {
                "s3Key": "registration-images/KHPL_123/aadhaar.png",
                "mimeType": "image/png",
                "size": len(PNG),
                "sha256": hashlib.sha256(PNG).hexdigest(),
                "field": ["aadhaarCopy"],
            },
        },
        "migratedFrom": "S3",
        "migrationDate": "2025-12-19T10:30:00.000Z",
        "migrationRunId": STAMP.run_id,
    }
    assert [(i.key, i.data) for i in result.images] == [
        ("registration-images/KHPL_123/userPhoto.jpeg", JPEG),
        ("registration-images/KHPL_123/aadhaar.png", PNG),
    ]


def test_other_fields_keep_their_name_and_nested_ones_their_path() -> None:
    record = {
        "id": "K1",
        "paymentScreenshot": url("image/jpeg", JPEG),
        "documents": [{"scan": url("application/pdf", b"%PDF")}, "note"],
        "guardian": {"photo": url("image/png", PNG)},
    }
    result = transform(record, STAMP)
    assert sorted(i.key for i in result.images) == [
        "registration-images/K1/documents.0.scan.pdf",
        "registration-images/K1/guardian.photo.png",
        "registration-images/K1/paymentScreenshot.jpeg",
    ]
    assert result.item["documents"] == [{}, "note"]
    assert result.item["guardian"] == {}
    assert "paymentScreenshot" not in result.item


def test_names_that_collide_get_a_suffix_and_unsafe_characters_are_replaced() -> None:
    record = {
        "id": "K1",
        "image": url("image/png", PNG),
        "userPhoto": url("image/png", PNG),
        "my photo/1": url("image/png", PNG),
    }
    keys = sorted(i.key for i in transform(record, STAMP).images)
    assert keys == [
        "registration-images/K1/my_photo_1.png",
        "registration-images/K1/userPhoto-2.png",
        "registration-images/K1/userPhoto.png",
    ]


def test_data_urls_in_a_list_are_removed_and_restored_in_place() -> None:
    record = {"id": "K1", "gallery": [url("image/png", PNG), "caption", url("image/jpeg", JPEG), 7]}
    result = transform(record, STAMP)
    assert result.item["gallery"] == ["caption", 7]
    assert restore(result.item, {i.key: i.data for i in result.images}) == record


# -- numbers ------------------------------------------------------------------


def test_numbers_stay_exact() -> None:
    big = 123456789012345678901234567890
    result = transform(
        {"id": "K1", "fee": Decimal("499.50"), "big": big, "neg": Decimal("-0.001")}, STAMP
    )
    assert result.item["fee"] == Decimal("499.50") and str(result.item["fee"]) == "499.50"
    assert result.item["big"] == big
    assert result.item["neg"] == Decimal("-0.001")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Decimal("1" * 39), "38"),
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        (Decimal("1E+200"), "range"),
        (Decimal("1E-200"), "range"),
    ],
)
def test_numbers_dynamodb_cannot_hold_fail_the_record(value: Decimal, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        transform({"id": "K1", "n": value}, STAMP)


# -- DynamoDB sizes and rules --------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"id": "abc"}, 2 + 3),
        ({"n": Decimal("123.45")}, 1 + 3 + 1),  # five significant digits -> 3 bytes, +1
        ({"n": Decimal("1000")}, 1 + 1 + 1),  # trailing zeros are trimmed
        ({"m": {"a": "x"}}, 1 + 3 + (1 + 1 + 1)),  # 3 bytes overhead + 1 per element
        ({"l": ["ab", True, None]}, 1 + 3 + (1 + 2) + (1 + 1) + (1 + 1)),
        ({"é": "ü"}, 2 + 2),  # UTF-8 bytes, not characters
        ({"m": {}}, 1 + 3),
    ],
)
def test_item_size_is_computed_as_dynamodb_does(item: dict[str, Any], expected: int) -> None:
    assert item_size(item) == expected


def test_item_over_400_kb_after_extraction_fails_but_images_do_not_count() -> None:
    big_image = url("image/jpeg", b"\xff" * 600_000)
    assert transform({"id": "K1", "image": big_image}, STAMP).item_size < 1000
    with pytest.raises(RecordError, match="409,600"):
        transform({"id": "K1", "notes": "x" * MAX_ITEM_BYTES}, STAMP)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"id": "K1", "": "x"}, "empty attribute name"),
        ({"id": "K1", "m": {"": 1}}, "empty attribute name in m"),
        ({"id": "K1", "imageUploadResults": {}}, "already has the field"),
        ({"id": "K1", "text": "\ud800"}, "lone surrogate"),
    ],
)
def test_values_dynamodb_refuses_fail_the_record(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        transform(record, STAMP)


def test_nesting_deeper_than_32_levels_fails() -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"n": deep}
    with pytest.raises(RecordError, match="32 levels"):
        transform({"id": "K1", "deep": deep}, STAMP)
    shallow: Any = "leaf"
    for _ in range(30):
        shallow = {"n": shallow}
    assert transform({"id": "K1", "deep": shallow}, STAMP).item["deep"] == shallow


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2], "not a registration object"),
        ("text", "not a registration object"),
        (None, "not a registration object"),
        ({"name": "x"}, "no id"),
        ({"id": 42}, "not a string"),
        ({"id": " "}, "empty"),
        ({"id": "a/b"}, "unsafe"),
        ({"id": ".."}, "unsafe"),
        ({"id": "a\nb"}, "unsafe"),
        ({"id": "K" * 201}, "longer than 200 bytes"),
    ],
)
def test_records_without_a_usable_id_fail(record: Any, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        transform(record, STAMP)


def test_dumps_writes_numbers_exactly() -> None:
    assert dumps({"fee": Decimal("499.50"), "n": 10**30, "s": "ಕನ್ನಡ", "b": [True, None]}) == (
        '{"fee":499.50,"n":1000000000000000000000000000000,"s":"ಕನ್ನಡ","b":[true,null]}'
    )


# -- the round trip -------------------------------------------------------------

safe_text = st.text(max_size=20).filter(lambda s: not looks_like_data_url(s))
numbers = st.one_of(
    st.integers(min_value=-(10**37), max_value=10**37),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=3, min_value=-(10**12), max_value=10**12
    ),
)
images = st.tuples(
    st.sampled_from(["image/jpeg", "image/png", "application/pdf", "image/webp"]),
    st.binary(min_size=1, max_size=64),
).map(lambda t: url(*t))
leaves = st.one_of(safe_text, numbers, st.booleans(), st.none(), images)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
records = st.builds(
    lambda rid, fields: {"id": rid, **fields},
    st.from_regex(r"KHPL_[0-9]{3,10}_[a-z0-9]{1,6}", fullmatch=True),
    st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k != "id" and k not in METADATA_FIELDS),
        values,
        max_size=6,
    ),
)


def _no_data_urls(value: Any) -> bool:
    if isinstance(value, str):
        return not looks_like_data_url(value)
    if isinstance(value, dict):
        return all(_no_data_urls(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_data_urls(v) for v in value)
    return True


@settings(max_examples=300, deadline=None)
@given(records)
def test_round_trip_record_to_item_and_images_and_back(record: dict[str, Any]) -> None:
    try:
        result = transform(record, STAMP)
    except RecordError as exc:  # only text Python holds but UTF-8 cannot (lone surrogates)
        assert "surrogate" in str(exc)
        return
    assert _no_data_urls({k: v for k, v in result.item.items() if k != "imageUploadResults"})
    stored = {image.key: image.data for image in result.images}
    assert len(stored) == len(result.images)  # every image has its own key
    assert restore(result.item, stored) == record
