"""DynamoDB's and S3's limits, measured their way: item size, numbers, depth, key length.

Every item is checked against these before anything is written (a record that
breaks one fails alone, with the reason), so DynamoDB never refuses an item
mid-run. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from khpl_migrate.core.errors import RecordError

# DynamoDB's hard limits (developer guide, "Service, account and table quotas").
MAX_ITEM_BYTES = 400 * 1024
MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 38
# S3 object keys are at most 1,024 bytes of UTF-8; an id of at most 200 bytes
# always leaves room for registration-images/{id}/{name}.{ext}.
MAX_S3_KEY_BYTES = 1024
MAX_ID_BYTES = 200


def check_number(value: int | float | Decimal, where: str = "value") -> Decimal | int:
    """A JSON number as DynamoDB will hold it exactly, or the reason it cannot."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise RecordError(f"number at {where} is {number}; DynamoDB holds only finite numbers")
    if number.is_zero():
        return value if isinstance(value, int) else number
    digits = significant_digits(number)
    if digits > MAX_NUMBER_DIGITS:
        raise RecordError(
            f"number at {where} has {digits} significant digits; DynamoDB keeps at most 38"
        )
    exponent = number.adjusted()
    if exponent > 125 or exponent < -130:
        raise RecordError(f"number at {where} is outside DynamoDB's range (1E-130 to 1E+126)")
    return value if isinstance(value, int) else number


def item_size(item: Mapping[str, Any]) -> int:
    """The item's size as DynamoDB counts it against the 400 KB limit."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def attribute_sizes(item: Mapping[str, Any]) -> dict[str, int]:
    """Each attribute's size as DynamoDB counts it (name and value)."""
    return {name: len(name.encode("utf-8")) + value_size(v) for name, v in item.items()}


def value_size(value: Any) -> int:
    """DynamoDB's size of one attribute value (developer guide, "Item sizes and formats")."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal | float):
        return _number_size(value)
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(1 + value_size(v) for v in value)
    if isinstance(value, set | frozenset):  # the app's string, number and binary sets
        return sum(value_size(v) for v in value)
    if isinstance(getattr(value, "value", None), bytes):  # boto3's Binary
        return len(value.value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def significant_digits(number: Decimal) -> int:
    """Digits DynamoDB keeps: leading and trailing zeros trimmed (no context rounding)."""
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    return max(len(digits), 1)


def _number_size(value: int | Decimal | float) -> int:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        return 1 + (MAX_NUMBER_DIGITS + 1) // 2
    return (significant_digits(number) + 1) // 2 + 1
