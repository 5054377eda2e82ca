"""What the tiers share: seed, snapshot and read back; run the command; parse its exports.

Helpers live here (and fixtures in the conftests), never in a test module, so a
test module imports nothing from another.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import click

from khpl_migrate.aws import Store, to_attribute_values
from khpl_migrate.core.layout import IMAGE_PREFIX
from khpl_migrate.core.transform import restore
from khpl_migrate.migrate.apply import RunResult, apply_plan
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup import sample
from khpl_migrate.setup.table import create_table

# What differs between two clean runs of the same records: each run's own id and date.
RUN_FIELDS = ("migrationRunId", "migrationDate")


def put_source(
    store: Store, settings: Settings, records: list[Any] | None = None, *, raw: bytes | None = None
) -> bytes:
    body = raw if raw is not None else sample.source_bytes(records or [])
    store.put_object(settings.require_bucket(), settings.source_key, body, "application/json")
    return body


def migrate(store: Store, settings: Settings) -> RunResult:
    """One real run through the library: plan, then apply."""
    return apply_plan(store, settings, build_plan(store, settings))


def two_runs(
    store: Store, settings: Settings, records: list[dict[str, Any]]
) -> tuple[RunResult, RunResult]:
    """A run of two registrations, then one more arrived and a second run took it."""
    create_table(store, settings)
    put_source(store, settings, records[:2])
    first = migrate(store, settings)
    put_source(store, settings, records[:3])
    return first, migrate(store, settings)


def app_sets(
    store: Store, settings: Settings, rid: str, name: str | tuple[str, ...], value: Any
) -> None:
    """The app's own write: an unconditional UpdateItem of one field (or of a path inside
    one, such as ("imageUploadResults", "userPhoto")), as the app does."""
    parts = (name,) if isinstance(name, str) else name
    store.ddb.update_item(
        TableName=settings.table,
        Key={"id": {"S": rid}},
        UpdateExpression="SET " + ".".join(f"#p{i}" for i in range(len(parts))) + " = :v",
        ExpressionAttributeNames={f"#p{i}": part for i, part in enumerate(parts)},
        ExpressionAttributeValues={":v": to_attribute_values({"v": value})["v"]},
    )


def app_puts_over(store: Store, bucket: str, key: str, body: bytes, content_type: str) -> None:
    """The app PUTs its own bytes over an object the tool wrote, copying the tool's run tag
    (a careless copy of its metadata) and storing no checksum."""
    head = store.head_object(bucket, key)
    tag = head.run_id if head is not None and head.run_id else ""
    store.s3.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata={"khpl-run": tag}
    )


def objects(store: Store, settings: Settings) -> dict[str, str]:
    """Every object in the bucket: key -> sha256 of its bytes."""
    bucket = settings.require_bucket()
    out = {}
    for info in store.list_objects(bucket, ""):
        data = store.get_bytes(bucket, info.key)
        assert data is not None
        out[info.key] = hashlib.sha256(data).hexdigest()
    return out


def items(store: Store, settings: Settings) -> dict[str, dict[str, Any]]:
    if store.describe_table(settings.table) is None:
        return {}
    return {str(item["id"]): item for item in store.scan(settings.table)}


def end_state(store: Store, settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    """Items without their run's id and date, and image objects by key and hash."""
    table = {
        rid: {k: v for k, v in item.items() if k not in RUN_FIELDS}
        for rid, item in items(store, settings).items()
    }
    images = {k: v for k, v in objects(store, settings).items() if k.startswith(IMAGE_PREFIX)}
    return table, images


def restored(store: Store, settings: Settings, item: dict[str, Any]) -> dict[str, Any]:
    """The source record rebuilt from the table item and the image objects in S3."""
    bucket = settings.require_bucket()
    stored = {}
    for entry in item["imageUploadResults"].values():
        data = store.get_bytes(bucket, entry["s3Key"])
        assert data is not None, entry["s3Key"]
        stored[entry["s3Key"]] = data
    return restore(item, stored)


def copies(records: list[dict[str, Any]], times: int) -> list[dict[str, Any]]:
    """`times` copies of the sample registrations, each with an id of its own."""
    return [{**r, "id": f"{r['id']}_{i}"} for i in range(times) for r in records]


def image_key(record: dict[str, Any], name: str) -> str:
    """The key of one of a sample registration's three images."""
    ext = {"userPhoto": "jpeg", "aadhaar": "png", "paymentScreenshot": "jpeg"}[name]
    return f"{IMAGE_PREFIX}{record['id']}/{name}.{ext}"


def damage_five_ways(
    store: Store, settings: Settings, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The five kinds of damage deep verify names, done to the first five of six migrated
    records: an item deleted, a field changed, an image deleted, an image's bytes
    forged (same size), an image's Content-Type changed. The sixth stays clean."""
    bucket = settings.require_bucket()
    deleted, changed, no_image, other_bytes, wrong_type, _ = records
    store.ddb.delete_item(TableName=settings.table, Key={"id": {"S": deleted["id"]}})
    item = store.get_item(settings.table, changed["id"])
    assert item is not None
    item["village"] = "Somewhere else"
    store.ddb.put_item(TableName=settings.table, Item=to_attribute_values(item))
    store.s3.delete_object(Bucket=bucket, Key=image_key(no_image, "aadhaar"))
    photo = store.get_bytes(bucket, image_key(other_bytes, "userPhoto")) or b""
    forged = photo[:-10] + bytes(10)  # same size, other bytes
    store.s3.put_object(
        Bucket=bucket,
        Key=image_key(other_bytes, "userPhoto"),
        Body=forged,
        ContentType="image/jpeg",
    )
    target = image_key(wrong_type, "paymentScreenshot")
    store.s3.copy_object(
        Bucket=bucket,
        Key=target,
        CopySource={"Bucket": bucket, "Key": target},
        ContentType="application/octet-stream",
        MetadataDirective="REPLACE",
    )
    return records


# -- the command, as the operator runs it ---------------------------------------------


def command_env(env: dict[str, str]) -> dict[str, str]:
    """Only `env`, PATH and HOME: nothing of the test runner's own environment leaks in."""
    return {"PATH": os.environ["PATH"], "HOME": env.get("HOME", "/nonexistent"), **env}


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m khpl_migrate ARGS` with only `env` (plus PATH), no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "khpl_migrate", *args],
        env=command_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, the cause and the fix on stderr, and no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Error:" in proc.stderr and "Fix:" in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def exports(stdout: str) -> dict[str, str]:
    """The `export NAME=value` lines that `local up` and `demo --keep` print."""
    return dict(re.findall(r"^export (\w+)=(\S+)$", stdout, re.M))


def cli_commands() -> list[list[str]]:
    """Every command and subcommand the CLI has (the top level is []): a new one cannot
    go without help text or a place in the README."""
    from khpl_migrate.cli import cli

    def walk(group: click.Group, prefix: list[str]) -> list[list[str]]:
        out = [prefix]
        for name, command in sorted(group.commands.items()):
            if isinstance(command, click.Group):
                out += walk(command, [*prefix, name])
            else:
                out.append([*prefix, name])
        return out

    return walk(cli, [])


class Timeline:
    """A fake clock for a write cap: it moves only when the cap makes a writer wait, so a
    test sees the waits without sleeping (on a pool, waits begun at once add up)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
