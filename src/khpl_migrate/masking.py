"""What a masked Aadhaar or phone number looks like, and where masking applies. Pure.

UIDAI asks that Aadhaar numbers be shown masked to their last four digits
(`XXXX XXXX 1234`); phone numbers get the same care (`XXXXXX1234`). Everything
a person sees goes through here: the console and the logs (`mask_pii`, on free
text), the review page (`mask_field`, which knows the field's name), and the
items written with `migrate --mask-aadhaar` (`mask_stored_aadhaar`).

A field whose name says it holds an Aadhaar or phone number is masked by its
name; anywhere else twelve digits (first 2-9, in groups of four or not) are
taken for an Aadhaar number.
"""

from __future__ import annotations

import re
from typing import Any

# Free text: 12 digits, the first 2-9, in groups of four or not, on their own.
_AADHAAR_IN_TEXT = re.compile(r"(?<!\d)([2-9]\d{3})[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
# The whole value of a field: the same shape, nothing around it.
_AADHAAR_VALUE = re.compile(r"[2-9]\d{3}[ -]?\d{4}[ -]?(\d{4})")
# An Indian mobile number: optional +91 or 0, then 10 digits starting 6-9.
_PHONE_IN_TEXT = re.compile(r"(?<![\d+])(?:\+91[ -]?|0)?[6-9]\d{4} ?\d(\d{4})(?![\d])")
_AADHAAR_FIELD = re.compile(r"aadhaar|aadhar|uid", re.IGNORECASE)
_PHONE_WORDS = ("phone", "mobile", "whatsapp", "contact")


def masked_aadhaar(last4: str) -> str:
    """UIDAI's masked Aadhaar: only the last four digits show."""
    return f"XXXX XXXX {last4}"


def masked_phone(last4: str) -> str:
    return f"XXXXXX{last4}"


def is_aadhaar_field(name: str) -> bool:
    """A field whose name says it holds an Aadhaar number: aadhaarNumber, aadhar_no, uid..."""
    return _AADHAAR_FIELD.search(name) is not None


def is_phone_field(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _PHONE_WORDS)


def is_identity_field(name: str) -> bool:
    """An Aadhaar or a phone field: always masked, listed first."""
    return is_aadhaar_field(name) or is_phone_field(name)


def mask_pii(text: str) -> str:
    """Free text: Aadhaar numbers -> XXXX XXXX 1234, phone numbers -> XXXXXX1234."""

    text = _AADHAAR_IN_TEXT.sub(lambda m: masked_aadhaar(m.group(3)), text)
    return _PHONE_IN_TEXT.sub(lambda m: masked_phone(m.group(1)), text)


def mask_value(name: str, text: str) -> str:
    """A field's text as shown: masked by the field's name, and by shape anywhere else."""
    digits = re.sub(r"\D", "", text)
    if is_aadhaar_field(name) and len(digits) >= 4:
        return masked_aadhaar(digits[-4:])
    if is_phone_field(name) and len(digits) >= 4:
        return masked_phone(digits[-4:])
    return mask_pii(text)


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
