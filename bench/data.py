"""Benchmark sources: registrations with about 300 KB of base64 images each.

Each record carries a noisy JPEG photo, a PNG Aadhaar copy and a JPEG payment
screenshot (noise compresses badly, so the sizes are those of real photos). For
the large sources the images come from a pool of distinct triplets, so a 1 GB
file is written in seconds; every record still has its own id and fields.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from khpl_migrate.core.dataurls import data_url
from khpl_migrate.core.transform import dumps
from khpl_migrate.setup.sample import registration


def _noise_jpeg(width: int, height: int, quality: int) -> bytes:
    bands = [Image.effect_noise((width, height), 60) for _ in range(3)]
    out = io.BytesIO()
    Image.merge("RGB", bands).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _noise_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((width, height), 30).convert("RGB").save(out, "PNG")
    return out.getvalue()


def photo() -> str:
    """A noisy JPEG photo's data URL (a triplet's first; alone, a replaced photo)."""
    return data_url("image/jpeg", _noise_jpeg(380, 440, 80))


def image_triplet() -> tuple[str, str, str]:
    """Data URLs of about 300 KB together, as a phone camera's uploads would be."""
    return (
        photo(),
        data_url("image/png", _noise_png(230, 170)),
        data_url("image/jpeg", _noise_jpeg(260, 330, 75)),
    )


def records(count: int, seed: int = 1, pool: int | None = None) -> Iterator[dict[str, Any]]:
    """`count` registrations; with `pool`, images repeat from that many distinct triplets."""
    rng = random.Random(seed)
    triplets = [image_triplet() for _ in range(pool)] if pool else None
    for index in range(count):
        record = registration(rng, index, photo_detail=2)
        record["id"] = f"{record['id']}_{seed}_{index:07d}"
        photo, card, payment = triplets[index % len(triplets)] if triplets else image_triplet()
        record.update(image=photo, aadhaarCopy=card, paymentScreenshot=payment)
        yield record


def write_source(path: Path, count: int, seed: int = 1, pool: int | None = None) -> int:
    """Stream a JSON array of `count` records to `path`; returns its size in bytes."""
    return write_rows(path, records(count, seed, pool))


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Stream the records to `path` as a JSON array (never all of them in memory: the
    benchmark's own size must not leak into the figures of the processes it starts);
    returns its size in bytes."""
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for index, row in enumerate(rows):
            out.write(("," if index else "") + dumps(row))
        out.write("]")
    return path.stat().st_size
