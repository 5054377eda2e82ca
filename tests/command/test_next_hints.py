"""Every "💡 Next:" hint names the step that follows its command in `order.ORDER`."""

from __future__ import annotations

import re
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.order import ORDER, next_after
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.helpers import put_source, run

pytestmark = pytest.mark.command


def last_hint(stderr: str) -> str:
    hints = [line for line in stderr.splitlines() if line.startswith("💡")]
    assert hints, stderr
    return hints[-1]


def test_each_command_of_the_order_hints_at_the_next(
    store: Store,
    settings: Settings,
    sample_records: list[dict[str, Any]],
    env: dict[str, str],
) -> None:
    put_source(store, settings, sample_records[:2])
    create_table(store, settings)
    steps = [step.command for step in ORDER]
    walked = []
    for command in ("create-table", "migrate", "migrate --apply", "verify --deep", "sync"):
        proc = run(command.split(), env)
        assert proc.returncode == 0, (command, proc.stderr)
        # The dry run's hint is worded "To migrate:"; the others are "Next:".
        assert last_hint(proc.stderr).split(": ", 1)[1].startswith(next_after(command)), (
            command,
            proc.stderr,
        )
        walked.append(command)
    assert walked == steps[steps.index("create-table") : steps.index("sync") + 1]
    assert "💡 Next: khpl-migrate verify --deep" in run(["migrate", "--apply"], env).stderr


def test_verify_names_create_table_first_then_migrate(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    put_source(store, settings, sample_records[:2])
    assert last_hint(run(["verify"], env).stderr) == "💡 Run: khpl-migrate create-table"
    create_table(store, settings)
    assert last_hint(run(["verify"], env).stderr) == "💡 Run: khpl-migrate migrate"


def test_doctor_that_passes_hints_at_verify(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]], env: dict[str, str]
) -> None:
    put_source(store, settings, sample_records[:1])
    create_table(store, settings)
    proc = run(["doctor"], env)
    assert re.search(r"^0 failing", proc.stderr, re.M), proc.stderr  # the stack passes
    assert last_hint(proc.stderr) == "💡 Next: khpl-migrate verify"
    missing = {**env, "REACT_APP_DYNAMODB_TABLE_NAME": f"{settings.table}-missing"}
    failing = run(["doctor"], missing)  # a doctor that finds a failure names no next step
    assert failing.returncode != 0
    assert not any(line.startswith("💡 Next") for line in failing.stderr.splitlines())
