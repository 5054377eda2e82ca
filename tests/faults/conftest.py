"""Fixtures for the fault suite: a fault proxy in front of each local service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from khpl_migrate.setup import local
from tests.faults.proxy import FaultProxy, ProxyPair, Rule


@pytest.fixture
def faulty(stack: local.Stack, env: dict[str, str]) -> Iterator[ProxyPair]:
    """make(rules_s3, rules_ddb, seed) -> (s3 proxy, dynamodb proxy, env pointing through them)."""
    started: list[FaultProxy] = []

    def make(
        s3_rules: list[Rule] | None = None,
        ddb_rules: list[Rule] | None = None,
        seed: int = 0,
        on_kill: Callable[[], None] | None = None,
    ) -> tuple[FaultProxy, FaultProxy, dict[str, Any]]:
        s3 = FaultProxy(stack.s3.port, s3_rules or [], seed, on_kill).start()
        ddb = FaultProxy(stack.dynamodb.port, ddb_rules or [], seed + 1, on_kill).start()
        started.extend([s3, ddb])
        return s3, ddb, {**env, "AWS_ENDPOINT_URL_S3": s3.url, "AWS_ENDPOINT_URL_DYNAMODB": ddb.url}

    yield make
    for proxy in started:
        proxy.stop()
