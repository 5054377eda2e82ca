"""S3's buckets: there and reachable, created for the local stack, and their policy
(`freeze-source` adds one statement of its own and takes exactly it away)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from khpl_migrate.aws.clients import Clients
from khpl_migrate.aws.translate import (
    NOT_FOUND_CODES,
    ClientError,
    code,
    translate,
)
from khpl_migrate.core import errors
from khpl_migrate.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class BucketStore:
    """S3's buckets, in `Store`."""

    settings: Settings
    clients: Clients
    s3: S3Client

    def check_bucket(self, bucket: str) -> None:
        with translate(f"open bucket {bucket}", bucket=bucket):
            try:
                self.s3.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if code(exc) in NOT_FOUND_CODES | {"NoSuchBucket"}:
                    raise errors.bucket_missing(bucket) from None
                raise

    def create_bucket(self, bucket: str) -> None:
        """For the demo and tests: create a bucket in the store's region."""
        with translate(f"create bucket {bucket}"):
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.clients.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.clients.region}
            try:
                self.s3.create_bucket(**kwargs)
            except ClientError as exc:
                if code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    def bucket_policy(self, bucket: str) -> dict[str, Any] | None:
        """The bucket's policy document, or None where it has none."""
        with translate(f"read the policy of bucket {bucket}", bucket=bucket):
            try:
                text = self.s3.get_bucket_policy(Bucket=bucket)["Policy"]
            except ClientError as exc:
                if code(exc) == "NoSuchBucketPolicy":
                    return None
                raise
        found: dict[str, Any] = json.loads(text)
        return found

    def set_bucket_policy(self, bucket: str, document: dict[str, Any] | None) -> None:
        """Replace the bucket's policy (None: remove it)."""
        with translate(f"change the policy of bucket {bucket}", bucket=bucket):
            if document is None:
                self.s3.delete_bucket_policy(Bucket=bucket)
            else:
                self.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
