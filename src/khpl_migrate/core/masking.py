"""What a masked Aadhaar or phone number looks like, and where masking applies. Pure.

UIDAI asks that Aadhaar numbers be shown masked to their last four digits
(`XXXX XXXX 1234`); phone numbers get the same care (`XXXXXX1234`). Everything
a person sees goes through here: the console and the logs (`mask_pii`, on free
text), the review page (`mask_field`, which knows the field's name), and the
items written with `migrate --mask-aadhaar` (`mask_stored_aadhaar`).

Two rules decide what is an Aadhaar number:
- a field whose name says it holds one (`aadhaarNumber`, `aadhaar_no`, `uid`,
  any case) is masked whatever its digits, a mistyped number included;
- anywhere else, twelve digits (first 2-9, in groups of four or not) are an
  Aadhaar number only when the Verhoeff check digit that UIDAI puts on every
  number holds, so a UPI transaction id or an order number stays readable.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

# Free text: 12 digits, the first 2-9, in groups of four or not, on their own.
_AADHAAR_IN_TEXT = re.compile(r"(?<!\d)([2-9]\d{3})[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
# The whole value of a field: the same shape, nothing around it.
_AADHAAR_VALUE = re.compile(r"[2-9]\d{3}[ -]?\d{4}[ -]?(\d{4})")
# An Indian mobile number: optional +91 or 0, then 10 digits starting 6-9.
_PHONE_IN_TEXT = re.compile(r"(?<![\d+])(?:\+91[ -]?|0)?[6-9]\d{4} ?\d(\d{4})(?![\d])")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_AADHAAR_WORDS = frozenset({"uid", "uidai"})
_PHONE_WORDS = ("phone", "mobile", "whatsapp", "contact")


def masked_aadhaar(last4: str) -> str:
    """UIDAI's masked Aadhaar: only the last four digits show."""
    return f"XXXX XXXX {last4}"


def masked_phone(last4: str) -> str:
    return f"XXXXXX{last4}"


# Verhoeff's dihedral-group tables (multiplication, permutation), as UIDAI uses them.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INVERSE = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def _verhoeff(digits: str, offset: int) -> int:
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _D[check][_P[(position + offset) % 8][int(digit)]]
    return check


def verhoeff_valid(digits: str) -> bool:
    """True when the last digit of `digits` is the Verhoeff check digit of the others."""
    return digits.isdigit() and _verhoeff(digits, 0) == 0


def verhoeff_digit(digits: str) -> str:
    """The check digit to append to `digits`."""
    return str(_INVERSE[_verhoeff(digits, 1)])


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(name)]


def is_aadhaar_field(name: str) -> bool:
    """A field whose name says it holds an Aadhaar number: aadhaarNumber, aadhar_no, uid..."""
    lowered = name.lower()
    if "aadhaar" in lowered or "aadhar" in lowered:
        return True
    return any(word in _AADHAAR_WORDS for word in _words(name))


def is_phone_field(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _PHONE_WORDS)


def is_identity_field(name: str) -> bool:
    """An Aadhaar or a phone field: always masked, listed first."""
    return is_aadhaar_field(name) or is_phone_field(name)


def mask_pii(text: str) -> str:
    """Free text: Aadhaar numbers (check digit holding) -> XXXX XXXX 1234, phones -> XXXXXX1234."""

    def aadhaar(match: re.Match[str]) -> str:
        digits = match.group(1) + match.group(2) + match.group(3)
        return masked_aadhaar(match.group(3)) if verhoeff_valid(digits) else match.group(0)

    text = _AADHAAR_IN_TEXT.sub(aadhaar, text)
    return _PHONE_IN_TEXT.sub(lambda m: masked_phone(m.group(1)), text)


def _hide_digits(digits: str, masked: Any) -> str:
    # Four digits or fewer show nothing: the last four would be all of it.
    return str(masked(digits[-4:])) if len(digits) > 4 else "X" * len(digits)


def mask_value(name: str, text: str) -> str:
    """A field's text as shown: masked by the field's name, and by shape anywhere else."""
    digits = re.sub(r"\D", "", text)
    if is_aadhaar_field(name) and digits:
        return _hide_digits(digits, masked_aadhaar)
    if is_phone_field(name) and len(digits) >= 4:
        return masked_phone(digits[-4:])
    return mask_pii(text)


def mask_field(name: str, value: Any) -> Any:
    """A copy of a field's value with every string or number in it masked by the name of
    the field that holds it (nested fields by their own names)."""
    if isinstance(value, dict):
        return {key: mask_field(str(key), child) for key, child in value.items()}
    if isinstance(value, list):
        return [mask_field(name, child) for child in value]
    if isinstance(value, str):
        return mask_value(name, value)
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and is_identity_field(name):
        return mask_value(name, str(value))
    return value


def mask_stored_aadhaar(item: dict[str, Any]) -> list[str]:
    """`migrate --mask-aadhaar`: mask, in place, every top-level field named like "aadhaar"
    whose whole value is an Aadhaar number; returns the names of the fields it masked.

    Stricter than what is shown (`mask_value`): this changes what is stored, so it
    touches only a value that is plainly one Aadhaar number.
    """
    masked = []
    for name, value in item.items():
        if "aadhaar" in name.lower() and isinstance(value, str):
            match = _AADHAAR_VALUE.fullmatch(value.strip())
            if match:
                item[name] = masked_aadhaar(match.group(1))
                masked.append(name)
    return masked
