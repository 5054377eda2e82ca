"""The one place that talks to AWS.

Every S3 and DynamoDB request of the tool goes through `Store`, so that there is
one set of retry rules (botocore's standard mode), one translation of AWS
errors into errors a person can act on (`errors.py`), and one hook
(`observer`) through which tests see every request without patching boto3.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import boto3
import botocore.exceptions
import botocore.utils
import urllib3.exceptions
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.parsers import ResponseParserError

from khpl_migrate import errors
from khpl_migrate.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

Observer = Callable[[str, str], None]
RUN_METADATA = "khpl-run"
PutOutcome = Literal["written", "identical", "conflict"]

# BatchGetItem takes at most 100 keys a request, TransactWriteItems 100 actions
# and 4 MB (DynamoDB quotas).
BATCH_GET_KEYS = 100
TRANSACT_ITEMS = 100
TRANSACT_BYTES = 3_500_000
_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "403"}
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    version_id: str | None = None
    content_type: str | None = None
    sha256_b64: str | None = None
    run_id: str | None = None  # the khpl-run metadata: which run wrote the object


def to_attribute_values(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def from_attribute_values(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class Store:
    """S3 + DynamoDB for one settings object; thread-safe (boto3 clients are)."""

    def __init__(
        self,
        settings: Settings,
        *,
        observer: Observer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        try:
            self._session = boto3.Session(
                profile_name=settings.profile,
                region_name=settings.region,
                aws_access_key_id=_reveal(settings.access_key_id),
                aws_secret_access_key=_reveal(settings.secret_access_key),
                aws_session_token=_reveal(settings.session_token),
            )
        except botocore.exceptions.ProfileNotFound:
            raise errors.CredentialsError(
                f"AWS profile {settings.profile!r} is not configured",
                "check AWS_PROFILE, or run `aws configure --profile NAME`",
            ) from None
        if not self._session.region_name:
            raise errors.ConfigError(
                "No AWS region is set",
                "pass --region, or set AWS_REGION (or REACT_APP_AWS_REGION in .env)",
            )
        config = Config(
            retries={"mode": "standard", "max_attempts": settings.max_attempts},
            # Every worker needs its own connection, or the pool serialises them.
            max_pool_connections=max(10, settings.workers * 2),
            connect_timeout=5,
            read_timeout=60,
            user_agent_extra="khpl-migrate",
        )
        self.s3: S3Client = self._session.client(
            "s3", endpoint_url=settings.s3_endpoint, config=config
        )
        self.ddb: DynamoDBClient = self._session.client(
            "dynamodb", endpoint_url=settings.dynamodb_endpoint, config=config
        )
        # botocore asks S3 for "100 Continue" before every file-like body: one more
        # round trip per image. For bodies this small, sending them is cheaper.
        # (before-sign runs after botocore's before-call.s3 handler has added it.)
        self.s3.meta.events.register("before-sign.s3.PutObject", _no_expect_for_small_bodies)
        trace = os.environ.get("KHPL_TRACE_OPERATIONS")
        if trace:
            self._trace_to(Path(trace))
        if observer is not None:
            for client, service in ((self.s3, "s3"), (self.ddb, "dynamodb")):
                client.meta.events.register(
                    "before-call.*.*",
                    lambda model, _service=service, **_: observer(_service, model.name),
                )

    def _encryption(self) -> dict[str, Any]:
        """Server-side encryption for every object the tool writes: SSE-S3, or SSE-KMS."""
        if self.settings.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def _trace_to(self, path: Path) -> None:
        """Append every API call (service, operation, bucket/key or table) to `path`.

        How the least-privilege policy (`iam-policy`) is checked against what the
        tool really calls. Names only: never parameters that carry data.
        """
        lock = threading.Lock()

        def record(model: Any, params: dict[str, Any], _service: str, **_: Any) -> None:
            line = {"service": _service, "operation": model.name}
            for name in ("Bucket", "Key", "TableName"):
                if name in params:
                    line[name] = params[name]
            if params.get("VersionId"):
                line["VersionId"] = True
            if "CopySource" in params:
                line["CopySourceKey"] = params["CopySource"]["Key"]
                if params["CopySource"].get("VersionId"):
                    line["CopySourceVersionId"] = True
            if "RequestItems" in params:
                line["TableName"] = next(iter(params["RequestItems"]))
            if "TransactItems" in params:
                line["TableName"] = params["TransactItems"][0]["Put"]["TableName"]
            with lock, path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")

        # before-parameter-build sees the API parameters (before-call sees the wire request).
        for client, service in ((self.s3, "s3"), (self.ddb, "dynamodb")):
            client.meta.events.register(
                "before-parameter-build.*.*",
                lambda _service=service, **kw: record(_service=_service, **kw),
            )

    @property
    def region(self) -> str:
        return str(self._session.region_name)

    # -- errors ---------------------------------------------------------------

    @contextmanager
    def _translate(self, what: str, *, bucket: str | None = None) -> Iterator[None]:
        """Turn botocore's exceptions into errors that name the cause and the fix."""
        try:
            yield
        except botocore.exceptions.NoCredentialsError:
            raise errors.CredentialsError(
                "No AWS credentials found",
                "set AWS_PROFILE (preferred), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "or the guide's REACT_APP_AWS_ACCESS_KEY_ID/REACT_APP_AWS_SECRET_ACCESS_KEY "
                "in .env",
            ) from None
        except (
            botocore.exceptions.PartialCredentialsError,
            botocore.exceptions.TokenRetrievalError,
            botocore.exceptions.SSOTokenLoadError,
        ) as exc:
            raise errors.CredentialsError(
                f"AWS credentials are incomplete or expired ({type(exc).__name__})",
                "check both the access key id and the secret, or run `aws sso login`",
            ) from None
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ConnectionClosedError,
        ) as exc:
            endpoint = getattr(exc, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
            raise errors.EndpointError(
                f"Could not reach {endpoint} while trying to {what}",
                "check the network and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_DYNAMODB; "
                "for the local stack run `khpl-migrate local up`",
            ) from None
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code in _CREDENTIAL_CODES:
                raise errors.CredentialsError(
                    f"AWS refused the credentials ({code}) while trying to {what}",
                    "check the access key and secret, or that the session has not expired",
                ) from None
            if code in _DENIED_CODES:
                raise errors.AccessDenied(
                    f"Access denied while trying to {what}",
                    "grant the permissions listed in the README (IAM policy) to this user/role",
                ) from None
            if code in {"NoSuchBucket"} or (bucket and code == "404" and what.startswith("open")):
                raise bucket_missing(bucket) from None
            raise errors.AwsError(
                f"AWS error {code or _status(exc)} while trying to {what}",
                str(exc.response.get("Error", {}).get("Message", "")) or "see the AWS console",
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise errors.AwsError(f"Could not {what}", type(exc).__name__) from None

    # -- S3 -------------------------------------------------------------------

    def check_bucket(self, bucket: str) -> None:
        with self._translate(f"open bucket {bucket}", bucket=bucket):
            try:
                self.s3.head_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"404", "NoSuchBucket", "NotFound"}:
                    raise bucket_missing(bucket) from None
                raise

    def create_bucket(self, bucket: str) -> None:
        """For the demo and tests: create a bucket in the store's region."""
        with self._translate(f"create bucket {bucket}"):
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self.s3.create_bucket(**kwargs)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        with self._translate(f"read s3://{bucket}/{key}", bucket=bucket):
            try:
                head = self.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            etag=head["ETag"],
            version_id=head.get("VersionId"),
            content_type=head.get("ContentType"),
            sha256_b64=_full_object_sha256(head),
        )

    def open_object(self, bucket: str, info: ObjectInfo, start: int = 0) -> BinaryIO:
        """Stream one exact version of an object (from byte `start`): a change is refused by S3."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": info.key, "IfMatch": info.etag}
        if start:
            kwargs["Range"] = f"bytes={start}-"
        if info.version_id:
            kwargs["VersionId"] = info.version_id
        with self._translate(f"read s3://{bucket}/{info.key}", bucket=bucket):
            try:
                body: BinaryIO = self.s3.get_object(**kwargs)["Body"]  # type: ignore[assignment]
                return body
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"PreconditionFailed", "412"}:
                    raise errors.SourceChanged(
                        f"s3://{bucket}/{info.key} changed while this run was reading it",
                        "run the command again; it reads the new version from the start",
                    ) from None
                raise

    def open_stream(self, bucket: str, info: ObjectInfo) -> ResumingStream:
        """`open_object`, reopened where it stopped when the connection drops mid-stream."""
        return ResumingStream(self, bucket, info)

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        with self._translate(f"read s3://{bucket}/{key}", bucket=bucket):
            try:
                return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise

    def get_object(self, bucket: str, key: str) -> tuple[bytes, ObjectInfo] | None:
        """An object's bytes and its head (ETag, Content-Type), or None where it is missing."""
        with self._translate(f"read s3://{bucket}/{key}", bucket=bucket):
            try:
                response = self.s3.get_object(Bucket=bucket, Key=key)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise
            data = response["Body"].read()
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
        with self._translate(f"delete s3://{bucket}/{key}", bucket=bucket):
            try:
                self.s3.delete_object(Bucket=bucket, Key=key, IfMatch=etag)
                return True
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"PreconditionFailed", "412", "NoSuchKey", "404"}:
                    return False
                raise

    def put_object_if_absent(
        self, bucket: str, key: str, data: bytes, content_type: str, run_id: str = ""
    ) -> PutOutcome:
        """Write a new object, never replacing one: S3's conditional write (If-None-Match).

        Where the key exists already, identical bytes count as done and other
        bytes are a conflict the caller reports; nothing is overwritten.
        """
        digest = hashlib.sha256(data).digest()
        with self._translate(f"upload s3://{bucket}/{key}", bucket=bucket):
            try:
                self.s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    **self._encryption(),
                    ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                    IfNoneMatch="*",
                    # Which run wrote it: a retry after a lost response finds its own object.
                    Metadata={RUN_METADATA: run_id} if run_id else {},
                )
                return "written"
            except botocore.exceptions.ClientError as exc:
                if _code(exc) not in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                    raise
            found = self.get_object(bucket, key)
        if found is None or hashlib.sha256(found[0]).digest() != digest:
            return "conflict"
        if run_id and found[1].run_id == run_id:
            return "written"  # this run's own earlier attempt, whose answer was lost
        return "identical"

    def put_object(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Write an object the tool owns outright (a run's own manifest)."""
        with self._translate(f"upload s3://{bucket}/{key}", bucket=bucket):
            self.s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                **self._encryption(),
            )

    def copy_object(
        self, bucket: str, source: ObjectInfo, key: str, what: str = "the backup"
    ) -> ObjectInfo:
        """Server-side copy of one exact source version to a new key; returns the copy's head."""
        copy_source: dict[str, str] = {"Bucket": bucket, "Key": source.key}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        with self._translate(f"copy s3://{bucket}/{source.key} to {key}", bucket=bucket):
            try:
                self.s3.copy_object(
                    Bucket=bucket,
                    Key=key,
                    CopySource=copy_source,  # type: ignore[arg-type]
                    CopySourceIfMatch=source.etag,
                    **self._encryption(),
                    ChecksumAlgorithm="SHA256",
                    MetadataDirective="COPY",
                )
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"PreconditionFailed", "412"}:
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

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        with self._translate(f"list s3://{bucket}/{prefix}", bucket=bucket):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(key=obj["Key"], size=obj["Size"], etag=obj["ETag"])

    # -- DynamoDB -------------------------------------------------------------

    def describe_table(self, table: str) -> dict[str, Any] | None:
        with self._translate(f"describe table {table}"):
            try:
                return dict(self.ddb.describe_table(TableName=table)["Table"])
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":
                    return None
                raise

    def require_table(self, table: str) -> dict[str, Any]:
        description = self.describe_table(table)
        if description is None:
            raise table_missing(table)
        return description

    def create_table(self, table: str) -> None:
        with self._translate(f"create table {table}"):
            self.ddb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                DeletionProtectionEnabled=True,
                **self._table_encryption(),
            )

    def _table_encryption(self) -> dict[str, Any]:
        if not self.settings.kms_key_id:
            return {}  # DynamoDB encrypts every table at rest with an AWS-owned key
        return {
            "SSESpecification": {
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": self.settings.kms_key_id,
            }
        }

    def wait_table_active(self, table: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            description = self.require_table(table)
            if description.get("TableStatus") == "ACTIVE":
                return description
            if time.monotonic() > deadline:
                raise errors.AwsError(
                    f"Table {table} is still {description.get('TableStatus')} after {timeout:.0f}s",
                    "wait a minute and run `khpl-migrate create-table` again",
                )
            self._sleep(2)

    def enable_point_in_time_recovery(self, table: str) -> bool:
        """True when enabled; False where the endpoint has no such feature (DynamoDB Local)."""
        with self._translate(f"enable point-in-time recovery on {table}"):
            try:
                self.ddb.update_continuous_backups(
                    TableName=table,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
                return True
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"UnknownOperationException", "UnsupportedOperation"}:
                    return False
                raise

    def existing_ids(self, table: str, ids: Iterable[str]) -> set[str]:
        """Which of `ids` have an item: BatchGetItem, 100 keys a call, unprocessed keys retried."""
        return set(self.get_items(table, ids, only_ids=True))

    def get_items(
        self, table: str, ids: Iterable[str], *, only_ids: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The items of `ids` that exist, by id (BatchGetItem, 100 keys a call)."""
        found: dict[str, dict[str, Any]] = {}
        batch: list[str] = []
        for rid in dict.fromkeys(ids):  # BatchGetItem refuses a key asked for twice
            batch.append(rid)
            if len(batch) == BATCH_GET_KEYS:
                found |= self._batch_get(table, batch, only_ids)
                batch = []
        if batch:
            found |= self._batch_get(table, batch, only_ids)
        return found

    def _batch_get(self, table: str, ids: list[str], only_ids: bool) -> dict[str, dict[str, Any]]:
        keys: dict[str, Any] = {"Keys": [{"id": {"S": rid}} for rid in ids], "ConsistentRead": True}
        if only_ids:
            keys |= {"ProjectionExpression": "#id", "ExpressionAttributeNames": {"#id": "id"}}
        request: dict[str, Any] = {table: keys}
        found: dict[str, dict[str, Any]] = {}
        attempt = 0
        with self._translate(f"read table {table}"):
            while request:
                try:
                    response = self.ddb.batch_get_item(RequestItems=request)
                except botocore.exceptions.ClientError as exc:
                    if _code(exc) == "ResourceNotFoundException":
                        raise table_missing(table) from None
                    raise
                for item in response.get("Responses", {}).get(table, []):
                    found[item["id"]["S"]] = from_attribute_values(dict(item))
                request = dict(response.get("UnprocessedKeys") or {})
                if request:
                    # Unprocessed keys are throttled reads: back off, never drop them.
                    attempt += 1
                    self._sleep(min(0.05 * 2**attempt, 5.0))
        return found

    def put_item_if_absent(self, table: str, item: dict[str, Any]) -> bool:
        """Put an item only where no item with its id exists. False when one does."""
        with self._translate(f"write to table {table}"):
            try:
                self.ddb.put_item(
                    TableName=table,
                    Item=to_attribute_values(item),
                    ConditionExpression="attribute_not_exists(#id)",
                    ExpressionAttributeNames={"#id": "id"},
                )
                return True
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    return False
                if _code(exc) == "ValidationException":
                    raise ItemRejected(str(exc.response["Error"].get("Message", ""))) from None
                raise

    def delete_item_if_run(self, table: str, rid: str, run_id: str) -> bool:
        """Delete an item only while it still carries this run's id. False where it does not."""
        with self._translate(f"delete from table {table}"):
            try:
                self.ddb.delete_item(
                    TableName=table,
                    Key={"id": {"S": rid}},
                    ConditionExpression="#run = :run",
                    ExpressionAttributeNames={"#run": "migrationRunId"},
                    ExpressionAttributeValues={":run": {"S": run_id}},
                )
                return True
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    return False
                raise

    def transact_put_if_absent(self, table: str, items: list[dict[str, Any]]) -> bool:
        """Put up to 100 items in one conditional transaction. False when it was cancelled.

        One request instead of one per item; every put keeps its
        `attribute_not_exists(id)`. A cancelled transaction wrote nothing; the
        caller then puts the items one by one to learn which already existed.
        botocore fills ClientRequestToken and reuses it on retries, so a retry
        after a lost response does not count our own write as a conflict.
        """
        with self._translate(f"write to table {table}"):
            try:
                self.ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": table,
                                "Item": to_attribute_values(item),
                                "ConditionExpression": "attribute_not_exists(#id)",
                                "ExpressionAttributeNames": {"#id": "id"},
                            }
                        }
                        for item in items
                    ]
                )
                return True
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in {"TransactionCanceledException", "ValidationException"}:
                    return False
                raise

    def get_item(self, table: str, rid: str) -> dict[str, Any] | None:
        with self._translate(f"read table {table}"):
            response = self.ddb.get_item(
                TableName=table, Key={"id": {"S": rid}}, ConsistentRead=True
            )
        item = response.get("Item")
        return from_attribute_values(dict(item)) if item else None

    def scan(
        self, table: str, attributes: tuple[str, ...] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of the table, page by page (deserialised, numbers as Decimal)."""
        kwargs: dict[str, Any] = {"TableName": table}
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            kwargs["ProjectionExpression"] = ", ".join(names)
            kwargs["ExpressionAttributeNames"] = names
        with self._translate(f"read table {table}"):
            for page in self.ddb.get_paginator("scan").paginate(**kwargs):
                for item in page.get("Items", []):
                    yield from_attribute_values(dict(item))


class Inspector:
    """Read-only questions `doctor` asks about the account, the bucket and the table.

    Each answers None where the endpoint cannot say (DynamoDB Local has no
    point-in-time recovery; moto no policy simulator), so doctor can say
    "not checked" rather than guess.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        settings = store.settings
        config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5)
        self._sts = store._session.client("sts", endpoint_url=settings.sts_endpoint, config=config)
        self._iam = store._session.client("iam", endpoint_url=settings.iam_endpoint, config=config)

    def _ask(self, what: str, call: Callable[[], Any], absent: set[str] | None = None) -> Any:
        with self._store._translate(what):
            try:
                return call()
            except botocore.exceptions.ClientError as exc:
                if absent and _code(exc) in absent:
                    return None
                if _code(exc) in _DENIED_CODES | {"UnknownOperationException", "NotImplemented"}:
                    return None
                raise
            except ResponseParserError:
                return None  # an endpoint that does not implement the call

    def caller(self) -> str | None:
        found = self._ask("ask STS who the caller is", self._sts.get_caller_identity)
        return str(found["Arn"]) if found else None

    def bucket_region(self, bucket: str) -> str | None:
        found = self._ask(
            "read the bucket's region", lambda: self._store.s3.get_bucket_location(Bucket=bucket)
        )
        return (found or {}).get("LocationConstraint") or ("us-east-1" if found else None)

    def versioning(self, bucket: str) -> str:
        found = self._ask(
            "read versioning", lambda: self._store.s3.get_bucket_versioning(Bucket=bucket)
        )
        return str((found or {}).get("Status") or "Disabled")

    def public_access_block(self, bucket: str) -> dict[str, bool] | None:
        found = self._ask(
            "read the public access block",
            lambda: self._store.s3.get_public_access_block(Bucket=bucket),
            {"NoSuchPublicAccessBlockConfiguration"},
        )
        return dict(found["PublicAccessBlockConfiguration"]) if found else None

    def bucket_encryption(self, bucket: str) -> str | None:
        found = self._ask(
            "read default encryption",
            lambda: self._store.s3.get_bucket_encryption(Bucket=bucket),
            {"ServerSideEncryptionConfigurationNotFoundError"},
        )
        if not found:
            return None
        rule = found["ServerSideEncryptionConfiguration"]["Rules"][0]
        return str(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"])

    def point_in_time_recovery(self, table: str) -> bool | None:
        found = self._ask(
            "read continuous backups",
            lambda: self._store.ddb.describe_continuous_backups(TableName=table),
        )
        if not found:
            return None
        status = found["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        return bool(status.get("PointInTimeRecoveryStatus") == "ENABLED")

    def simulate(
        self, principal: str, actions: list[tuple[str, str]]
    ) -> dict[tuple[str, str], bool] | None:
        """Ask IAM whether `principal` may do each (action, resource); None if IAM will not say."""
        out: dict[tuple[str, str], bool] = {}
        for action, resource in actions:

            def ask(a: str = action, r: str = resource) -> Any:
                return self._iam.simulate_principal_policy(
                    PolicySourceArn=principal, ActionNames=[a], ResourceArns=[r]
                )

            found = self._ask("simulate the caller's policy", ask)
            if not found:
                return None
            out[(action, resource)] = found["EvaluationResults"][0]["EvalDecision"] == "allowed"
        return out


class ResumingStream:
    """A pinned object stream that survives dropped connections.

    botocore retries a request, not a body half read. When reading fails, the
    same version is requested again from the byte where it stopped (a Range GET
    with If-Match), up to `RESUMES` times.
    """

    RESUMES = 10

    def __init__(self, store: Store, bucket: str, info: ObjectInfo) -> None:
        self._store, self._bucket, self._info = store, bucket, info
        self._body = store.open_object(bucket, info)
        self.position = 0
        self.resumed = 0

    def read(self, size: int = -1) -> bytes:
        while True:
            try:
                chunk: bytes = self._body.read(size)
            except (OSError, botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError):
                if self.resumed >= self.RESUMES:
                    raise errors.EndpointError(
                        f"Reading s3://{self._bucket}/{self._info.key} failed {self.resumed} times",
                        "check the network and run the command again",
                    ) from None
                self.resumed += 1
                log.info("stream dropped at byte %d; resuming", self.position)
                self._body = self._store.open_object(self._bucket, self._info, self.position)
                continue
            self.position += len(chunk)
            return chunk


class ItemRejected(Exception):
    """DynamoDB refused one item (ValidationException); that record fails, the run goes on."""


SMALL_BODY = 1024 * 1024


def _no_expect_for_small_bodies(request: Any, **_: Any) -> None:
    if request.headers.get("Expect") == "100-continue":
        length = botocore.utils.determine_content_length(request.body)
        if length is not None and length < SMALL_BODY:
            del request.headers["Expect"]


def _full_object_sha256(head: Any) -> str | None:
    """The object's own SHA-256, not a multipart upload's composite checksum ("...-N")."""
    value = head.get("ChecksumSHA256")
    if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    return str(value)


def table_missing(table: str) -> errors.TableMissing:
    return errors.TableMissing(f"Table {table} does not exist", "run `khpl-migrate create-table`")


def bucket_missing(bucket: str | None) -> errors.BucketMissing:
    return errors.BucketMissing(
        f"Bucket {bucket} does not exist", "check --bucket or REACT_APP_S3_BUCKET_NAME"
    )


def _reveal(secret: Any) -> str | None:
    return secret.reveal() if secret is not None else None
