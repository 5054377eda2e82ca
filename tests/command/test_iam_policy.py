"""The IAM policy grants exactly what each command calls: nothing missing, nothing unused."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup import policy
from tests.helpers import app_puts_over, put_source, run
from tests.review_server import start_review

pytestmark = pytest.mark.command


def traced(command: list[str], env: dict[str, str], trace: Path) -> list[dict[str, Any]]:
    proc = run(command, {**env, "KHPL_TRACE_OPERATIONS": str(trace)})
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    return [json.loads(line) for line in trace.read_text().splitlines()] if trace.exists() else []


def traced_review(env: dict[str, str], trace: Path, record: dict[str, Any]) -> list[Any]:
    """Everything the review page can do: the checks, a page, a record, its images,
    the rollback dry run, and archiving with --remove-original."""
    server = start_review({**env, "KHPL_TRACE_OPERATIONS": str(trace)})
    try:
        server.log_in()
        page = server.request("GET", "/")
        assert page.status == 200
        run_id = re.findall(r'data-run="([^"]+)"', page.text)[-1]
        rid = record["id"]
        for path in (f"/records/{rid}", f"/img/{rid}/userPhoto?size=thumb"):
            assert server.request("GET", path).status == 200, path
        shown = server.request("POST", f"/runs/{run_id}/rollback", body="confirm=yes")
        assert shown.status == 200
        archived = server.request(
            "POST", "/actions/archive", body="confirm=yes&remove_original=yes"
        )
        assert archived.status == 200 and "was removed" in archived.text, archived.text
    finally:
        assert server.stop() == 0
    return [json.loads(line) for line in trace.read_text().splitlines()]


def traced_shards(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    records: list[dict[str, Any]],
) -> list[Any]:
    """A sharded run, prepared for an engine, then each shard: what a shard's role needs."""
    put_source(store, settings, records)
    trace = tmp_path / "trace-shards.jsonl"
    made = traced(
        ["migrate", "--apply", "--shards", "2", "--launch", "k8s", "--image", "i"], env, trace
    )
    run_id = json.loads(run(["runs", "--json"], env).stdout)["runs"][-1]["runId"]
    for index in range(2):
        command = ["migrate", "--apply", "--run", run_id, "--shard", str(index)]
        made += traced(command, env, tmp_path / f"trace-shard{index}.jsonl")
    return made


def traced_sync(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    tmp_path: Path,
    records: list[dict[str, Any]],
) -> list[Any]:
    """Everything sync can do: carry a field and an image over, migrate a new record,
    delete one the source lost, repair a damaged image."""
    bucket = settings.bucket or ""
    source = [dict(r) for r in records[:3]]
    source[0]["paymentStatus"] = "refunded"
    source[1]["image"] = records[5]["image"]
    put_source(store, settings, [*source[:2], records[3]])  # records[2] deleted, [3] new
    # Other bytes under the tool's run tag, stored without a checksum: sync hashes them
    # (from the version its HEAD saw) to learn they are not the tool's. And a missing
    # object, which --repair-images puts back.
    replaced = f"registration-images/{records[0]['id']}/aadhaar.png"
    app_puts_over(store, bucket, replaced, b"other", "image/png")
    store.s3.delete_object(Bucket=bucket, Key=f"registration-images/{records[1]['id']}/aadhaar.png")
    made = traced(["sync"], env, tmp_path / "trace-sync0.jsonl")
    apply = ["sync", "--apply", "--delete", "--max-delete", "100", "--repair-images"]
    made += traced(apply, env, tmp_path / "trace-sync1.jsonl")
    return made


def traced_restore(
    store: Store, settings: Settings, env: dict[str, str], tmp_path: Path
) -> list[Any]:
    """A truncated source put back from a backup: the dry run, then --apply."""
    bucket = settings.bucket or ""
    backup = json.loads(run(["runs", "--json"], env).stdout)["runs"][-1]["backupKey"]
    put_source(store, settings, raw=b'[{"id": "KHPL_1", "na')
    etag = (store.head_object(bucket, settings.source_key) or pytest.fail("no source")).etag
    made = traced(["restore-source", "--backup", backup], env, tmp_path / "trace-restore0.jsonl")
    apply = ["restore-source", "--backup", backup, "--apply", "--expect-etag", etag.strip('"')]
    return made + traced(apply, env, tmp_path / "trace-restore1.jsonl")


