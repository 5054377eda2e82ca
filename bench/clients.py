"""Plain boto3 clients of the local stack, for the benchmarks' own set-up and checks."""

from __future__ import annotations

from typing import Any

import boto3

from khpl_migrate import local


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=local.REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
