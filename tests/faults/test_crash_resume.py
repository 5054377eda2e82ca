"""kill -9 at ten points of a run, then run again: the end state equals a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.faults.proxy import ProxyPair, Rule
from tests.helpers import copies, items, objects, put_source, run

pytestmark = pytest.mark.faults
IMAGES = "registration-images/"

# (name, service, rule): where the tool is killed. "after" kills once the service did the work.
POINTS = [
    (
        "plan: reading the source",
        "s3",
        Rule("kill", operation="GetObject", key_contains=".json", nth=1),
    ),
    ("plan: existence check", "dynamodb", Rule("kill", operation="BatchGetItem", nth=1)),
    ("backup: before the copy", "s3", Rule("kill", operation="CopyObject", nth=1)),
    ("backup: after the copy", "s3", Rule("kill", operation="CopyObject", nth=1, after=True)),
    (
        "apply: reading the source",
        "s3",
        Rule("kill", operation="GetObject", key_contains=".json", nth=2),
    ),
    ("image: first upload", "s3", Rule("kill", operation="PutObject", key_contains=IMAGES, nth=1)),
    (
        "image: a later upload, stored",
        "s3",
        Rule("kill", operation="PutObject", key_contains=IMAGES, nth=8, after=True),
    ),
    ("item: before the write", "dynamodb", Rule("kill", operation="TransactWriteItems", nth=1)),
    (
        "item: after the write",
        "dynamodb",
        Rule("kill", operation="TransactWriteItems", nth=1, after=True),
    ),
    (
        "manifest: its upload",
        "s3",
        Rule("kill", operation="PutObject", key_contains="migration-runs/", nth=1),
    ),
]


def local_manifests(state: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.parent.name: [
            json.loads(line) for line in path.read_text().splitlines() if line.strip()
        ]
        for path in (state / "runs").glob("*/manifest.jsonl")
    }


@pytest.mark.parametrize(("name", "service", "rule"), POINTS, ids=[p[0] for p in POINTS])
def test_a_run_killed_at_any_point_is_finished_by_the_next(
    name: str,
    service: str,
    rule: Rule,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    records = copies(sample_records, 2)  # 12
    put_source(store, settings, records)
    create_table(store, settings)
    victim: dict[str, subprocess.Popen[bytes]] = {}

    def kill() -> None:
        os.kill(victim["proc"].pid, signal.SIGKILL)

    _, _, through = faulty(
        [rule] if service == "s3" else [], [rule] if service == "dynamodb" else [], on_kill=kill
    )
    full = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", **through}
    victim["proc"] = subprocess.Popen(
        [sys.executable, "-m", "khpl_migrate", "migrate", "--apply", "-q"],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert victim["proc"].wait(timeout=120) == -signal.SIGKILL, f"not killed at: {name}"
    assert rule.fired == 1
    state = Path(env["KHPL_STATE_DIR"])
    first = local_manifests(state)

    again = run(["migrate", "--apply"], env)

    assert again.returncode == 0, again.stderr
    table = items(store, settings)
    assert set(table) == {r["id"] for r in records}
    after = local_manifests(state)
    migrated_by = {}
    for run_id, lines in after.items():
        for line in lines:
            if line.get("outcome") == "migrated":
                assert line["id"] not in migrated_by, f"{line['id']} migrated twice"
                migrated_by[line["id"]] = run_id
    assert {item["migrationRunId"] for item in table.values()} <= set(after)
    for run_id in first:  # a run cut off after it began writing: resumed, manifest kept
        assert f"Resumed after run {run_id}" in again.stderr
        assert f"migration-runs/{run_id}/manifest.jsonl" in objects(store, settings)
    deep = run(["verify", "--deep"], env)
    assert deep.returncode == 0, deep.stderr
    assert "Orphan image objects: 0" in deep.stderr


def test_a_source_stream_dropped_mid_response_is_resumed(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    sample_records: list[dict[str, Any]],
) -> None:
    from khpl_migrate import settings as settings_mod
    from khpl_migrate.migrate.plan import build_plan

    body = put_source(store, settings, sample_records)
    create_table(store, settings)
    rule = Rule("reset_response", operation="GetObject", key_contains=".json", nth=1)
    s3, _, through = faulty([rule])
    faulted = settings_mod.load(env=through)
    plan = build_plan(Store(faulted), faulted)
    assert plan.total == len(sample_records) and plan.digest.size == len(body)
    assert rule.fired == 1 and s3.operations["GetObject"] >= 2  # the first cut, then resumed


def test_sigterm_stops_cleanly_and_says_how_to_resume(
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    records = copies(sample_records, 5)  # 30
    put_source(store, settings, records)
    create_table(store, settings)
    slow = Rule("slow", operation="PutObject", key_contains=IMAGES, rate=1.0, delay=0.15)
    s3, _, through = faulty([slow])
    full = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", **through}
    proc = subprocess.Popen(
        [sys.executable, "-m", "khpl_migrate", "migrate", "--apply", "-q", "--workers", "2"],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert s3.wait_for("PutObject", 10), "the run did not get going"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Interrupted:" in stderr and "resumes where this run stopped" in stderr
    assert "Traceback" not in stderr
    manifests = local_manifests(Path(env["KHPL_STATE_DIR"]))
    (lines,) = manifests.values()
    assert lines[-1]["type"] == "summary" and "interrupted" in lines[-1]["stopped"]
    done = [line for line in lines if line.get("outcome") == "migrated"]
    assert 0 < len(done) < 30
    # Every record the manifest calls migrated has its item: in-flight ones finished.
    table = items(store, settings)
    assert {line["id"] for line in done} <= set(table)

    again = run(["migrate", "--apply"], env)
    assert again.returncode == 0, again.stderr
    assert len(items(store, settings)) == 30
    assert run(["verify", "--deep"], env).returncode == 0
