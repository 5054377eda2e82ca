"""Shared fixtures: the local stack (started and stopped by the tests) and fresh names.

Integration and command tests talk over HTTP to DynamoDB Local and moto's S3
server, started here through the project's own `local.start`, so the tests
exercise the same stack the demo uses. Each test gets its own bucket and table.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup import local, sample
from khpl_migrate.setup.table import create_table
from tests.helpers import migrate, put_source

# The fault properties run a real migration per example: few by default, many with --slow.
hypothesis_settings.register_profile("default", max_examples=6)
hypothesis_settings.register_profile("slow", max_examples=60)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run many more fault-schedule examples")


def pytest_configure(config: pytest.Config) -> None:
    hypothesis_settings.load_profile("slow" if config.getoption("--slow") else "default")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.Stack]:
    state = tmp_path_factory.mktemp("stack")
    started, notes = local.start(state)
    if os.environ.get("CI") and started.dynamodb.kind != "dynamodb-local":
        local.stop(state)
        pytest.fail(f"CI must run against DynamoDB Local: {notes}")
    try:
        yield started
    finally:
        local.stop(state)


@pytest.fixture
def names() -> tuple[str, str]:
    token = uuid.uuid4().hex[:10]
    return f"khpl-test-{token}", f"KHPL-Test-{token}"


@pytest.fixture
def env(stack: local.Stack, names: tuple[str, str], tmp_path: Path) -> dict[str, str]:
    """An environment that points the tool at the stack, one bucket and one table."""
    bucket, table = names
    return {
        **stack.env(),
        "REACT_APP_S3_BUCKET_NAME": bucket,
        "REACT_APP_DYNAMODB_TABLE_NAME": table,
        "KHPL_STATE_DIR": str(tmp_path / "state"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return settings_mod.load(env=env, workers=4)


@pytest.fixture
def store(settings: Settings) -> Store:
    store = Store(settings)
    assert settings.bucket
    store.create_bucket(settings.bucket)
    return store


@pytest.fixture(scope="session")
def sample_records() -> list[dict[str, object]]:
    return sample.registrations(6, seed=11)


@pytest.fixture
def seeded_source(store: Store, settings: Settings, sample_records: list[dict[str, Any]]) -> Store:
    """The sample registrations in the source object; no table yet."""
    put_source(store, settings, sample_records)
    return store


@pytest.fixture
def seeded(seeded_source: Store, settings: Settings) -> Store:
    """The sample registrations in the source and the table created: where most tests start."""
    create_table(seeded_source, settings)
    return seeded_source


@pytest.fixture
def migrated(
    seeded: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The sample registrations in the source, migrated by one clean run."""
    result = migrate(seeded, settings)
    assert result.ok and result.migrated == len(sample_records)
    return sample_records
