"""The local stack for the benchmarks: plain boto3 clients for their own set-up and checks,
and a fresh stack behind the 20 ms-per-exchange proxy (S3's optionally on a shaped link)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from proxy import DelayProxy

from khpl_migrate.setup import local


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=local.REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def timed_process(argv: list[str], env: dict[str, str]) -> tuple[float, int, Any, str]:
    """Run `argv` to its end: wall seconds, exit code, the kernel's usage (wait4: CPU and
    peak RSS, the reaped children's too), and what it wrote on stderr."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    err = proc.stderr.read().decode() if proc.stderr else ""
    return wall, os.waitstatus_to_exitcode(status), usage, err


def fresh(s3: Any, ddb: Any, bucket: str, table: str, source: Path) -> tuple[str, str]:
    """A fresh bucket holding `source` as registrations.json, and a fresh table."""
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local.REGION})
    s3.upload_file(str(source), bucket, "registrations.json")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return bucket, table


@contextlib.contextmanager
def proxied_stack(
    prefix: str,
    delay_ms: float,
    *,
    s3_down_bps: float | None = None,
    s3_up_bps: float | None = None,
) -> Iterator[tuple[Path, local.Stack, list[DelayProxy]]]:
    """A work folder, a fresh local stack, and a delay proxy in front of each service
    (DynamoDB first, then S3, whose link may be shaped: bits per second each way); all
    stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        stack, _ = local.start(work / "stack")
        proxies = [
            DelayProxy(int(stack.dynamodb.port), delay_ms / 1000).start(),
            DelayProxy(
                int(stack.s3.port), delay_ms / 1000, down_bps=s3_down_bps, up_bps=s3_up_bps
            ).start(),
        ]
        try:
            yield work, stack, proxies
        finally:
            for proxy in proxies:
                proxy.stop()
            local.stop(work / "stack")
