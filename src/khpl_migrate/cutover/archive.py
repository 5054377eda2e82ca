"""The guide's last step: archive the old `registrations.json`.

`archive_source` copies the current source (one pinned version) to
`archive/registrations-{date}.json` server-side and proves the copy holds the
same bytes (SHA-256). It never replaces an archive that holds other bytes. The
original stays where it is unless `remove_original` is asked for, and even
then only after a deep verify in which every record is identical, and only
while the source is still the version that was archived and verified (S3's
conditional delete on its ETag). On a versioned bucket the removal leaves a
delete marker, so the old version can still be restored.

The verdict is `verify --deep`'s own (`DeepReport.passes`); with
`allow_table_edits` the app's edits made in DynamoDB since the migration pass,
as they do for `verify --deep --allow-table-edits` and `review`. A source
frozen by `freeze-source` (the end of the cut-over) is removed all the same:
the tool's own statement lets the delete through and is then put back, so the
source stays frozen and nothing can write a new registrations.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from khpl_migrate.aws import ObjectInfo, Store
from khpl_migrate.core import errors
from khpl_migrate.core.layout import ARCHIVE_PREFIX, archive_key
from khpl_migrate.cutover.freeze import deletes_allowed, sid
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.backups import object_sha256
from khpl_migrate.kernel.runner import Runner
from khpl_migrate.settings import Settings
from khpl_migrate.verify.deep import deep_verify


class ArchiveRefused(errors.KhplError):
    """The archive or the removal of the original would lose or hide something."""

    exit_code = 1


@dataclass(frozen=True)
class ArchiveResult:
    source_uri: str
    key: str
    size: int
    sha256: str
    already_archived: bool  # an identical archive was there before this call
    removed_original: bool
    versioned: bool  # the removal left a delete marker: the old version can be restored
    # The source is frozen by freeze-source's statement, left in place (its Sid), or None.
    frozen: str | None = None
    accepted_table_edits: int = 0  # records that differ only by the app's edits, accepted

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source_uri,
            "archiveKey": self.key,
            "size": self.size,
            "sha256": self.sha256,
            "alreadyArchived": self.already_archived,
            "removedOriginal": self.removed_original,
            "versioned": self.versioned,
            "frozen": self.frozen,
            "acceptedTableEdits": self.accepted_table_edits,
        }


def list_archives(store: Store, bucket: str) -> list[ObjectInfo]:
    return list(store.list_objects(bucket, ARCHIVE_PREFIX))


def archive_source(
    store: Store,
    settings: Settings,
    *,
    remove_original: bool = False,
    allow_table_edits: bool = False,
    day: date | None = None,
    runner: Runner | None = None,
) -> ArchiveResult:
    """Copy the source to the archive, checked; remove the original only when asked and safe:
    verify --deep passes (with `allow_table_edits`, the app's edits in DynamoDB pass too)."""
    source = source_mod.open_source(store, settings)
    pinned = source.info
    key = archive_key(pinned.key, day or datetime.now(UTC).date())
    wanted = object_sha256(store, source.bucket, pinned.key)
    assert wanted is not None  # open_source just found it
    existing = store.head_object(source.bucket, key)
    already = existing is not None
    if existing is not None:
        if object_sha256(store, source.bucket, key) != wanted:
            raise ArchiveRefused(
                f"s3://{source.bucket}/{key} already exists and holds other bytes than "
                f"{source.uri}; it was not replaced",
                "look at both objects; archive on another day or move the old archive away",
            )
    else:
        copy = store.copy_object(source.bucket, pinned, key, what="the archive")
        if copy.size != pinned.size or object_sha256(store, source.bucket, key) != wanted:
            raise errors.BackupFailed(
                f"The archive s3://{source.bucket}/{key} does not hold the bytes of {source.uri}",
                "run archive-source again; the original was left in place",
            )
    removed, frozen, accepted = False, False, 0
    if remove_original:
        accepted = _require_verified(store, settings, runner, allow_table_edits)
        with deletes_allowed(store, source.bucket, pinned.key) as frozen:
            deleted = store.delete_object_if_unchanged(source.bucket, pinned.key, pinned.etag)
        if not deleted:
            raise ArchiveRefused(
                f"{source.uri} changed after it was archived; it was not removed",
                "run archive-source again: it archives and checks the new version",
            )
        removed = True
    return ArchiveResult(
        source_uri=source.uri,
        key=key,
        size=pinned.size,
        sha256=wanted,
        already_archived=already,
        removed_original=removed,
        versioned=pinned.version_id is not None,
        frozen=sid(pinned.key) if frozen else None,
        accepted_table_edits=accepted,
    )


def _require_verified(
    store: Store, settings: Settings, runner: Runner | None, allow_table_edits: bool
) -> int:
    """verify --deep's verdict, or the refusal; returns how many records' app edits passed."""
    summary, deep = deep_verify(store, settings, runner=runner, allow_table_edits=allow_table_edits)
    if deep.passes(summary):
        return deep.accepted()
    identical = deep.count("=")
    found = (
        f"verify --deep finds {identical:,} of {len(deep.entries):,} records identical in DynamoDB"
    )
    if deep.accepted():
        found += f" ({deep.accepted():,} more differ only by the app's edits, accepted)"
    if deep.only_table_edits(summary):
        raise ArchiveRefused(
            f"{found}; every other difference is an edit made in DynamoDB since the migration "
            "(the app's); the original was archived but not removed",
            "run `khpl-migrate verify --deep` to see them; if they are the app's, accept them: "
            "`khpl-migrate archive-source --remove-original --allow-table-edits`",
        )
    raise ArchiveRefused(
        f"{found}; the original was archived but not removed",
        "run `khpl-migrate verify --deep`, fix what it reports, then remove the original",
    )
