"""Sample registrations shaped like the KHPL app's, with real, decodable images.

Each registration has a JPEG photo (`image`), a PNG Aadhaar copy
(`aadhaarCopy`) and a JPEG payment screenshot (`paymentScreenshot`), inlined as
base64 data URLs the way the browser app stored them. All people are made up:
names from short lists, Aadhaar-like numbers (with a valid check digit) that
belong to nobody.
The same seed gives the same bytes, so tests can compare exactly.
"""

from __future__ import annotations

import io
import random
from decimal import Decimal
from typing import Any

from PIL import Image, ImageDraw

from khpl_migrate.core.dataurls import data_url
from khpl_migrate.core.masking import verhoeff_digit
from khpl_migrate.core.transform import dumps

FIRST = [
    "Arjun",
    "Kiran",
    "Ravi",
    "Suresh",
    "Manjunath",
    "Prakash",
    "Naveen",
    "Rahul",
    "Vinay",
    "Sandeep",
    "Anil",
    "Deepak",
    "Harish",
    "Mahesh",
    "Santosh",
    "Girish",
]
LAST = ["Gowda", "Shetty", "Rao", "Hegde", "Naik", "Patil", "Kumar", "Reddy", "Bhat", "Poojary"]
ROLES = ["Batsman", "Bowler", "All-rounder", "Wicket-keeper"]
VILLAGES = ["Kundapura", "Udupi", "Brahmavar", "Karkala", "Byndoor", "Kota", "Hebri"]


def _jpeg(rng: random.Random, width: int, height: int, detail: int) -> bytes:
    image = Image.new("RGB", (width, height), tuple(rng.randrange(40, 220) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(detail):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(4, max(5, width // 4))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _png_card(rng: random.Random, width: int = 480, height: int = 300) -> bytes:
    image = Image.new("RGB", (width, height), (250, 250, 245))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 40), fill=(255, 153, 51))
    draw.rectangle((0, height - 40, width, height), fill=(19, 136, 8))
    draw.rectangle((20, 60, 140, 200), fill=(180, 180, 180))
    for row in range(6):
        length = rng.randrange(120, 300)
        draw.rectangle((160, 70 + row * 22, 160 + length, 80 + row * 22), fill=(60, 60, 60))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _aadhaar(rng: random.Random) -> str:
    """Twelve digits shaped like an Aadhaar number, with a valid Verhoeff check digit
    as UIDAI's numbers have (so the masking treats them as real ones)."""
    drawn = f"{rng.randrange(2, 10)}{rng.randrange(10**10, 10**11)}"
    return drawn[:11] + verhoeff_digit(drawn[:11])


def registration(rng: random.Random, index: int, *, photo_detail: int = 40) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    epoch = 1701234567 + index * 97
    suffix = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(6))
    photo = _jpeg(rng, 240, 300, photo_detail)
    card = _png_card(rng)
    payment = _jpeg(rng, 200, 360, photo_detail // 2)
    return {
        "id": f"KHPL_{epoch}_{suffix}",
        "name": f"{first} {last}",
        "fatherName": f"{rng.choice(FIRST)} {last}",
        "dateOfBirth": f"{rng.randrange(1980, 2008)}-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}",
        "phone": f"9{rng.randrange(10**8, 10**9)}",
        "email": f"{first.lower()}.{last.lower()}{index}@example.com",
        "village": rng.choice(VILLAGES),
        "playerRole": rng.choice(ROLES),
        "battingStyle": rng.choice(["Right-hand", "Left-hand"]),
        "jerseySize": rng.choice(["S", "M", "L", "XL"]),
        "jerseyNumber": rng.randrange(1, 100),
        "aadhaarNumber": _aadhaar(rng),
        "registrationFee": Decimal("499.50"),
        "paymentStatus": "verified",
        "transactionId": f"UPI{rng.randrange(10**11, 10**12)}",
        "registrationDate": f"2025-11-{rng.randrange(1, 29):02d}T"
        f"10:{rng.randrange(60):02d}:00.000Z",
        "image": data_url("image/jpeg", photo),
        "aadhaarCopy": data_url("image/png", card),
        "paymentScreenshot": data_url("image/jpeg", payment),
    }


def registrations(count: int, seed: int = 2025) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [registration(rng, i) for i in range(count)]


def source_bytes(records: list[Any]) -> bytes:
    """The JSON array as the app wrote it, numbers exact."""
    return dumps(records).encode("utf-8")
