"""`make bench`: sync and rollback after a migration, against the migration itself.

300 registrations (bench/data.py, ~300 KB of images each) are migrated through
the 20 ms-per-exchange proxy; then 10% of them are edited in the source (a
field), 5% by the app in DynamoDB (a field), and 1% on both sides (the same
field, differently: conflicts). `sync --apply` runs through the same proxy, and
then once more with nothing left to write. Each run is its own process: wall
time, client CPU and peak RSS from the kernel, exchanges and bytes from the
proxy. Then the sync is rolled back and the migration after it (`rollback --apply`,
each its own process, through the same proxy). One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ijson  # noqa: E402
from clients import client, proxied_stack, timed_process  # noqa: E402
from data import records as bench_records  # noqa: E402
from data import write_rows  # noqa: E402
from proxy import DelayProxy  # noqa: E402

from khpl_migrate.setup import local  # noqa: E402


def _edited(path: Path, edit: Callable[[int, dict[str, Any]], None]) -> Iterator[dict[str, Any]]:
    with path.open("rb") as source:
        for index, row in enumerate(ijson.items(source, "item", use_float=False)):
            edit(index, row)
            yield row


def _timed(argv: list[str], env: dict[str, str], proxies: list[DelayProxy]) -> dict[str, Any]:
    before = [(p.exchanges, p.bytes_sent, p.bytes_received) for p in proxies]
    wall, code, usage, err = timed_process(argv, env)
    if code not in (0, 1):
        raise SystemExit(f"{argv[3:5]} failed (exit {code}): {err[-2000:]}")
    after = [(p.exchanges, p.bytes_sent, p.bytes_received) for p in proxies]
    delta = [
        tuple(a - b for a, b in zip(x, y, strict=True)) for x, y in zip(after, before, strict=True)
    ]
    return {
        "seconds": round(wall, 2),
        "cpuSeconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peakRssMB": round(usage.ru_maxrss / 1024, 1),
        "exchanges": sum(d[0] for d in delta),
        "bytesSent": sum(d[1] for d in delta),
        "bytesReceived": sum(d[2] for d in delta),
        "exit": code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    with proxied_stack("khpl-bench-sync-", args.delay_ms) as (work, stack, proxies):
        print(json.dumps(_bench(work, stack, proxies, args.records)))


def _bench(work: Path, stack: local.Stack, proxies: list[DelayProxy], count: int) -> Any:
    bucket, table = "bench-sync", "Bench-Sync"
    s3, ddb = client("s3", stack.s3.url), client("dynamodb", stack.dynamodb.url)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local.REGION})
    original, source = work / "original.json", work / "registrations.json"
    write_rows(original, bench_records(count, seed=7))
    s3.upload_file(str(original), bucket, "registrations.json")
    env = {
        **os.environ,
        **stack.env(),
        "AWS_ENDPOINT_URL_DYNAMODB": proxies[0].url,
        "AWS_ENDPOINT_URL_S3": proxies[1].url,
        "REACT_APP_S3_BUCKET_NAME": bucket,
        "REACT_APP_DYNAMODB_TABLE_NAME": table,
        "KHPL_STATE_DIR": str(work / "state"),
    }
    tool = [sys.executable, "-m", "khpl_migrate"]
    subprocess.run([*tool, "create-table", "-q"], env=env, check=True, capture_output=True)
    migrate = _timed([*tool, "migrate", "--apply", "-q"], env, proxies)
    source_only, app_only, both = count // 10, count // 20, count // 100
    app_edits: list[str] = []

    def edit(index: int, row: dict[str, Any]) -> None:
        if index < source_only:
            row["paymentStatus"] = "refunded"  # edited in the source
        elif index < source_only + app_only + both:
            app_edits.append(row["id"])  # edited by the app; the last ones on both sides
            if index >= source_only + app_only:
                row["village"] = "edited in the source"

    write_rows(source, _edited(original, edit))
    for rid in app_edits:
        ddb.update_item(
            TableName=table,
            Key={"id": {"S": rid}},
            UpdateExpression="SET village = :v",
            ExpressionAttributeValues={":v": {"S": "edited by the app"}},
        )
    s3.upload_file(str(source), bucket, "registrations.json")
    sync = _timed([*tool, "sync", "--apply", "-q"], env, proxies)
    again = _timed([*tool, "sync", "--apply", "-q"], env, proxies)
    listed = subprocess.run([*tool, "runs", "--json"], env=env, capture_output=True, text=True)
    if listed.returncode not in (0, 1):
        raise SystemExit(f"runs failed (exit {listed.returncode}): {listed.stderr[-2000:]}")
    runs = {run["kind"]: run["runId"] for run in json.loads(listed.stdout)["runs"]}
    rollback_sync = _timed(
        [*tool, "rollback", "--run", runs["sync"], "--apply", "-q"], env, proxies
    )
    rollback_migrate = _timed(
        [*tool, "rollback", "--run", runs["migrate"], "--apply", "-q"], env, proxies
    )
    return {
        "benchmark": "sync",
        "records": count,
        "sourceMB": round(source.stat().st_size / 1048576, 1),
        "editedInSource": source_only,
        "editedByTheApp": app_only,
        "editedOnBothSides": both,
        "delayMs": proxies[0].delay * 1000,
        "migrate": migrate,
        "sync": sync,
        "syncWithNothingToDo": again,
        "rollbackOfTheSync": rollback_sync,
        "rollbackOfTheMigration": rollback_migrate,
    }


if __name__ == "__main__":
    main()
