"""On a terminal the dry run asks `Proceed? [y/N]`; tested in a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.table import create_table
from tests.helpers import items, put_source

pytestmark = pytest.mark.command


def on_terminal(
    args: list[str], env: dict[str, str], answer: str, prompt: bytes = b"Proceed? [y/N]"
) -> tuple[int, str]:
    """Run the command with stdin/stdout/stderr on a pty; type `answer` at the prompt."""
    leader, follower = pty.openpty()
    full = {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent",
        "TERM": "xterm",
        "COLUMNS": "120",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "khpl_migrate", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=full,
        close_fds=True,
    )
    os.close(follower)
    seen, answered = b"", False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if not answered and prompt in seen:
            os.write(leader, answer.encode() + b"\r")
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(leader)
    return code, seen.decode(errors="replace")


@pytest.mark.usefixtures("seeded")
def test_answering_no_writes_nothing(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    code, screen = on_terminal(["migrate"], env, "n")
    assert "Proceed? [y/N]" in screen
    assert code == 0 and "Nothing was written" in screen
    assert items(store, settings) == {}


@pytest.mark.usefixtures("seeded")
def test_answering_yes_runs_the_migration(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    code, screen = on_terminal(["migrate"], env, "y")
    assert code == 0, screen
    assert "Migrated: 6 (18 images" in screen
    assert len(items(store, settings)) == 6


@pytest.mark.parametrize("answer", ["n", "y"])
def test_archive_source_asks_before_removing_the_original(
    answer: str,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    body = put_source(store, settings, sample_records)
    create_table(store, settings)
    assert on_terminal(["migrate", "--apply"], env, "")[0] == 0
    code, screen = on_terminal(["archive-source", "--remove-original"], env, answer, b"[y/N]")
    assert "DynamoDB-only mode [y/N]" in screen and code == 0, screen
    assert "Archived" in screen
    source = store.get_bytes(settings.bucket or "", settings.source_key)
    assert source == (None if answer == "y" else body)
