"""The real run's time and DynamoDB write cost, estimated from the rehearsal. Pure.

Time: the longer of the source coming down and the images going up at the
operator's link speed, plus the requests' round trips spread over the workers.
Cost: on-demand write request units (a transaction's items at 2 units a KB, a
lone PutItem at 1) at the region's published per-million price. Both are
estimates, and the report says so with the guesses they rest on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from khpl_migrate.aws import TRANSACT_BYTES, TRANSACT_ITEMS
from khpl_migrate.core import errors

# On-demand write request units, US dollars per million, by region: the AWS Price List
# API (AmazonDynamoDB, usage types USE1-WriteRequestUnits and APS3-WriteRequestUnits),
# the prices after AWS halved on-demand throughput prices on 1 November 2024, as quoted
# in 2025-2026. An estimate: https://aws.amazon.com/dynamodb/pricing/on-demand/ is the
# authority. A region not listed is priced as us-east-1, and the report says so.
WRU_USD_PER_MILLION = {"us-east-1": 0.625, "ap-south-1": 0.71}
PRICE_FALLBACK_REGION = "us-east-1"

# How long one request to AWS takes, there and back: a guess (tens of milliseconds
# from India to ap-south-1), stated in the report with the link speed.
ROUND_TRIP_SECONDS = 0.05
WRU_BYTES = 1024  # one write request unit writes up to 1 KB of item


@dataclass(frozen=True)
class Link:
    """The operator's connection to AWS, in megabits a second."""

    down_mbps: float
    up_mbps: float
    guessed: bool = False  # the default, not the operator's figure

    @classmethod
    def parse(cls, text: str) -> Link:
        """`50/20`: 50 Mbps down, 20 up."""
        down, sep, up = text.partition("/")
        try:
            link = cls(float(down), float(up)) if sep else None
        except ValueError:
            link = None
        if link is None or not (link.down_mbps > 0 and link.up_mbps > 0):
            raise errors.ConfigError(
                f"--link {text!r} is not DOWN/UP in megabits a second",
                "pass the connection's speeds, e.g. --link 50/20 (50 Mbps down, 20 up)",
            )
        return link

    def __str__(self) -> str:
        return f"{self.down_mbps:g}/{self.up_mbps:g} Mbps down/up"


# A broadband line (the figure the issue tracker and the wire benchmark use): a guess, said
# so in the report; --link gives the real one.
DEFAULT_LINK = Link(50, 20, guessed=True)


@dataclass(frozen=True)
class WriteUnits:
    """DynamoDB's on-demand write request units for a run's items, as the tool writes them."""

    units: int
    transactional_items: int  # in TransactWriteItems: 2 units a KB
    plain_items: int  # a batch of one goes as PutItem: 1 unit a KB


def write_units(
    item_sizes: Sequence[int], batch: int = TRANSACT_ITEMS, batch_bytes: int = TRANSACT_BYTES
) -> WriteUnits:
    """The write units of items written as `staging.ItemWriter` writes them: batches of up to
    `batch` items (or `batch_bytes`) in one conditional transaction, where each item costs
    twice its standard write (1 unit a KB, rounded up); a batch of one is a plain PutItem.
    Pure. In a run on many workers the batches form in another order, so the count of
    lone items can differ by a few: the estimate counts them as the serial run would."""
    units = transactional = plain = 0
    pending: list[int] = []
    pending_bytes = 0

    def write() -> None:
        nonlocal units, transactional, plain
        per_kb = 2 if len(pending) > 1 else 1
        units += sum(per_kb * max(1, math.ceil(size / WRU_BYTES)) for size in pending)
        if len(pending) > 1:
            transactional += len(pending)
        else:
            plain += len(pending)
        pending.clear()

    for size in item_sizes:
        pending.append(size)
        pending_bytes += size
        if len(pending) >= batch or pending_bytes >= batch_bytes:
            write()
            pending_bytes = 0
    if pending:
        write()
    return WriteUnits(units, transactional, plain)


@dataclass(frozen=True)
class Estimate:
    """The real run, estimated from what the rehearsal measured; every guess is named."""

    link: Link
    workers: int
    download_bytes: int  # the source, read by the plan and again by the run
    upload_bytes: int  # the images and the items
    requests: int
    seconds: float  # migrate --apply
    deep_seconds: float  # verify --deep afterwards: the source and every image read back
    writes: WriteUnits
    region: str | None
    price_region: str  # whose price was used
    usd_per_million: float

    @property
    def price_guessed(self) -> bool:
        return self.region != self.price_region

    @property
    def dollars(self) -> float:
        return self.writes.units * self.usd_per_million / 1_000_000

    def to_json(self) -> dict[str, Any]:
        return {
            "linkMbps": {"down": self.link.down_mbps, "up": self.link.up_mbps},
            "linkGuessed": self.link.guessed,
            "roundTripSeconds": ROUND_TRIP_SECONDS,
            "workers": self.workers,
            "downloadBytes": self.download_bytes,
            "uploadBytes": self.upload_bytes,
            "requests": self.requests,
            "seconds": round(self.seconds, 1),
            "verifyDeepSeconds": round(self.deep_seconds, 1),
            "writeRequestUnits": self.writes.units,
            "transactionalItems": self.writes.transactional_items,
            "plainItems": self.writes.plain_items,
            "region": self.region,
            "priceRegion": self.price_region,
            "priceGuessed": self.price_guessed,
            "usdPerMillionWriteRequestUnits": self.usd_per_million,
            "usd": round(self.dollars, 6),
        }


def estimate(
    *,
    source_bytes: int,
    item_sizes: Sequence[int],
    images: int,
    image_bytes: int,
    workers: int,
    link: Link,
    region: str | None,
) -> Estimate:
    """The real run's time and write cost. Pure.

    Time: the bytes over the link (the source down twice: the plan reads it, the run
    reads it again, pinned; the images and items up) plus the requests' round trips
    shared by the workers. Cost: `write_units` at the region's on-demand price.
    """
    download = 2 * source_bytes
    upload = image_bytes + sum(item_sizes)
    transactions = math.ceil(len(item_sizes) / TRANSACT_ITEMS)
    # The images, the transactions, the duplicate checks (BatchGetItem of 100), and a
    # handful more: the source read twice, the backup copied and checked, the manifest.
    requests = images + transactions + math.ceil(len(item_sizes) / 100) + 8
    down_bps, up_bps = link.down_mbps * 1e6 / 8, link.up_mbps * 1e6 / 8
    waits = requests * ROUND_TRIP_SECONDS / max(1, workers)
    seconds = download / down_bps + upload / up_bps + waits
    deep = (source_bytes + image_bytes) / down_bps + images * ROUND_TRIP_SECONDS / max(1, workers)
    price_region = region if region in WRU_USD_PER_MILLION else PRICE_FALLBACK_REGION
    return Estimate(
        link=link,
        workers=workers,
        download_bytes=download,
        upload_bytes=upload,
        requests=requests,
        seconds=seconds,
        deep_seconds=deep,
        writes=write_units(item_sizes),
        region=region,
        price_region=price_region,
        usd_per_million=WRU_USD_PER_MILLION[price_region],
    )
