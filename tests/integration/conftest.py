"""Integration tests run twice: serial (one worker) and on the default pool.

Correctness must not depend on concurrency (issue 4): every integration test
sees both, and test_concurrency.py checks that both end in the same state.
"""

from __future__ import annotations

from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.apply import apply_plan
from khpl_migrate.aws import Store
from khpl_migrate.plan import build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.table import create_table
from tests.helpers import put_source


@pytest.fixture(params=[1, settings_mod.Settings().workers], ids=["serial", "pool"])
def settings(request: pytest.FixtureRequest, env: dict[str, str]) -> Settings:
    return settings_mod.load(env=env, workers=request.param)


@pytest.fixture
def migrated(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The sample registrations in the source, migrated by one clean run."""
    put_source(store, settings, sample_records)
    create_table(store, settings)
    result = apply_plan(store, settings, build_plan(store, settings))
    assert result.ok and result.migrated == len(sample_records)
    return sample_records
