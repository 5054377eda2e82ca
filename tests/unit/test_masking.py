"""What a person sees of Aadhaar and phone numbers: masked by field name, and by shape."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from khpl_migrate.core.masking import (
    is_aadhaar_field,
    mask_field,
    mask_pii,
    mask_stored_aadhaar,
    mask_value,
    verhoeff_digit,
    verhoeff_valid,
)

# Verhoeff-valid: the last digit is the check digit of the first eleven, as UIDAI's are.
VALID = "234567890124"
INVALID = "234567890123"  # the same number with a wrong check digit
UPI = "UPI402918336457"  # a UPI transaction id: twelve digits, no check digit


def aadhaar_numbers() -> st.SearchStrategy[str]:
    """Twelve digits, the first 2-9, with a valid check digit."""
    return st.from_regex(r"[2-9][0-9]{10}", fullmatch=True).map(lambda d: d + verhoeff_digit(d))


def test_the_verhoeff_check_digit() -> None:
    assert verhoeff_valid(VALID) and not verhoeff_valid(INVALID)
    assert verhoeff_valid("2363") and verhoeff_digit("236") == "3"  # Verhoeff's own example
    assert not verhoeff_valid("") and not verhoeff_valid("12a4")


@given(st.from_regex(r"[0-9]{1,20}", fullmatch=True), st.integers(0, 19), st.integers(1, 9))
def test_the_check_digit_catches_every_single_digit_mistake(
    digits: str, where: int, change: int
) -> None:
    number = digits + verhoeff_digit(digits)
    assert verhoeff_valid(number)
    where %= len(number)
    typo = number[:where] + str((int(number[where]) + change) % 10) + number[where + 1 :]
    assert not verhoeff_valid(typo)


def test_aadhaar_and_phone_fields_are_masked_whatever_their_format() -> None:
    assert mask_value("aadhaarNumber", "2345 6789 0123") == "XXXX XXXX 0123"
    assert mask_value("aadhaar_no", "234567890123") == "XXXX XXXX 0123"
    assert mask_value("phone", "+91 98765 43210") == "XXXXXX3210"
    assert mask_value("guardianMobile", "09876543210") == "XXXXXX3210"
    assert mask_value("notes", "call 9876543210 or 2345-6789-0124") == (
        "call XXXXXX3210 or XXXX XXXX 0124"
    )
    assert mask_value("village", "Kundapura") == "Kundapura"


def test_an_aadhaar_field_is_masked_whatever_its_digits() -> None:
    for field in ("aadhaarNumber", "AADHAAR", "aadhar_no", "uid", "UID", "playerUid", "uid_no"):
        assert is_aadhaar_field(field), field
        assert mask_value(field, VALID) == "XXXX XXXX 0124"
        assert mask_value(field, INVALID) == "XXXX XXXX 0123"  # a wrong check digit
        assert mask_value(field, "2345 6789 012") == "XXXX XXXX 9012"  # a digit short
        assert mask_value(field, "2345 6789 01234") == "XXXX XXXX 1234"  # a digit too many
        assert mask_value(field, "123") == "XXX"  # too few to show any
    assert mask_field("aadhaarNumber", 234567890123) == "XXXX XXXX 0123"  # a JSON number


def test_uid_counts_only_as_a_word_of_the_name() -> None:
    for field in ("guide", "fluid", "uuid", "buildNumber"):
        assert not is_aadhaar_field(field), field


def test_elsewhere_twelve_digits_are_aadhaar_only_with_a_valid_check_digit() -> None:
    assert mask_value("notes", f"id {VALID}") == "id XXXX XXXX 0124"
    assert mask_value("notes", "2345-6789 0124") == "XXXX XXXX 0124"  # mixed separators
    assert mask_value("notes", f"id {INVALID}") == f"id {INVALID}"
    assert mask_value("transactionId", UPI) == UPI
    assert mask_pii(f"paid by {UPI}") == f"paid by {UPI}"
    assert mask_pii(f"Aadhaar {VALID[:4]} {VALID[4:8]} {VALID[8:]}") == "Aadhaar XXXX XXXX 0124"
    assert mask_pii("12345678901234567") == "12345678901234567"  # too long to be one


def test_nested_fields_are_masked_by_their_own_names() -> None:
    shown = mask_field(
        "documents",
        {"aadhaar": INVALID, "uidNumber": 2345, "ref": UPI, "contacts": [{"phone": "9876543210"}]},
    )
    assert shown == {
        "aadhaar": "XXXX XXXX 0123",
        "uidNumber": "XXXX",
        "ref": UPI,
        "contacts": [{"phone": "XXXXXX3210"}],
    }


@given(
    aadhaar=aadhaar_numbers(),
    phone=st.from_regex(r"[6-9][0-9]{9}", fullmatch=True),
    field=st.sampled_from(["aadhaarNumber", "phone", "notes", "emergencyContact", "other"]),
    sep=st.sampled_from(["", " ", "-"]),
)
def test_no_full_number_survives_masking(aadhaar: str, phone: str, field: str, sep: str) -> None:
    spaced = sep.join(aadhaar[i : i + 4] for i in range(0, 12, 4))
    for text in (spaced, phone, f"+91 {phone}", f"{spaced} / {phone}"):
        shown = mask_value(field, text)
        digits = re.sub(r"\D", "", shown)
        assert aadhaar[:8] not in digits and phone[:6] not in digits, (field, text, shown)


@given(
    digits=st.from_regex(r"[0-9]{1,16}", fullmatch=True),
    field=st.sampled_from(["aadhaarNumber", "aadhar", "uid", "UIDAI_no"]),
)
def test_an_aadhaar_field_never_shows_more_than_four_digits(digits: str, field: str) -> None:
    shown = re.sub(r"\D", "", mask_value(field, digits))
    assert len(shown) <= 4 and ((len(digits) <= 4 and shown == "") or shown == digits[-4:])


def test_stored_masking_touches_only_a_whole_aadhaar_number() -> None:
    item = {"aadhaarNumber": f" {INVALID} ", "aadhaarNote": "see the copy", "uid": VALID}
    assert mask_stored_aadhaar(item) == ["aadhaarNumber"]
    assert item == {"aadhaarNumber": "XXXX XXXX 0123", "aadhaarNote": "see the copy", "uid": VALID}
