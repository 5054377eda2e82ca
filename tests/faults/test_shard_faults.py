"""A shard killed mid-way (kill -9 through the fault proxy), then re-run alone: it converges,
and the run's manifest names everything the killed attempt wrote, so rollback undoes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.core.shards import K8S_INDEX, shard_of
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.faults.proxy import ProxyPair, Rule
from tests.helpers import command_env, copies, end_state, put_source, run

pytestmark = pytest.mark.faults

SHARD = [sys.executable, "-m", "khpl_migrate", "migrate", "--apply", "--run"]
POINTS = [
    (
        "after an image, before its item",
        "s3",
        Rule("kill", operation="PutObject", key_contains="registration-images/", nth=3, after=True),
    ),
    (
        "after the items, before the part",
        "dynamodb",
        Rule("kill", operation="TransactWriteItems", nth=1, after=True),
    ),
]


@pytest.mark.parametrize(("name", "service", "rule"), POINTS, ids=[p[0] for p in POINTS])
def test_a_killed_shard_re_run_alone_converges(
    name: str,
    service: str,
    rule: Rule,
    faulty: ProxyPair,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    records = copies(sample_records, 3)
    put_source(store, settings, records)
    create_table(store, settings)
    prepared = run(
        ["migrate", "--apply", "--shards", "2", "--launch", "k8s", "--image", "i", "--json"], env
    )
    run_id = json.loads(prepared.stdout)["runId"]
    assert run(["migrate", "--apply", "--run", run_id, "--shard", "1"], env).returncode == 0

    victim: dict[str, subprocess.Popen[bytes]] = {}
    _, _, through = faulty(
        [rule] if service == "s3" else [],
        [rule] if service == "dynamodb" else [],
        on_kill=lambda: os.kill(victim["proc"].pid, signal.SIGKILL),
    )
    victim["proc"] = subprocess.Popen(
        [*SHARD, run_id, "--shard", "auto", "-q"],
        env=command_env({**through, K8S_INDEX: "0"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert victim["proc"].wait(timeout=120) == -signal.SIGKILL, f"not killed at: {name}"
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    [cut] = [r for r in listed if r["runId"] == run_id]
    assert [s["state"] for s in cut["shards"]] == ["running", "done"]  # or cut off: no part
    # What the killed attempt wrote is in no manifest yet: rollback waits for the shard.
    refused = run(["rollback", "--run", run_id, "--apply"], env)
    assert refused.returncode == 2 and "not done: 0 (running)" in refused.stderr

    again = run(["migrate", "--apply", "--run", run_id, "--shard", "0", "--json"], env)

    assert again.returncode == 0, again.stderr
    mine = [r["id"] for r in records if shard_of(r["id"], 2) == 0]
    assert json.loads(again.stdout)["migrated"] == len(mine)  # found its own, recorded them
    table, _ = end_state(store, settings)
    assert sorted(table) == sorted(r["id"] for r in records)
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    [whole] = [r for r in listed if r["runId"] == run_id]
    assert whole["shards"][0] == {"index": 0, "state": "done", "attempts": 2, "why": None}
    deep = run(["verify", "--deep"], env)
    assert deep.returncode == 0, deep.stderr
    undone = run(["rollback", "--run", run_id, "--apply", "--json"], env)
    assert json.loads(undone.stdout)["left"] == []
    assert end_state(store, settings) == ({}, {})  # the killed attempt's writes included
