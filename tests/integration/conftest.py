"""Integration tests run twice: serial (one worker) and on the default pool.

Correctness must not depend on concurrency: every integration test
sees both, and test_concurrency.py checks that both end in the same state.
"""

from __future__ import annotations

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.settings import Settings


@pytest.fixture(params=[1, settings_mod.Settings().workers], ids=["serial", "pool"])
def settings(request: pytest.FixtureRequest, env: dict[str, str]) -> Settings:
    return settings_mod.load(env=env, workers=request.param)
