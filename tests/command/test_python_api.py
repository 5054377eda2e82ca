"""docs/python.md's "Use it from Python" block, run as it is against the local stack."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.helpers import command_env, items, put_source

pytestmark = pytest.mark.command
PYTHON_API = Path(__file__).resolve().parents[2] / "docs" / "python.md"


def _example() -> str:
    section = PYTHON_API.read_text().split("# Use it from Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "no python block in docs/python.md's 'Use it from Python'"
    return found.group(1)


def test_the_readmes_python_example_migrates_verifies_and_syncs(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    put_source(store, settings, sample_records)
    create_table(store, settings)

    done = subprocess.run(
        [sys.executable, "-c", _example()],
        env=command_env(env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{len(sample_records)} to migrate, 0 will fail",
        f"{len(sample_records)} migrated; manifest: "
        + done.stdout.split("manifest: ")[1].splitlines()[0],
        "complete",
        "in step",
    ]
    assert "migration-runs/" in done.stdout
    assert set(items(store, settings)) == {r["id"] for r in sample_records}
