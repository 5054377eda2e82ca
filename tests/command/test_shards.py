"""A migration run as shards: real processes against the local stack, real manifests.

Four shard processes, two given their index the AWS Batch way and two the
Kubernetes way, end exactly where one process ends; each record is migrated by
one shard; the snapshot, not the live source, is what they read; one shard
started twice at once converges; the run is seen, checked and undone as one.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core.layout import shard_part_key
from khpl_migrate.core.shards import BATCH_INDEX, K8S_INDEX, shard_of
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.helpers import assert_clean_error, command_env, copies, end_state, put_source, run

pytestmark = pytest.mark.command


def _prepare(env: dict[str, str], shards: int, *extra: str) -> dict[str, Any]:
    """Prepare a sharded run for an engine (nothing runs here): its --json answer."""
    prepare = ["migrate", "--apply", "--shards", str(shards), "--launch", "k8s"]
    done = run([*prepare, "--image", "img:1", "--json", *extra], env)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


SHARD = [sys.executable, "-m", "khpl_migrate", "migrate", "--apply", "--run"]


def _shard(
    env: dict[str, str], run_id: str, index: int | None, **engine: str
) -> subprocess.Popen[str]:
    """One shard process: `--shard I`, or `--shard auto` with the engine's variable."""
    choice = "auto" if index is None else str(index)
    return subprocess.Popen(
        [*SHARD, run_id, "--shard", choice, "--json", "-q"],
        env=command_env({**env, **engine}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    answer: dict[str, Any] = json.loads(out)
    return answer


def _part_ids(store: Store, settings: Settings, run_id: str, index: int) -> list[str]:
    body = store.get_bytes(settings.require_bucket(), shard_part_key(run_id, index))
    assert body is not None, f"no part for shard {index}"
    lines = [json.loads(line) for line in body.decode().splitlines()]
    return [str(line["id"]) for line in lines if line.get("type") == "record"]


def _other(env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Settings, Store]:
    """A second bucket and table on the same stack, for the one-process run."""
    other = {
        **env,
        "REACT_APP_S3_BUCKET_NAME": env["REACT_APP_S3_BUCKET_NAME"] + "-one",
        "REACT_APP_DYNAMODB_TABLE_NAME": env["REACT_APP_DYNAMODB_TABLE_NAME"] + "-one",
        "KHPL_STATE_DIR": str(tmp_path / "state-one"),
    }
    settings = settings_mod.load(env=other, workers=4)
    store = Store(settings)
    store.create_bucket(settings.require_bucket())
    return other, settings, store


def test_four_shards_indexed_by_the_engines_variables_equal_one_process(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    records = copies(sample_records, 4)
    put_source(store, settings, records)
    create_table(store, settings)
    one_env, one_settings, one_store = _other(env, tmp_path)
    put_source(one_store, one_settings, records)
    create_table(one_store, one_settings)
    assert run(["migrate", "--apply"], one_env).returncode == 0

    run_id = _prepare(env, 4)["runId"]
    procs = [
        _shard(env, run_id, None, **{BATCH_INDEX: "0"}),
        _shard(env, run_id, None, **{BATCH_INDEX: "1"}),
        _shard(env, run_id, None, **{K8S_INDEX: "2"}),
        _shard(env, run_id, None, **{K8S_INDEX: "3"}),
    ]
    answers = [_finish(proc) for proc in procs]

    assert [a["shard"] for a in answers] == [0, 1, 2, 3]
    assert end_state(store, settings) == end_state(one_store, one_settings)
    # The parts partition the source: each record in exactly one, the one its id hashes to.
    parts = {index: _part_ids(store, settings, run_id, index) for index in range(4)}
    assert sorted(rid for ids in parts.values() for rid in ids) == sorted(r["id"] for r in records)
    for index, ids in parts.items():
        assert ids and all(shard_of(rid, 4) == index for rid in ids)
    assert sum(a["migrated"] for a in answers) == len(records)
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    [sharded] = [r for r in listed if r["runId"] == run_id]
    assert [s["state"] for s in sharded["shards"]] == ["done"] * 4
    assert sharded["migrated"] == len(records) and sharded["finishedAt"]
    deep = run(["verify", "--deep"], env)
    assert deep.returncode == 0, deep.stderr


def test_local_shards_run_verify_and_roll_back_as_one_run(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, copies(sample_records, 2))
    create_table(store, settings)

    done = run(["migrate", "--apply", "--shards", "3", "--json"], env)

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["migrated"] == 12 and answer["launch"] == {"engine": "local", "exits": [0, 0, 0]}
    assert "Shards done: 3 of 3" in done.stderr
    assert answer["shards"] == [
        {"index": i, "state": "done", "attempts": 1, "why": None} for i in range(3)
    ]
    assert run(["verify", "--deep"], env).returncode == 0
    undone = run(["rollback", "--run", answer["runId"], "--apply", "--json"], env)
    assert undone.returncode == 0, undone.stderr
    assert json.loads(undone.stdout)["left"] == []
    table, images = end_state(store, settings)
    assert table == {} and images == {}


def test_the_same_shard_started_twice_at_once_converges(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    records = copies(sample_records, 3)
    put_source(store, settings, records)
    create_table(store, settings)
    run_id = _prepare(env, 2)["runId"]

    twins = [_shard(env, run_id, 0), _shard(env, run_id, 0), _shard(env, run_id, 1)]
    answers = [_finish(proc) for proc in twins]

    mine = [r["id"] for r in records if shard_of(r["id"], 2) == 0]
    # Each twin accounts for every record of its shard: written by it, or found the run's own.
    assert answers[0]["migrated"] == answers[1]["migrated"] == len(mine)
    table, _ = end_state(store, settings)
    assert sorted(table) == sorted(r["id"] for r in records)
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    [sharded] = [r for r in listed if r["runId"] == run_id]
    assert sharded["shards"][0] == {"index": 0, "state": "done", "attempts": 2, "why": None}
    assert sharded["migrated"] == len(records)  # counted once, not twice
    undone = run(["rollback", "--run", run_id, "--apply", "--json"], env)
    assert json.loads(undone.stdout)["left"] == []
    assert end_state(store, settings) == ({}, {})


def test_shards_read_the_snapshot_not_the_source_rewritten_after_prepare(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    records = copies(sample_records, 2)
    put_source(store, settings, records)
    create_table(store, settings)
    run_id = _prepare(env, 2)["runId"]
    rewritten = copy.deepcopy(records[1:])
    rewritten[0]["paymentStatus"] = "rewritten after prepare"
    rewritten.append({**copy.deepcopy(records[0]), "id": "KHPL_added_after_prepare"})
    put_source(store, settings, rewritten)

    for proc in [_shard(env, run_id, 0), _shard(env, run_id, 1)]:
        _finish(proc)

    table, _ = end_state(store, settings)
    assert sorted(table) == sorted(r["id"] for r in records)
    assert table[records[1]["id"]]["paymentStatus"] == records[1]["paymentStatus"]


def test_the_run_wide_write_cap_is_split_among_the_shards(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records)
    create_table(store, settings)
    run_id = _prepare(env, 4, "--max-write-rate", "400")["runId"]

    answer = _finish(_shard(env, run_id, 2))

    assert answer["maxWriteRate"] == 100.0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--shards", "2", "--launch", "k8s"], "--launch k8s needs --image"),
        (["--shards", "1", "--launch", "batch", "--image", "x"], "2 to 10,000 children"),
        (["--run", "R"], "--run and --shard go together"),
        (["--shards", "2", "--image", "x"], "--image and --parallelism go with --launch"),
        (["--launch", "batch", "--image", "x"], "go with --shards N"),
        (["--run", "R", "--shard", "0", "--shards", "2"], "a shard takes only --run and --shard"),
    ],
)
def test_flags_that_do_not_go_together_are_refused(
    env: dict[str, str], args: list[str], words: str
) -> None:
    done = run(["migrate", "--apply", *args], env)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_shard_of_a_run_that_is_not_there_or_out_of_range_stops_clearly(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records)
    create_table(store, settings)
    assert_clean_error(
        run(["migrate", "--apply", "--run", "20990101T000000000Z-abcdef", "--shard", "0"], env),
        "No run 20990101T000000000Z-abcdef",
    )
    run_id = _prepare(env, 2)["runId"]
    assert_clean_error(
        run(["migrate", "--apply", "--run", run_id, "--shard", "2"], env), "the run has 2 shards"
    )
    both = {**env, BATCH_INDEX: "0", K8S_INDEX: "1"}
    assert_clean_error(
        run(["migrate", "--apply", "--run", run_id, "--shard", "auto"], both),
        "two different indexes",
    )


def test_rollback_waits_for_every_shard_and_a_rolled_back_run_takes_no_shard(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    """A shard that is not done may have written what no manifest names yet: rollback
    refuses until it is; and once a run is rolled back, a late shard (an engine's retry)
    must not write its records again."""
    put_source(store, settings, copies(sample_records, 2))
    create_table(store, settings)
    run_id = _prepare(env, 2)["runId"]
    _finish(_shard(env, run_id, 0))

    refused = run(["rollback", "--run", run_id, "--apply"], env)

    assert_clean_error(refused, "shards that are not done: 1 (missing)", "--shard 1")
    _finish(_shard(env, run_id, 1))
    assert run(["rollback", "--run", run_id, "--apply"], env).returncode == 0
    late = run(["migrate", "--apply", "--run", run_id, "--shard", "0"], env)
    assert_clean_error(late, f"Run {run_id} was rolled back")
    assert end_state(store, settings) == ({}, {})


def test_a_shard_keeps_to_what_its_run_was_prepared_with(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records)
    create_table(store, settings)
    plain = run(["migrate", "--apply", "--json"], env)
    plain_id = json.loads(plain.stdout)["runId"]
    assert_clean_error(
        run(["migrate", "--apply", "--run", plain_id, "--shard", "0"], env),
        f"Run {plain_id} is not a sharded run",
    )
    put_source(store, settings, copies(sample_records, 2))
    run_id = _prepare(env, 2)["runId"]
    assert_clean_error(
        run(["migrate", "--apply", "--run", run_id, "--shard", "0", "--kms-key-id", "k"], env),
        "was prepared with no --kms-key-id (SSE-S3)",
    )
    key = f"migration-runs/{run_id}/manifest.jsonl"
    bucket = settings.require_bucket()
    header = json.loads(store.get_bytes(bucket, key) or b"{}")
    header["toolVersion"] = "0.0.1"
    store.put_object(bucket, key, json.dumps(header).encode(), "application/x-ndjson")
    stopped = run(["migrate", "--apply", "--run", run_id, "--shard", "0"], env)
    assert_clean_error(stopped, "was prepared by khpl-migrate 0.0.1", "run its shards with")
    listed = json.loads(run(["runs", "--json"], env).stdout)["runs"]
    [sharded] = [r for r in listed if r["runId"] == run_id]
    assert sharded["shards"][0]["state"] == "failed"  # not "running" for ever
    assert "prepared by khpl-migrate 0.0.1" in sharded["shards"][0]["why"]
