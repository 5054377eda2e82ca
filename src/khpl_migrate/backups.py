"""Backups of the source: taking one, naming it, and checking that it still holds its source.

Before the first write of a run, the exact source version it planned is copied
server-side to `migration-backup-{ISO}-registrations.json` (the guide's name,
`layout.backup_key`) and the copy must hash to the SHA-256 of the bytes the
plan read (safety contract 2). Later, a backup is good when it still hashes to
the source version its run read (recorded in the run's manifest); `backups`
also says whether it equals today's `registrations.json`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from khpl_migrate import errors
from khpl_migrate import source as source_mod
from khpl_migrate.aws import Store
from khpl_migrate.journal import list_runs
from khpl_migrate.layout import BACKUP_PREFIX, backup_key
from khpl_migrate.settings import Settings
from khpl_migrate.source import Digest, Source

log = logging.getLogger(__name__)


def make_backup(store: Store, source: Source, digest: Digest, started_iso: str) -> str:
    """Server-side copy of the pinned source version, then prove the copy holds the same bytes."""
    key = backup_key(source.info.key, started_iso)
    head = store.copy_object(source.bucket, source.info, key)
    if head.size != digest.size:
        raise errors.BackupFailed(
            f"The backup s3://{source.bucket}/{key} is {head.size:,} bytes, "
            f"the source {digest.size:,}",
            "run again; nothing was migrated",
        )
    # S3's own full-object checksum where the endpoint keeps one, else the copy read back.
    if store.sha256_of(source.bucket, head) != digest.sha256:
        raise errors.BackupFailed(
            f"The backup s3://{source.bucket}/{key} does not hash to the source's SHA-256",
            "run again; nothing was migrated",
        )
    log.info("backup %s checked (sha256 %s)", key, digest.sha256)
    return key


def object_sha256(store: Store, bucket: str, key: str) -> str | None:
    """The hex SHA-256 of the object at `key` now, or None where there is none."""
    head = store.head_object(bucket, key)
    return None if head is None else store.sha256_of(bucket, head)


@dataclass(frozen=True)
class Backup:
    key: str
    size: int
    run_id: str | None
    matches_source: bool | None  # None: no run manifest names this backup
    same_as_current: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "runId": self.run_id,
            "matchesSource": self.matches_source,
            "sameAsCurrent": self.same_as_current,
        }


def list_backups(store: Store, settings: Settings, current: str | None = None) -> list[Backup]:
    """Every backup; `current` is the source's SHA-256 where the caller has it already."""
    source = source_mod.open_source(store, settings)
    current = current or object_sha256(store, source.bucket, source.info.key)
    by_key = {str(run.header.get("backupKey")): run for run in list_runs(store, source.bucket)}
    out = []
    for info in store.list_objects(source.bucket, BACKUP_PREFIX):
        digest = object_sha256(store, source.bucket, info.key)
        run = by_key.get(info.key)
        expected = (run.header.get("source") or {}).get("sha256") if run else None
        out.append(
            Backup(
                key=info.key,
                size=info.size,
                run_id=run.run_id if run else None,
                matches_source=(digest == expected) if expected else None,
                same_as_current=digest == current,
            )
        )
    return out
