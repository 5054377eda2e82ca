"""restore-source: put a checked backup back at the source's key, never over a newer write.

When registrations.json is broken (not valid JSON, empty: a truncated upload), the
fix is one of the backups the tool took before each run. The dry run names the
backup (size, SHA-256, the run that took it), checks that it still hashes to what
its run read and that it parses, and shows the source as it is now (ETag, version
id). `--apply` writes the backup's bytes only while the source is still the version
the operator saw: a PutObject with If-Match on that ETag (If-None-Match when there
was none), so a write the app made after the look is never overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from khpl_migrate.aws import ObjectInfo, Store
from khpl_migrate.core import errors
from khpl_migrate.core.layout import BACKUP_PREFIX
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.backups import Backup, check_backup, last_checked_backup
from khpl_migrate.kernel.source import Digest, Source
from khpl_migrate.settings import Settings

log = logging.getLogger(__name__)

NO_SOURCE = "none"  # --expect-etag's value when the operator saw no source at all


@dataclass(frozen=True)
class RestorePlan:
    """What restore-source would do, found by reading only."""

    bucket: str
    source_key: str
    backup: Backup
    backup_info: ObjectInfo
    sha256: str
    records: int
    current: ObjectInfo | None  # the source now; None where there is none

    @property
    def current_etag(self) -> str:
        """The source's ETag now, as --expect-etag takes it (no quotes), or "none"."""
        return bare(self.current.etag) if self.current else NO_SOURCE

    def to_json(self) -> dict[str, Any]:
        current = self.current
        return {
            "bucket": self.bucket,
            "sourceKey": self.source_key,
            "backup": {**self.backup.to_json(), "sha256": self.sha256, "records": self.records},
            "current": None
            if current is None
            else {
                "etag": bare(current.etag),
                "versionId": current.version_id,
                "size": current.size,
            },
        }


@dataclass(frozen=True)
class RestoreResult:
    plan: RestorePlan
    restored: bool

    def to_json(self) -> dict[str, Any]:
        return {"dryRun": not self.restored, "restored": self.restored, **self.plan.to_json()}


def bare(etag: str) -> str:
    """An ETag without its quotes: how it is shown and typed back."""
    return etag.strip().strip('"')


def plan_restore(store: Store, settings: Settings, backup_key: str) -> RestorePlan:
    """Check the backup (it exists, still holds what its run read, parses as records) and
    look at the source now. Writes nothing."""
    bucket = settings.require_bucket()
    store.check_bucket(bucket)
    if not backup_key.startswith(BACKUP_PREFIX):
        raise errors.RestoreRefused(
            f"{backup_key} is not one of the tool's backups ({BACKUP_PREFIX}...)",
            "run `khpl-migrate backups` and pass one of the keys it lists",
        )
    found = check_backup(store, bucket, backup_key)
    if found is None:
        raise errors.RestoreRefused(
            f"s3://{bucket}/{backup_key} does not exist",
            "run `khpl-migrate backups` and pass one of the keys it lists",
        )
    backup, info, sha256 = found
    if backup.matches_source is False:
        raise errors.RestoreRefused(
            f"The backup {backup_key} no longer hashes to the source its run "
            f"{backup.run_id} read: it was changed or damaged; nothing was written",
            "run `khpl-migrate backups` and choose one that matches its source",
        )
    records = _count_records(store, Source(bucket, info, settings.records_path), sha256)
    current = store.head_object(bucket, settings.source_key)
    return RestorePlan(bucket, settings.source_key, backup, info, sha256, records, current)


def _count_records(store: Store, backup: Source, sha256: str) -> int:
    """Read the backup as the tool reads a source: it must be complete, valid JSON."""
    digest = Digest()
    count = 0
    try:
        for _ in source_mod.iter_records(store, backup, digest):
            count += 1
    except errors.SourceInvalid as exc:
        raise errors.RestoreRefused(
            f"The backup cannot be read as registrations: {exc.message}",
            "run `khpl-migrate backups` and choose another one",
        ) from None
    if digest.sha256 != sha256:
        raise errors.RestoreRefused(
            f"s3://{backup.bucket}/{backup.info.key} changed while it was being checked",
            "run the command again",
        )
    return count


def apply_restore(store: Store, plan: RestorePlan, expect_etag: str) -> RestoreResult:
    """Put the backup's bytes at the source's key, only while the source is still the
    version with `expect_etag` (the one the dry run showed; "none": there was none)."""
    expected = bare(expect_etag)
    if expected != plan.current_etag:
        raise errors.SourceChanged(
            f"s3://{plan.bucket}/{plan.source_key} is now ETag {plan.current_etag}, not "
            f"{expected}, the one you saw (the app may have written it since); nothing was written",
            f"run `khpl-migrate restore-source --backup {plan.backup.key}` again, look at "
            "the source it shows, and pass that --expect-etag",
        )
    etag = None if expected == NO_SOURCE else f'"{expected}"'
    written = store.put_copy_if(
        plan.bucket,
        plan.backup_info,
        plan.source_key,
        plan.sha256,
        etag,
        plan.backup_info.content_type or "application/json",
    )
    if not written:
        raise errors.SourceChanged(
            f"s3://{plan.bucket}/{plan.source_key} changed between the look and the write "
            "(S3 refused the conditional write); nothing was written",
            f"run `khpl-migrate restore-source --backup {plan.backup.key}` again and look",
        )
    log.info("restored %s from %s (sha256 %s)", plan.source_key, plan.backup.key, plan.sha256)
    return RestoreResult(plan, restored=True)


def show_restore(plan: RestorePlan) -> RestoreResult:
    return RestoreResult(plan, restored=False)


def with_last_backup(
    store: Store, settings: Settings, exc: errors.SourceInvalid
) -> errors.KhplError:
    """The error about a broken source, its fix naming the last checked backup (the one
    restore-source would put back). The original error where there is none, or where
    looking fails: the operator still gets the cause and `khpl-migrate backups`."""
    if not exc.restorable or exc.key != settings.source_key or not exc.bucket:
        return exc
    try:
        last = last_checked_backup(store, exc.bucket, exc.key)
    except errors.KhplError as failed:
        log.info("could not look for the last checked backup: %s", failed)
        return exc
    if last is None:
        return exc
    named = (
        f"the last checked backup is {last.key} (run {last.run_id}): "
        f"`khpl-migrate restore-source --backup {last.key}` puts it back (a dry run first); "
        "`khpl-migrate backups` lists them all"
    )
    fix = exc.fix.replace(errors.RESTORE_FIX, named)
    return errors.SourceInvalid(
        exc.message, fix, bucket=exc.bucket, key=exc.key, restorable=exc.restorable
    )