def test_the_policy_matches_the_operations_each_command_makes(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    bucket = settings.bucket or ""
    store.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put_source(store, settings, sample_records[:3])
    # An image key taken by other bytes: migrate has to look at it, and at the item.
    taken = f"registration-images/{sample_records[2]['id']}/aadhaar.png"
    store.put_object(bucket, taken, b"someone else's", "image/png")

    calls: dict[str, list[dict[str, Any]]] = {name: [] for name in policy.COMMANDS}
    script = [
        ("create-table", ["create-table"]),
        ("verify", ["verify"]),
        ("migrate", ["migrate"]),
        ("migrate", ["migrate", "--apply"]),
        ("migrate", ["migrate", "--apply"]),  # a second run looks for cut-off runs
        ("app edit", []),
        ("verify", ["verify", "--deep"]),
        ("runs", ["runs"]),
        ("backups", ["backups"]),
        ("archive-source", ["archive-source"]),
        # A rehearsal reads the source from AWS; its own local stack is not AWS.
        ("rehearse", ["rehearse", f"s3://{bucket}/{settings.source_key}"]),
    ]
    for index, (name, command) in enumerate(script):
        if name == "app edit":  # a record that differs: deep verify reads its baseline
            store.ddb.update_item(
                TableName=settings.table,
                Key={"id": {"S": sample_records[0]["id"]}},
                UpdateExpression="SET village = :v",
                ExpressionAttributeValues={":v": {"S": "edited by the app"}},
            )
            continue
        calls[name] += traced(command, env, tmp_path / f"trace-{index}.jsonl")
    run_id = json.loads(run(["runs", "--json"], env).stdout)["runs"][0]["runId"]
    # The app updates a photo in place, copying the tool's run tag (no checksum stored):
    # rollback hashes its bytes, from the version it saw, to know the photo is the app's.
    photo = f"registration-images/{sample_records[1]['id']}/userPhoto.jpeg"
    original = store.get_bytes(bucket, photo) or b""
    app_puts_over(store, bucket, photo, b"the app's photo", "image/jpeg")
    calls["rollback"] += traced(["rollback", "--run", run_id], env, tmp_path / "trace-rb1.jsonl")
    calls["rollback"] += traced(
        ["rollback", "--run", run_id, "--apply"], env, tmp_path / "trace-rb2.jsonl"
    )
    store.s3.put_object(Bucket=bucket, Key=photo, Body=original, ContentType="image/jpeg")

    # A complete migration again (the taken key freed), so that removing the original
    # is allowed: review's page does it first, then archive-source --remove-original.
    # The rollback kept the item the app edited; the app undoes its edit.
    store.ddb.update_item(
        TableName=settings.table,
        Key={"id": {"S": sample_records[0]["id"]}},
        UpdateExpression="SET village = :v",
        ExpressionAttributeValues={":v": {"S": sample_records[0]["village"]}},
    )
    store.s3.delete_object(Bucket=bucket, Key=taken)
    assert run(["migrate", "--apply"], env).returncode == 0
    for info in store.list_objects(bucket, "archive/"):
        store.s3.delete_object(Bucket=bucket, Key=info.key)
    # The end of the cut-over: the source is frozen when the original is removed.
    freeze, unfreeze = ["freeze-source", "--apply"], ["freeze-source", "--undo", "--apply"]
    assert run(freeze, env).returncode == 0
    calls["review"] += traced_review(env, tmp_path / "trace-review.jsonl", sample_records[0])
    assert run(unfreeze, env).returncode == 0  # the freeze denies writing the source
    put_source(store, settings, sample_records[:3])
    assert run(freeze, env).returncode == 0
    calls["archive-source"] += traced(
        ["archive-source", "--remove-original", "--yes"], env, tmp_path / "trace-archive.jsonl"
    )
    assert run(unfreeze, env).returncode == 0

    calls["sync"] += traced_sync(store, settings, env, tmp_path, sample_records)
    sync_run = json.loads(run(["runs", "--json"], env).stdout)["runs"][-1]
    assert sync_run["kind"] == "sync"
    for index, apply in enumerate(([], ["--apply"])):
        trace = tmp_path / f"trace-rb-sync{index}.jsonl"
        calls["rollback"] += traced(["rollback", "--run", sync_run["runId"], *apply], env, trace)
    for index, command in enumerate((["--apply"], ["--undo", "--apply"])):
        trace = tmp_path / f"trace-freeze{index}.jsonl"
        calls["freeze-source"] += traced(["freeze-source", *command], env, trace)
    calls["migrate"] += traced_shards(store, settings, env, tmp_path, sample_records)
    calls["restore-source"] += traced_restore(store, settings, env, tmp_path)

    for name, made in calls.items():
        assert made, f"{name}: no operation traced"
        needed = {pair for call in made for pair in policy.needed_by(call)}
        granted = policy.grants([name], bucket, settings.table, settings.source_key)
        missing = {
            (a, arn)
            for a, arn in needed
            if not any(a == g and fnmatchcase(arn, p) for g, p in granted)
        }
        unused = {
            (g, p)
            for g, p in granted
            if not any(a == g and fnmatchcase(arn, p) for a, arn in needed)
        }
        assert not missing, f"{name}: the policy misses {sorted(missing)}"
        assert not unused, f"{name}: the policy grants what is never called: {sorted(unused)}"


def test_iam_policy_prints_a_document_for_the_configured_names(
    settings: Settings, env: dict[str, str]
) -> None:
    proc = run(["iam-policy", "--command", "verify"], env)
    assert proc.returncode == 0
    document = json.loads(proc.stdout)
    resources = {s["Resource"] for s in document["Statement"]}
    assert f"arn:aws:dynamodb:*:*:table/{settings.table}" in resources
    assert f"arn:aws:s3:::{settings.bucket}/registrations.json" in resources
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert (
        "s3:PutObject" not in actions and "dynamodb:DeleteItem" not in actions
    )  # verify only reads
