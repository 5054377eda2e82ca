"""S3 objects: read pinned versions, write without replacing, copy, list, delete conditionally.

Every write the tool makes is one of two kinds: a new object that must never
replace another (`put_object_if_absent`, S3's `If-None-Match: *`), or an object
the tool owns outright (a run's manifest). Deletes are conditional on the ETag
whose bytes were checked (`If-Match`), so nothing changed since is removed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import urllib3
from botocore.exceptions import BotoCoreError

from khpl_migrate.aws.clients import Clients
from khpl_migrate.aws.translate import (
    NOT_FOUND_CODES,
    PRECONDITION_CODES,
    ClientError,
    code,
    status,
    translate,
)
from khpl_migrate.core import errors
from khpl_migrate.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RUN_METADATA = "khpl-run"  # x-amz-meta-khpl-run: which run wrote an object
PutOutcome = Literal["written", "identical", "conflict"]


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    version_id: str | None = None
    content_type: str | None = None
    sha256_b64: str | None = None
    run_id: str | None = None  # the khpl-run metadata: which run wrote the object


# Whole GETs of a small object whose body is cut off mid-way, before giving up.
BODY_ATTEMPTS = 6


class ObjectStore:
    """The S3 half of `Store`."""

    settings: Settings
    clients: Clients
    s3: S3Client
    _sleep: Callable[[float], None]  # backing off: injectable, so tests need not wait

    def _encryption(self) -> dict[str, Any]:
        """Server-side encryption for every object the tool writes: SSE-S3, or SSE-KMS."""
        if self.settings.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        with translate(f"read s3://{bucket}/{key}", bucket=bucket):
            try:
                head = self.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            except ClientError as exc:
                if code(exc) in NOT_FOUND_CODES:
                    return None
                raise
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            etag=head["ETag"],
            version_id=head.get("VersionId"),
            content_type=head.get("ContentType"),
            sha256_b64=_full_object_sha256(head),
            run_id=(head.get("Metadata") or {}).get(RUN_METADATA),
        )

    def open_object(
        self, bucket: str, info: ObjectInfo, start: int = 0, stop: int | None = None
    ) -> BinaryIO:
        """Stream one exact version of an object (from byte `start`, up to `stop` if given):
        a change is refused by S3."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": info.key, "IfMatch": info.etag}
        if stop is not None:
            kwargs["Range"] = f"bytes={start}-{stop - 1}"  # HTTP ranges are inclusive
        elif start:
            kwargs["Range"] = f"bytes={start}-"
        if info.version_id:
            kwargs["VersionId"] = info.version_id
        with translate(f"read s3://{bucket}/{info.key}", bucket=bucket):
            try:
                body: BinaryIO = self.s3.get_object(**kwargs)["Body"]  # type: ignore[assignment]
                return body
            except ClientError as exc:
                if code(exc) in PRECONDITION_CODES:
                    raise errors.SourceChanged(
                        f"s3://{bucket}/{info.key} changed while this run was reading it",
                        "run the command again; it reads the new version from the start",
                    ) from None
                raise

    def sha256_of(self, bucket: str, info: ObjectInfo) -> str:
        """The hex SHA-256 of one object version: its own checksum where S3 kept one,
        else its bytes read and hashed (1 MB at a time: any size, bounded memory)."""
        if info.sha256_b64:
            return base64.b64decode(info.sha256_b64).hex()
        hasher = hashlib.sha256()
        body = self.open_object(bucket, info)
        for chunk in iter(lambda: body.read(1 << 20), b""):
            hasher.update(chunk)
        return hasher.hexdigest()

    def read_range(self, bucket: str, info: ObjectInfo, start: int, stop: int) -> bytes:
        """Bytes `start` to `stop` of one exact version (a ranged GET): a record's copy in a
        backup. A connection cut while the body comes back is retried as a whole GET."""
        for attempt in range(1, BODY_ATTEMPTS + 1):
            body = self.open_object(bucket, info, start, stop)
            try:
                data = body.read()
            except (OSError, BotoCoreError, urllib3.exceptions.HTTPError) as exc:
                self._cut_off(bucket, info.key, attempt, exc)
                continue
            if len(data) == stop - start:
                return data
        raise errors.SourceChanged(
            f"s3://{bucket}/{info.key} gave fewer bytes than asked for ({start}-{stop})",
            "run the command again",
        )

    def _cut_off(self, bucket: str, key: str, attempt: int, exc: Exception) -> None:
        """An answer's body cut off on its way back: wait, and the caller GETs again; after
        the last attempt, give up naming the cause."""
        if attempt == BODY_ATTEMPTS:
            cause = f"{type(exc).__name__}: {exc}"
            raise errors.RetriesExhausted(
                f"Reading s3://{bucket}/{key} was cut off {attempt} times ({cause})",
                "check the network and run the command again",
                last_cause=cause,
            ) from None
        self._sleep(min(0.05 * 2**attempt, 2.0))

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        found = self.get_object(bucket, key)
        return None if found is None else found[0]

    def get_object(self, bucket: str, key: str) -> tuple[bytes, ObjectInfo] | None:
        """An object's bytes and its head (ETag, Content-Type), or None where it is missing.

        botocore retries a request, not the reading of its answer: a connection cut while
        the body comes back is retried here, a bounded number of times, as a whole GET."""
        for attempt in range(1, BODY_ATTEMPTS + 1):
            with translate(f"read s3://{bucket}/{key}", bucket=bucket):
                try:
                    response = self.s3.get_object(Bucket=bucket, Key=key)
                except ClientError as exc:
                    if code(exc) in NOT_FOUND_CODES:
                        return None
                    raise
                try:
                    data = response["Body"].read()
                    break
                except (OSError, BotoCoreError, urllib3.exceptions.HTTPError) as exc:
                    self._cut_off(bucket, key, attempt, exc)
        info = ObjectInfo(
            key=key,
            size=len(data),
            etag=response["ETag"],
            version_id=response.get("VersionId"),
            content_type=response.get("ContentType"),
            run_id=(response.get("Metadata") or {}).get(RUN_METADATA),
        )
        return data, info

    def delete_object_if_unchanged(self, bucket: str, key: str, etag: str) -> bool:
        """Delete only the version with this ETag (S3 conditional delete). False if it changed."""
        with translate(f"delete s3://{bucket}/{key}", bucket=bucket):
            try:
                self.s3.delete_object(Bucket=bucket, Key=key, IfMatch=etag)
                return True
            except ClientError as exc:
                if code(exc) in PRECONDITION_CODES | {"NoSuchKey", "404"}:
                    return False
                raise

    def probe_conditional_delete(self, bucket: str, key: str) -> None:
        """Prove, deleting nothing, that S3 lets this caller delete image objects and
        honours a conditional delete: a delete of a key that does not exist, on an ETag
        that cannot match, must be refused as "no such key" or "precondition failed"."""
        what = f"delete s3://{bucket}/{key}"
        with translate(what, bucket=bucket):
            try:
                self.s3.delete_object(Bucket=bucket, Key=key, IfMatch='"khpl-migrate-probe"')
            except ClientError as exc:
                if code(exc) in PRECONDITION_CODES | {"NoSuchKey", "404"}:
                    return
                if code(exc) in ("NotImplemented", "501") or status(exc) == 501:
                    raise errors.AwsError(
                        "This S3 endpoint does not support conditional deletes (If-Match on "
                        "DeleteObject: 501 NotImplemented); nothing was changed",
                        "roll back against AWS S3 (or a server that honours If-Match), "
                        "or remove the run's objects by hand after checking each",
                    ) from None
                raise
        raise errors.AwsError(
            "This S3 endpoint ignores If-Match on DeleteObject (a conditional delete of a "
            "missing key succeeded), so a rollback could delete the app's objects; nothing "
            "was changed",
            "roll back against AWS S3 (or a server that honours conditional deletes)",
        )

    def put_object_if_absent(
        self, bucket: str, key: str, data: bytes, content_type: str, run_id: str = ""
    ) -> PutOutcome:
        """Write a new object, never replacing one: S3's conditional write (If-None-Match).

        Where the key exists already, identical bytes count as done and other
        bytes are a conflict the caller reports; nothing is overwritten.
        """
        digest = hashlib.sha256(data).digest()
        with translate(f"upload s3://{bucket}/{key}", bucket=bucket):
            try:
                self.s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    **self._encryption(),
                    # Stored with the object: a HEAD then answers its SHA-256, no GET needed.
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                    IfNoneMatch="*",
                    # Which run wrote it: a retry after a lost response finds its own object.
                    Metadata={RUN_METADATA: run_id} if run_id else {},
                )
                return "written"
            except ClientError as exc:
                if code(exc) not in PRECONDITION_CODES | {"ConditionalRequestConflict"}:
                    raise
        found = self.get_object(bucket, key)
        if found is None or hashlib.sha256(found[0]).digest() != digest:
            return "conflict"
        if run_id and found[1].run_id == run_id:
            return "written"  # this run's own earlier attempt, whose answer was lost
        return "identical"

    def replace_object_if(
        self,
        bucket: str,
        key: str,
        data: bytes,
        content_type: str,
        etag: str | None,
        run_id: str,
    ) -> bool:
        """Put these bytes at `key` only while the object there is still the version with
        `etag` (S3's If-Match), or, with `etag` None, while there is none (If-None-Match).
        False when it changed in between: how a damaged image is put back, and nothing else."""
        guard = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        digest = hashlib.sha256(data).digest()
        with translate(f"upload s3://{bucket}/{key}", bucket=bucket):
            try:
                self.s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    **self._encryption(),
                    # Stored with the object: a HEAD then answers its SHA-256, no GET needed.
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                    Metadata={RUN_METADATA: run_id},
                    **guard,  # type: ignore[arg-type]
                )
                return True
            except ClientError as exc:
                if code(exc) in PRECONDITION_CODES | {"ConditionalRequestConflict", "NoSuchKey"}:
                    return False
                raise

    def put_object(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Write an object the tool owns outright (a run's own manifest)."""
        with translate(f"upload s3://{bucket}/{key}", bucket=bucket):
            self.s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                **self._encryption(),
            )

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        with translate(f"list s3://{bucket}/{prefix}", bucket=bucket):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(key=obj["Key"], size=obj["Size"], etag=obj["ETag"])


def _full_object_sha256(head: Any) -> str | None:
    """The object's own SHA-256, not a multipart upload's composite checksum ("...-N").

    An object stored in parts (its ETag ends in "-N") is never taken at its checksum's
    word: S3 marks a composite one, but an endpoint may not (moto does not).
    """
    value = head.get("ChecksumSHA256")
    if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    if "-" in str(head.get("ETag", "")):
        return None
    return str(value)
