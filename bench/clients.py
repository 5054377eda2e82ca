"""The local stack for the benchmarks: plain boto3 clients for their own set-up and checks,
and a fresh stack behind the 20 ms-per-exchange proxy (S3's optionally on a shaped link)."""

from __future__ import annotations

import contextlib
import tempfile
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
