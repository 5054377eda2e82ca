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
import posixpath
from dataclasses import dataclass
from typing import Any

from khpl_migrate.aws import ObjectInfo, Store
from khpl_migrate.core import errors
from khpl_migrate.core.layout import BACKUP_PREFIX, backup_key
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.manifest import Manifest
from khpl_migrate.kernel.runs import list_runs
from khpl_migrate.kernel.source import Digest, Source
from khpl_migrate.settings import Settings

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
    by_key = _runs_by_backup(store, source.bucket)
    out = []
    for info in store.list_objects(source.bucket, BACKUP_PREFIX):
        backup, _ = _checked(store, source.bucket, info, by_key, current)
        out.append(backup)
    return out


def _runs_by_backup(store: Store, bucket: str) -> dict[str, Manifest]:
    return {str(run.header.backup_key): run for run in list_runs(store, bucket)}


def _checked(
    store: Store,
    bucket: str,
    info: ObjectInfo,
    by_key: dict[str, Manifest],
    current: str | None,
) -> tuple[Backup, str | None]:
    """One backup, checked against the source version its run read; and its SHA-256."""
    digest = object_sha256(store, bucket, info.key)
    run = by_key.get(info.key)
    expected = run.header.source.sha256 if run and run.header.source else None
    backup = Backup(
        key=info.key,
        size=info.size,
        run_id=run.run_id if run else None,
        matches_source=(digest == expected) if expected else None,
        same_as_current=current is not None and digest == current,
    )
    return backup, digest


def last_checked_backup(store: Store, bucket: str, source_key: str) -> Backup | None:
    """The newest backup of this source that still hashes to what its run read, or None.

    Backup names start with the run's ISO time, so the newest sorts last; only backups
    are hashed, newest first, until one checks out (the source itself may be broken)."""
    suffix = f"-{posixpath.basename(source_key)}"
    infos = [i for i in store.list_objects(bucket, BACKUP_PREFIX) if i.key.endswith(suffix)]
    if not infos:
        return None
    by_key = _runs_by_backup(store, bucket)
    for info in sorted(infos, key=lambda i: i.key, reverse=True):
        backup, _ = _checked(store, bucket, info, by_key, None)
        if backup.matches_source:
            return backup
    return None


def check_backup(store: Store, bucket: str, key: str) -> tuple[Backup, ObjectInfo, str] | None:
    """One backup by its key: checked against its run, its head and its SHA-256; None where
    there is no such object."""
    info = store.head_object(bucket, key)
    if info is None:
        return None
    backup, digest = _checked(store, bucket, info, _runs_by_backup(store, bucket), None)
    return backup, info, digest or ""
