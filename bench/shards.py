"""`make bench`: one migration as 1, 2 and 4 local shard processes, against one process.

1,000 registrations (bench/data.py, ~310 KB of images each) behind the proxy
that adds 20 ms to every exchange. Each contender migrates the same source into
a fresh bucket and table: `migrate --apply` (one process), then `migrate --apply
--shards N` (prepare: plan and snapshot; then N local shard processes, each
streaming the whole snapshot and keeping its own records). Wall time, records/s,
and CPU of the whole process tree (wait4 counts the reaped children too), plus
the per-record CPU and bytes that docs/performance.md's "a 1 TB source in an hour?"
arithmetic starts from. One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clients import client, proxied_stack  # noqa: E402
from data import write_source  # noqa: E402
from proxy import DelayProxy  # noqa: E402

from khpl_migrate.setup import local  # noqa: E402


def _timed(argv: list[str], env: dict[str, str], proxies: list[DelayProxy]) -> dict[str, Any]:
    exchanges = sum(p.exchanges for p in proxies)
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{argv[3:]} failed (exit {code}): {err[-2000:]}")
    return {
        "seconds": round(wall, 2),
        # The shard processes are reaped by the command: their CPU is in its usage.
        "cpuSeconds": round(usage.ru_utime + usage.ru_stime, 2),
        "exchanges": sum(p.exchanges for p in proxies) - exchanges,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--shards", default="1,2,4")
    args = parser.parse_args()
    with proxied_stack("khpl-bench-shards-", args.delay_ms) as (work, stack, proxies):
        shards = [int(n) for n in args.shards.split(",")]
        print(json.dumps(_bench(work, stack, proxies, args.records, shards)))


def _bench(
    work: Path, stack: local.Stack, proxies: list[DelayProxy], count: int, shards: list[int]
) -> Any:
    s3, ddb = client("s3", stack.s3.url), client("dynamodb", stack.dynamodb.url)
    source = work / "registrations.json"
    size = write_source(source, count, seed=7, pool=64)
    tool = [sys.executable, "-m", "khpl_migrate", "migrate", "--apply", "-q"]
    runs: dict[str, Any] = {}
    for name, extra in [("oneProcess", [])] + [
        (f"shards{n}", ["--shards", str(n)]) for n in shards
    ]:
        bucket, table = f"bench-{name.lower()}", f"Bench-{name}"
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local.REGION}
        )
        s3.upload_file(str(source), bucket, "registrations.json")
        env = {
            **os.environ,
            **stack.env(),
            "AWS_ENDPOINT_URL_DYNAMODB": proxies[0].url,
            "AWS_ENDPOINT_URL_S3": proxies[1].url,
            "REACT_APP_S3_BUCKET_NAME": bucket,
            "REACT_APP_DYNAMODB_TABLE_NAME": table,
            "KHPL_STATE_DIR": str(work / "state"),
        }
        subprocess.run(
            [sys.executable, "-m", "khpl_migrate", "create-table", "-q"],
            env=env,
            check=True,
            capture_output=True,
        )
        run = _timed([*tool, *extra], env, proxies)
        pages = ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
        assert sum(page["Count"] for page in pages) == count, f"{name}: not every item"
        run["recordsPerSecond"] = round(count / run["seconds"], 1)
        run["cpuMsPerRecord"] = round(1000 * run["cpuSeconds"] / count, 2)
        runs[name] = run
    return {
        "benchmark": "shards",
        "records": count,
        "sourceMB": round(size / 1048576, 1),
        "bytesPerRecord": round(size / count),
        "delayMs": proxies[0].delay * 1000,
        "cpus": os.cpu_count(),
        "runs": runs,
    }


if __name__ == "__main__":
    main()
