"""S3's server-side copies: a backup of the pinned source, an archive, a restore.

A copy never leaves the account's S3 (no client bandwidth); objects past S3's
single-copy limit (5 GiB) go part by part. The copy is of the exact version
read, and a copy over an existing object is conditional on the version seen.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig

from khpl_migrate.aws.objects import ObjectInfo, ObjectStore
from khpl_migrate.aws.translate import (
    PRECONDITION_CODES,
    ClientError,
    code,
    translate,
)
from khpl_migrate.core import errors

if TYPE_CHECKING:
    pass

SINGLE_COPY_LIMIT = 5 * 1024**3  # S3's largest CopyObject: 5 GiB
MIN_PART, MAX_PARTS = 5 * 1024**2, 10_000  # S3's smallest part and most parts
COPY_PART = 256 * 1024**2


class CopyStore(ObjectStore):
    """S3's copies, in `Store`: the object half's reads and encryption, server-side."""

    def put_copy_if(
        self,
        bucket: str,
        source: ObjectInfo,
        key: str,
        sha256: str,
        etag: str | None,
        content_type: str = "application/json",
    ) -> bool:
        """Write the bytes of one exact object version (`source`, checked against `sha256`)
        to `key`, only while the object there is still the version with `etag` (If-Match),
        or, with `etag` None, while there is none (If-None-Match). False when it changed.

        Not a CopyObject: S3 honours If-Match on CopyObject's destination, but moto, the
        local stack the tests run on, ignores it; a PutObject's If-Match is honoured by
        both. So the bytes pass through here (spooled to disk above 64 MB, hashed on the
        way), and one PutObject holds at most 5 GiB."""
        if source.size > SINGLE_COPY_LIMIT:
            raise errors.AwsError(
                f"s3://{bucket}/{source.key} is {source.size:,} bytes: more than one "
                "conditional PutObject takes (5 GiB); nothing was written",
                f"copy it by hand after checking that s3://{bucket}/{key} is unchanged",
            )
        hasher = hashlib.sha256()
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024**2) as spool:
            body = self.open_object(bucket, source)
            for chunk in iter(lambda: body.read(1 << 20), b""):
                hasher.update(chunk)
                spool.write(chunk)
            if hasher.hexdigest() != sha256:
                raise errors.BackupFailed(
                    f"s3://{bucket}/{source.key} no longer hashes to the SHA-256 it was "
                    "checked against; nothing was written",
                    "run `khpl-migrate backups` and choose a backup that checks out",
                )
            spool.seek(0)
            guard = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            with translate(f"upload s3://{bucket}/{key}", bucket=bucket):
                try:
                    self.s3.put_object(
                        Bucket=bucket,
                        Key=key,
                        Body=spool,
                        ContentType=content_type,
                        **self._encryption(),
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=base64.b64encode(hasher.digest()).decode("ascii"),
                        **guard,  # type: ignore[arg-type]
                    )
                    return True
                except ClientError as exc:
                    if code(exc) in PRECONDITION_CODES | {
                        "ConditionalRequestConflict",
                        "NoSuchKey",
                    }:
                        return False
                    raise

    def copy_object(
        self,
        bucket: str,
        source: ObjectInfo,
        key: str,
        what: str = "the backup",
        *,
        single_limit: int = SINGLE_COPY_LIMIT,
    ) -> ObjectInfo:
        """Server-side copy of one exact source version to a new key; returns the copy's head.

        One CopyObject up to `single_limit` bytes (S3 copies at most 5 GiB in one
        request); above it a multipart copy (UploadPartCopy, parts in parallel), each
        part conditional on the same ETag, so a source of tens of GB is backed up too.
        """
        copy_source: dict[str, str] = {"Bucket": bucket, "Key": source.key}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        with translate(f"copy s3://{bucket}/{source.key} to {key}", bucket=bucket):
            try:
                if source.size > single_limit:
                    self._multipart_copy(copy_source, source, bucket, key, single_limit)
                else:
                    self.s3.copy_object(
                        Bucket=bucket,
                        Key=key,
                        CopySource=copy_source,  # type: ignore[arg-type]
                        CopySourceIfMatch=source.etag,
                        **self._encryption(),
                        ChecksumAlgorithm="SHA256",
                        MetadataDirective="COPY",
                    )
            except ClientError as exc:
                if code(exc) in PRECONDITION_CODES:
                    raise errors.SourceChanged(
                        f"s3://{bucket}/{source.key} changed before {what} was taken",
                        "run the command again; it plans against the new version",
                    ) from None
                raise
        head = self.head_object(bucket, key)
        if head is None:
            raise errors.BackupFailed(
                f"{what.capitalize()} s3://{bucket}/{key} is missing right after the copy",
                "check the bucket's lifecycle rules and permissions, then run again",
            )
        return head

    def _multipart_copy(
        self,
        copy_source: dict[str, str],
        source: ObjectInfo,
        bucket: str,
        key: str,
        single_limit: int,
    ) -> None:
        # s3transfer's managed copy: parts of 256 MiB (more where 10,000 would not do), 8
        # at a time. Its parts carry
        # CopySourceIfMatch, so a source replaced mid-copy fails the copy (412).
        chunk = max(MIN_PART, -(-source.size // MAX_PARTS), min(COPY_PART, single_limit))
        config = TransferConfig(
            multipart_threshold=single_limit, multipart_chunksize=chunk, max_concurrency=8
        )
        self.s3.copy(
            copy_source,  # type: ignore[arg-type]
            bucket,
            key,
            ExtraArgs={
                "CopySourceIfMatch": source.etag,
                "ChecksumAlgorithm": "SHA256",
                **self._encryption(),
            },
            Config=config,
        )
