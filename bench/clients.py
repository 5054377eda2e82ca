"""The local stack for the benchmarks: plain boto3 clients for their own set-up and checks,
and a fresh stack behind the 20 ms-per-exchange proxy."""

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
    prefix: str, delay_ms: float
) -> Iterator[tuple[Path, local.Stack, list[DelayProxy]]]:
    """A work folder, a fresh local stack, and a delay proxy in front of each service
    (DynamoDB first, then S3); all stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        stack, _ = local.start(work / "stack")
        proxies = [
            DelayProxy(int(stack.dynamodb.port), delay_ms / 1000).start(),
            DelayProxy(int(stack.s3.port), delay_ms / 1000).start(),
        ]
        try:
            yield work, stack, proxies
        finally:
            for proxy in proxies:
                proxy.stop()
            local.stop(work / "stack")
