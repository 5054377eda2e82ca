"""One migration run as N shards: prepared once, each shard run anywhere, seen as one.

`prepare_shards` does what a run does before its first write, once for all
shards: the plan of the whole source (every record validated), the checked
backup, and the run's header manifest (`migration-runs/{run}/manifest.jsonl`,
written once) naming the backup by key, ETag, version and SHA-256: the
snapshot. `run_shard` is one shard, in any process on any machine: it streams
the snapshot, never the live source, keeps the records whose id hashes to its
index (`shards.shard_of`), and migrates them like a run does, into its own
manifest part. Every write is conditional and carries the run id, so a shard
killed and run again, or started twice at once, converges: what an earlier
attempt wrote is found to be the run's own and recorded again.
`journal.with_shards` reads the parts back as one run (`runs`, `rollback`).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from khpl_migrate import __version__
from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.layout import (
    is_rollback_key,
    manifest_key,
    run_prefix,
    shard_part_key,
    shard_start_key,
)
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.core.shards import pick_index
from khpl_migrate.core.transform import RunStamp
from khpl_migrate.kernel.backups import make_backup
from khpl_migrate.kernel.clock import now_iso
from khpl_migrate.kernel.engine import Pace
from khpl_migrate.kernel.manifest import (
    NDJSON,
    SCHEMA,
    Manifest,
    RunHeader,
    SourceVersion,
    SummaryLine,
    encode,
    parse_manifest,
)
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import Runner, make_runner
from khpl_migrate.kernel.runs import read_manifest, resume_cut_off
from khpl_migrate.kernel.source import Source
from khpl_migrate.migrate.apply import (
    RunResult,
    header_of,
    migrate_records,
    result_of_manifest,
    run_spec,
)
from khpl_migrate.migrate.plan import Plan, Shard, build_plan
from khpl_migrate.settings import Settings


@dataclass(frozen=True)
class Prepared:
    """A sharded run ready for its shards: the snapshot taken, the header written."""

    run_id: str
    shards: int
    bucket: str
    backup_key: str
    manifest_key: str

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "shards": self.shards,
            "backupKey": self.backup_key,
            "manifestKey": self.manifest_key,
        }


def prepare_shards(
    store: Store, settings: Settings, plan: Plan, shards: int, max_write_rate: float | None
) -> Prepared:
    """The checked backup and the header manifest of a run of `shards` shards."""
    bucket, run_id = plan.source.bucket, plan.stamp.run_id
    store.require_table(plan.table)
    resume_cut_off(store, settings.state_dir, bucket, plan.table, run_id)
    backup = make_backup(store, plan.source, plan.digest, plan.stamp.migration_date)
    info = store.head_object(bucket, backup)
    if info is None:  # it was checked a moment ago
        raise errors.BackupFailed(f"The backup s3://{bucket}/{backup} is gone", "run again")
    header = msgspec.structs.replace(
        header_of(plan),
        backup_key=backup,
        shards=shards,
        # What every shard reads: this exact object, never the live source.
        snapshot=SourceVersion(
            backup, info.etag, info.version_id, plan.digest.size, plan.digest.sha256
        ),
        mask_aadhaar=plan.stamp.mask_aadhaar,
        max_write_rate=max_write_rate,
        # Every shard must write as the prepare would have: the same encryption and the
        # same version of the tool (its checks and transform).
        kms_key_id=settings.kms_key_id,
        tool_version=__version__,
        schema=SCHEMA,
    )
    key = manifest_key(run_id)
    if store.put_object_if_absent(bucket, key, encode(header) + b"\n", NDJSON) == "conflict":
        raise errors.AwsError(f"s3://{bucket}/{key} exists already", "run again (a new run id)")
    return Prepared(run_id, shards, bucket, backup, key)


@dataclass(frozen=True)
class ShardRun:
    index: int
    shards: int
    result: RunResult
    max_write_rate: float | None  # this shard's share of the run's cap

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "shard": self.index,
            "shards": self.shards,
            "maxWriteRate": self.max_write_rate,
        }


def run_shard(
    store: Store,
    settings: Settings,
    run_id: str,
    choice: str,
    env: Mapping[str, str],
    *,
    runner: Runner | None = None,
    progress: Progress | None = None,
    max_write_rate: float | None = None,
) -> ShardRun:
    """Migrate one shard of a prepared run: `choice` is its index, or "auto" (the engine's
    variable in `env`). `max_write_rate` is the whole run's cap (default: the one given
    at prepare); this shard keeps to its share."""
    bucket = settings.require_bucket()
    store.check_bucket(bucket)
    header = _prepared(store, bucket, run_id)
    shards = int(header.shards or 0)
    index = pick_index(choice, env, shards)
    if any(is_rollback_key(info.key) for info in store.list_objects(bucket, run_prefix(run_id))):
        raise errors.ConfigError(
            f"Run {run_id} was rolled back: a shard of it would write its records again",
            "prepare a new run: khpl-migrate migrate --apply --shards N",
        )
    table = str(header.table)
    attempt = secrets.token_hex(4)
    part = RunHeader(
        run_id=run_id,
        table=table,
        bucket=bucket,
        started_at=now_iso(),
        shard=index,
        shards=shards,
        attempt=attempt,
    )
    store.put_object(
        bucket,
        shard_start_key(run_id, index, attempt),
        json.dumps({"startedAt": part.started_at, "pid": os.getpid()}).encode(),
        "application/json",
    )
    try:
        _same_as_prepared(settings, header)
        source = _snapshot(store, bucket, header)
        plan = _shard_plan(store, settings, header, source, Shard(index, shards), progress)
    except errors.KhplError as exc:
        # Stopped before its first write: a part that says why, so `runs` shows the shard
        # failed (not running for ever).
        _stopped_part(store, part, str(exc))
        raise
    cap = max_write_rate if max_write_rate is not None else header.max_write_rate
    rate = WriteRate(cap or None).share(shards)
    pace = Pace(runner or make_runner(settings.workers), progress or NullProgress(), rate=rate)
    result = RunResult(run_id=run_id, dry_run=False, total=plan.total, warnings=plan.warnings)
    again = f"run the shard again: khpl-migrate migrate --apply --run {run_id} --shard {index}"
    spec = run_spec(
        plan, settings, header=part, again=again, snapshot=source.info.key, part=(index, attempt)
    )
    migrate_records(store, plan, spec, pace, result)
    return ShardRun(index, shards, result, rate.per_second)


def _shard_plan(
    store: Store,
    settings: Settings,
    header: RunHeader,
    source: Source,
    shard: Shard,
    progress: Progress | None,
) -> Plan:
    """The shard's records planned from the snapshot, which must hash as it did."""
    assert header.table is not None and header.snapshot is not None  # a prepared header
    stamp = RunStamp(header.run_id, header.started_at, header.mask_aadhaar)
    plan = build_plan(
        store,
        replace(settings, table=header.table, records_path=source.records_path),
        progress=progress,
        stamp=(stamp, datetime.now(UTC)),
        source=source,
        shard=shard,
    )
    if plan.digest.sha256 != header.snapshot.sha256:
        raise errors.SourceChanged(
            f"The snapshot of run {header.run_id} does not hash to what was recorded when it "
            "was prepared",
            "prepare a new run: khpl-migrate migrate --apply --shards N",
        )
    return plan


