"""The rehearsal's estimate, pure: write request units as the tool writes items, the real
run's time over a link, the price of the region (or us-east-1's, said so)."""

from __future__ import annotations

import pytest

from khpl_migrate.aws import TRANSACT_BYTES
from khpl_migrate.core import errors
from khpl_migrate.rehearse.estimate import (
    DEFAULT_LINK,
    WRU_USD_PER_MILLION,
    Link,
    WriteUnits,
    estimate,
    write_units,
)


def test_items_in_one_transaction_cost_two_units_a_started_kilobyte() -> None:
    # 500 B -> 1 KB, 1,500 B -> 2 KB, 1,024 B -> 1 KB: 4 units, doubled in a transaction.
    assert write_units([500, 1500, 1024]) == WriteUnits(8, transactional_items=3, plain_items=0)


def test_a_lone_item_is_a_plain_put_at_one_unit_a_kilobyte() -> None:
    assert write_units([2048]) == WriteUnits(2, transactional_items=0, plain_items=1)
    assert write_units([]) == WriteUnits(0, 0, 0)


def test_batches_of_a_hundred_and_the_one_left_over() -> None:
    # 100 items in one transaction (2 units each), the 101st alone (1 unit).
    assert write_units([100] * 101) == WriteUnits(201, transactional_items=100, plain_items=1)


def test_a_batch_closes_at_the_transaction_byte_cap() -> None:
    # Each item fills a batch on its own: two plain puts.
    big = TRANSACT_BYTES
    units = -(-big // 1024)
    assert write_units([big, big]) == WriteUnits(2 * units, 0, 2)


def test_estimate_of_time_bytes_and_price() -> None:
    link = Link(8, 4)  # 1 MB/s down, 0.5 MB/s up
    sizes = [1000] * 10
    got = estimate(
        source_bytes=1_000_000,
        item_sizes=sizes,
        images=30,
        image_bytes=990_000,
        workers=1,
        link=link,
        region="ap-south-1",
    )
    assert got.download_bytes == 2_000_000  # the plan and the run each read the source
    assert got.upload_bytes == 1_000_000
    assert got.requests == 30 + 1 + 1 + 8
    # 2 s down, 2 s up, 40 requests x 50 ms on one worker.
    assert got.seconds == pytest.approx(2 + 2 + 40 * 0.05)
    assert got.deep_seconds == pytest.approx(1.99 + 30 * 0.05)
    assert got.writes == WriteUnits(20, 10, 0)
    assert (got.price_region, got.price_guessed) == ("ap-south-1", False)
    assert got.dollars == pytest.approx(20 * WRU_USD_PER_MILLION["ap-south-1"] / 1e6)
    assert got.to_json()["writeRequestUnits"] == 20 and got.to_json()["linkGuessed"] is False


@pytest.mark.parametrize("region", [None, "eu-north-1"])
def test_a_region_without_a_price_is_priced_as_us_east_1_and_says_so(region: str | None) -> None:
    got = estimate(
        source_bytes=10,
        item_sizes=[10],
        images=0,
        image_bytes=0,
        workers=16,
        link=DEFAULT_LINK,
        region=region,
    )
    assert (got.price_region, got.price_guessed) == ("us-east-1", True)
    assert got.usd_per_million == WRU_USD_PER_MILLION["us-east-1"]
    assert got.to_json()["linkGuessed"] is True and got.to_json()["priceGuessed"] is True


def test_link_parses_down_slash_up() -> None:
    assert Link.parse("50/20") == Link(50, 20)
    assert Link.parse("0.5/0.25") == Link(0.5, 0.25)
    for bad in ("50", "fast/slow", "0/10", "-5/5", "/"):
        with pytest.raises(errors.ConfigError, match="DOWN/UP"):
            Link.parse(bad)
