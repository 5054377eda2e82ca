"""The backups of the source that runs took, and whether each still holds its source.

A backup is good when its bytes still hash to the SHA-256 of the source version
the run read (recorded in that run's manifest). It also says whether the
backup equals today's `registrations.json`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from khpl_migrate import source as source_mod
from khpl_migrate.journal import list_runs
from khpl_migrate.settings import Settings
from khpl_migrate.store import Store

BACKUP_PREFIX = "migration-backup-"


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


def object_sha256(store: Store, bucket: str, key: str) -> str | None:
    head = store.head_object(bucket, key)
    if head is None:
        return None
    if head.sha256_b64:
        return base64.b64decode(head.sha256_b64).hex()
    hasher = hashlib.sha256()
    body = store.open_object(bucket, head)
    for chunk in iter(lambda: body.read(1 << 20), b""):
        hasher.update(chunk)
    return hasher.hexdigest()


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