def _same_as_prepared(settings: Settings, header: RunHeader) -> None:
    version = header.tool_version
    if version and version != __version__:
        raise errors.ConfigError(
            f"Run {header.run_id} was prepared by khpl-migrate {version}; this is {__version__}",
            f"run its shards with khpl-migrate {version} (the same image as the others)",
        )
    key = header.kms_key_id
    if (key or None) != settings.kms_key_id:
        given = f"--kms-key-id {key}" if key else "no --kms-key-id (SSE-S3)"
        raise errors.ConfigError(
            f"Run {header.run_id} was prepared with {given}, and this shard's encryption differs",
            f"give the shard {given}, as the prepare had",
        )


def _stopped_part(store: Store, part: RunHeader, why: str) -> None:
    assert part.shard is not None and part.attempt is not None  # a shard's part
    body = encode(part) + b"\n" + encode(SummaryLine(finished_at=now_iso(), stopped=why)) + b"\n"
    key = shard_part_key(part.run_id, part.shard, part.attempt)
    store.put_object_if_absent(str(part.bucket), key, body, NDJSON)


def _prepared(store: Store, bucket: str, run_id: str) -> RunHeader:
    body = store.get_bytes(bucket, manifest_key(run_id))
    if body is None:
        raise errors.ConfigError(
            f"No run {run_id} in s3://{bucket}/{manifest_key(run_id)}",
            "prepare one with `khpl-migrate migrate --apply --shards N`, or copy the run id "
            "from `khpl-migrate runs`",
        )
    header = parse_manifest(run_id, manifest_key(run_id), body).header
    if header.shards is None or header.snapshot is None or header.table is None:
        raise errors.ConfigError(
            f"Run {run_id} is not a sharded run",
            "--run and --shard go with a run prepared by `khpl-migrate migrate --apply --shards N`",
        )
    return header


