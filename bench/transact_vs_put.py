"""Item writes: 16 workers of conditional PutItem vs TransactWriteItems of 100.

    .venv/bin/python bench/transact_vs_put.py [--items 300] [--delay-ms 20]

Both keep every write conditional (attribute_not_exists(id)). Writes N items of
about 1 KB (a migrated registration without its images) through the delay
proxy to DynamoDB Local, on fresh tables, and prints the wall time of each. The
result decides which one `staging.ItemWriter` uses (the faster is kept).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy import DelayProxy

from khpl_migrate.setup import local


def item(i: int) -> dict[str, dict[str, str]]:
    return {"id": {"S": f"KHPL_{i:06d}"}, "name": {"S": "x" * 40}, "notes": {"S": "y" * 900}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--delay-ms", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack, _ = local.start(Path(tmp))
        proxy = DelayProxy(stack.dynamodb.port, args.delay_ms / 1000).start()
        try:
            ddb = boto3.client(
                "dynamodb",
                endpoint_url=proxy.url,
                region_name=local.REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(max_pool_connections=32),
            )
            for table in ("Puts", "Transactions"):
                ddb.create_table(
                    TableName=table,
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            condition = {
                "ConditionExpression": "attribute_not_exists(#id)",
                "ExpressionAttributeNames": {"#id": "id"},
            }

            def put(i: int) -> None:
                ddb.put_item(TableName="Puts", Item=item(i), **condition)  # type: ignore[arg-type]

            began = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(put, range(args.items)))
            puts = time.perf_counter() - began

            def transact(start: int) -> None:
                ddb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": "Transactions", "Item": item(i), **condition}}
                        for i in range(start, min(start + 100, args.items))
                    ]
                )

            began = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(transact, range(0, args.items, 100)))
            transactions = time.perf_counter() - began
            print(f"{args.items} conditional item writes at {args.delay_ms:g} ms per exchange:")
            print(f"   PutItem, 16 workers:              {puts:6.2f} s")
            print(f"   TransactWriteItems of 100 items:  {transactions:6.2f} s")
        finally:
            proxy.stop()
            local.stop(Path(tmp))


if __name__ == "__main__":
    main()
