"""The least-privilege IAM policy: exactly the actions each command calls.

Every AWS operation the tool makes, mapped to its IAM action and scoped to the
table's ARN and to the key prefixes the tool uses. `tests/command/
test_iam_policy.py` records the operations each command really makes (the
store's `KHPL_TRACE_OPERATIONS` hook) and fails if this policy misses one or
grants one never made.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from khpl_migrate.core import layout

# The key patterns come from layout.py: a key that moves there moves here too.
IMAGES = f"{layout.IMAGE_PREFIX}*"
BACKUPS = f"{layout.BACKUP_PREFIX}*"
RUNS = f"{layout.RUNS_PREFIX}*"
ARCHIVE = f"{layout.ARCHIVE_PREFIX}*"
SOURCE = "{source}"  # stands for the source key

# command -> (IAM action, resource): "table", "bucket", or a key pattern.
NEEDS: dict[str, list[tuple[str, str]]] = {
    "create-table": [
        ("dynamodb:CreateTable", "table"),
        ("dynamodb:DescribeTable", "table"),
        ("dynamodb:UpdateContinuousBackups", "table"),
    ],
    "verify": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),
        ("s3:GetObjectVersion", SOURCE),
        ("s3:GetObject", IMAGES),  # --deep
        ("s3:GetObject", RUNS),  # --deep: which runs wrote what
        ("s3:GetObject", BACKUPS),  # --deep: the baseline of a record that differs
        ("s3:GetObjectVersion", BACKUPS),
        ("dynamodb:DescribeTable", "table"),
        ("dynamodb:Scan", "table"),
        ("dynamodb:GetItem", "table"),  # --deep
    ],
    "migrate": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),
        ("s3:GetObjectVersion", SOURCE),  # the pinned version of a versioned bucket
        ("s3:PutObject", BACKUPS),
        ("s3:GetObject", BACKUPS),  # checking the copy
        ("s3:GetObjectVersion", BACKUPS),  # a shard reads the run's snapshot, pinned
        ("s3:PutObject", IMAGES),
        ("s3:GetObject", IMAGES),  # an image key that exists: same bytes or not?
        ("s3:PutObject", RUNS),
        ("s3:GetObject", RUNS),  # a cut-off run's manifest; a sharded run's header
        ("dynamodb:DescribeTable", "table"),
        ("dynamodb:BatchGetItem", "table"),
        ("dynamodb:PutItem", "table"),  # PutItem and TransactWriteItems' puts
        ("dynamodb:GetItem", "table"),  # whose item, when a condition fails
    ],
    "rollback": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", RUNS),
        ("s3:PutObject", RUNS),  # the record of the rollback
        ("s3:GetObject", IMAGES),
        ("s3:DeleteObject", IMAGES),
        ("s3:GetObject", BACKUPS),  # a sync run's: the values to put back
        ("s3:GetObjectVersion", BACKUPS),
        ("s3:GetObjectVersion", IMAGES),  # an object stored without its SHA-256, hashed
        ("dynamodb:DescribeTable", "table"),
        ("dynamodb:GetItem", "table"),
        ("dynamodb:BatchGetItem", "table"),  # the run's items, judged against its backup
        ("dynamodb:Scan", "table"),  # which image keys the items that stay name
        ("dynamodb:DeleteItem", "table"),
        ("dynamodb:UpdateItem", "table"),  # a sync run's fields put back
        ("dynamodb:PutItem", "table"),  # an item a sync run deleted put back
    ],
    "sync": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),
        ("s3:GetObjectVersion", SOURCE),
        ("s3:PutObject", BACKUPS),  # the backup taken before the first write
        ("s3:GetObject", BACKUPS),  # checking it, and the baselines
        ("s3:GetObjectVersion", BACKUPS),
        ("s3:PutObject", IMAGES),  # a changed image, at a key of its own; --repair-images
        ("s3:GetObject", IMAGES),  # every referenced image checked (HEAD)
        # An object stored without its SHA-256 is read to hash it, pinned to the version
        # the HEAD saw (versioned buckets).
        ("s3:GetObjectVersion", IMAGES),
        ("s3:PutObject", RUNS),
        ("s3:GetObject", RUNS),
        ("dynamodb:DescribeTable", "table"),
        ("dynamodb:Scan", "table"),  # the table, read consistently
        ("dynamodb:GetItem", "table"),
        ("dynamodb:PutItem", "table"),  # records new in the source
        ("dynamodb:UpdateItem", "table"),
        ("dynamodb:DeleteItem", "table"),  # --delete
    ],
    "freeze-source": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),  # it exists
        ("s3:GetBucketPolicy", "bucket"),
        ("s3:PutBucketPolicy", "bucket"),
        ("s3:DeleteBucketPolicy", "bucket"),  # --undo, when ours was its only statement
    ],
    "runs": [("s3:ListBucket", "bucket"), ("s3:GetObject", RUNS)],
    # A copy of the source for a rehearsal on a local stack: one GetObject, nothing else.
    "rehearse": [("s3:GetObject", SOURCE)],
    "archive-source": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),
        ("s3:GetObjectVersion", SOURCE),  # the pinned version is the one copied
        ("s3:PutObject", ARCHIVE),
        ("s3:GetObject", ARCHIVE),  # checking the copy
        ("s3:DeleteObject", SOURCE),  # --remove-original
        ("s3:GetObject", IMAGES),  # --remove-original runs verify --deep first
        ("s3:GetObject", RUNS),  # ... which reads which runs wrote what
        ("s3:GetBucketPolicy", "bucket"),  # ... a source frozen by freeze-source:
        ("s3:PutBucketPolicy", "bucket"),  # its statement lets the delete through, then back
        ("dynamodb:DescribeTable", "table"),
        ("dynamodb:Scan", "table"),
        ("dynamodb:GetItem", "table"),
    ],
    # The page's checks (verify --deep, backups, runs, archives) and its actions
    # (archive-source, with --remove-original; the rollback dry run).
    "review": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),
        ("s3:GetObjectVersion", SOURCE),
        ("s3:GetObject", IMAGES),
        ("s3:GetObject", BACKUPS),  # the backups' checksums
        ("s3:GetObjectVersion", BACKUPS),  # the original images, read from one version
        ("s3:GetObject", RUNS),
        ("s3:GetObject", ARCHIVE),
        ("s3:PutObject", ARCHIVE),
        ("s3:DeleteObject", SOURCE),
        ("s3:GetBucketPolicy", "bucket"),  # a frozen source: is it? and removing it
        ("s3:PutBucketPolicy", "bucket"),  # (freeze-source's statement narrowed, then back)
        ("dynamodb:DescribeTable", "table"),
        ("dynamodb:Scan", "table"),
        ("dynamodb:GetItem", "table"),
        ("dynamodb:BatchGetItem", "table"),  # a page of records in one call
    ],
    # A recovery step: a checked backup put back as the source, If-Match on its ETag.
    "restore-source": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),  # the source now: its ETag and version
        ("s3:PutObject", SOURCE),
        ("s3:GetObject", BACKUPS),
        ("s3:GetObjectVersion", BACKUPS),  # the backup's bytes, pinned to the version checked
        ("s3:GetObject", RUNS),  # which run took the backup, and the hash it read
    ],
    "backups": [
        ("s3:ListBucket", "bucket"),
        ("s3:GetObject", SOURCE),
        ("s3:GetObjectVersion", SOURCE),
        ("s3:GetObject", BACKUPS),
        ("s3:GetObject", RUNS),
    ],
}
COMMANDS = tuple(NEEDS)


def resource_arn(
    resource: str, bucket: str, table: str, source_key: str, region: str = "*", account: str = "*"
) -> str:
    """The ARN (pattern) of one resource; the table's in any region and account unless
    given (doctor gives the region in force and the caller's account)."""
    if resource == "table":
        return f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    if resource == "bucket":
        return f"arn:aws:s3:::{bucket}"
    return f"arn:aws:s3:::{bucket}/{resource.replace(SOURCE, source_key)}"


def grants(
    commands: list[str],
    bucket: str,
    table: str,
    source_key: str,
    *,
    region: str = "*",
    account: str = "*",
) -> set[tuple[str, str]]:
    """(action, resource ARN pattern) pairs the commands need."""
    return {
        (action, resource_arn(resource, bucket, table, source_key, region, account))
        for command in commands
        for action, resource in NEEDS[command]
    }


def policy(commands: list[str], bucket: str, table: str, source_key: str) -> dict[str, Any]:
    """The IAM policy document: one statement per resource, its actions sorted."""
    by_resource: dict[str, set[str]] = defaultdict(set)
    for action, arn in grants(commands, bucket, table, source_key):
        by_resource[arn].add(action)
    statements = [
        {
            "Sid": f"Khpl{index}",
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": arn,
        }
        for index, (arn, actions) in enumerate(sorted(by_resource.items()), start=1)
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def needed_by(operation: dict[str, str], bucket_of: str | None = None) -> list[tuple[str, str]]:
    """The (action, concrete ARN) pairs one traced API call needs."""
    op, service = operation["operation"], operation["service"]
    if service == "dynamodb":
        action = "PutItem" if op == "TransactWriteItems" else op
        return [(f"dynamodb:{action}", f"arn:aws:dynamodb:*:*:table/{operation['TableName']}")]
    bucket = operation.get("Bucket", bucket_of or "")
    version = "s3:GetObjectVersion" if operation.get("VersionId") else "s3:GetObject"
    if op in {"HeadBucket", "ListObjectsV2"}:
        return [("s3:ListBucket", f"arn:aws:s3:::{bucket}")]
    if op in {"GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"}:
        return [(f"s3:{op}", f"arn:aws:s3:::{bucket}")]
    key = f"arn:aws:s3:::{bucket}/{operation.get('Key', '')}"
    if op in {"HeadObject", "GetObject"}:
        return [(version, key)]
    if op == "PutObject":
        return [("s3:PutObject", key)]
    if op == "DeleteObject":
        return [("s3:DeleteObject", key)]
    if op == "CopyObject":
        source = f"arn:aws:s3:::{bucket}/{operation['CopySourceKey']}"
        copied = "s3:GetObjectVersion" if operation.get("CopySourceVersionId") else "s3:GetObject"
        return [("s3:PutObject", key), (copied, source)]
    return [(f"s3:{op}", key)]