def _snapshot(store: Store, bucket: str, header: RunHeader) -> Source:
    """The run's backup, pinned to the version the header names."""
    snap = header.snapshot
    assert snap is not None  # a prepared header
    info = store.head_object(bucket, snap.key)
    if info is None or info.etag != snap.etag:
        raise errors.SourceChanged(
            f"The snapshot of run {header.run_id}, s3://{bucket}/{snap.key}, "
            + ("is gone" if info is None else "was replaced after the run was prepared"),
            "prepare a new run: khpl-migrate migrate --apply --shards N (what this run "
            "wrote can be undone with rollback --run)",
        )
    pinned = replace(info, version_id=snap.version_id or info.version_id)
    return Source(bucket, pinned, header.records_path)


@dataclass(frozen=True)
class LocalShards:
    """A sharded run carried out by local processes: the run as its manifests tell it."""

    prepared: Prepared
    result: RunResult
    manifest: Manifest
    exits: tuple[int, ...]  # each shard process's exit code
    errors: tuple[str, ...]  # the last line each failed process printed

    @property
    def ok(self) -> bool:
        return self.result.ok and not any(self.exits)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "launch": {"engine": "local", "exits": list(self.exits)},
            "shards": [shard.to_json() for shard in self.manifest.shards],
        }


def run_local(
    store: Store,
    settings: Settings,
    prepared: Prepared,
    *,
    announce: Callable[[str], None] = lambda text: None,
) -> LocalShards:
    """Start one process per shard, wait for all, and read the run back from S3."""
    began = time.monotonic()
    procs = [
        subprocess.Popen(
            shard_command(settings, prepared.run_id, index),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )
        for index in range(prepared.shards)
    ]
    announce(f"{prepared.shards} shard processes started")
    exits, tails = [], []
    for index, proc in enumerate(procs):
        _, err = proc.communicate()
        exits.append(proc.returncode)
        text = err.decode("utf-8", "replace").strip().splitlines()
        tail = text[-1] if proc.returncode and text else ""
        tails.append(tail)
        announce(
            f"shard {index}: " + ("done" if not proc.returncode else f"exit {proc.returncode}")
        )
    manifest = read_manifest(store, prepared.bucket, prepared.run_id, settings.state_dir)
    assert manifest is not None  # the header was written before the processes started
    result = result_of_manifest(manifest, time.monotonic() - began)
    ended = [
        f"shard {index} exited with {code}" + (f" ({tail})" if tail else "")
        for index, (code, tail) in enumerate(zip(exits, tails, strict=True))
        if code not in (0, 1)  # 1: records failed (listed); else it stopped, or was killed
    ]
    if ended:  # every process has ended: none is "still running"
        result.stopped = "; ".join(ended)
    return LocalShards(prepared, result, manifest, tuple(exits), tuple(tails))


def shard_command(settings: Settings, run_id: str, index: int) -> list[str]:
    """The command line of one local shard: this interpreter, the same settings."""
    args = [sys.executable, "-m", "khpl_migrate", "migrate", "--apply"]
    args += ["--run", run_id, "--shard", str(index), "--quiet"]
    args += ["--bucket", settings.require_bucket(), "--state-dir", str(settings.state_dir)]
    args += ["--workers", str(settings.workers), "--max-attempts", str(settings.max_attempts)]
    if settings.region:
        args += ["--region", settings.region]
    if settings.kms_key_id:
        args += ["--kms-key-id", settings.kms_key_id]
    return args
