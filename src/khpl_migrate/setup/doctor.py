"""`doctor`: a read-only preflight before a real run.

Who the caller is, and for the configured bucket and table: do they exist, in
which region, is versioning on (without it the backup is the only protection),
is public access blocked, is there default encryption, is point-in-time
recovery on, and may the caller do what the next command needs (IAM's policy
simulator where it answers, otherwise harmless read probes). Every finding that
is not fine comes with a fix. It writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from khpl_migrate.aws import Caller, Inspector, Store
from khpl_migrate.core import errors
from khpl_migrate.settings import Settings
from khpl_migrate.setup import policy
from khpl_migrate.setup.table import check_key_schema

Level = Literal["ok", "info", "warn", "fail"]
DEFAULT_ENCRYPTION = json.dumps(
    {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    separators=(",", ":"),
)


@dataclass(frozen=True)
class Finding:
    level: Level
    topic: str
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "topic": self.topic, "message": self.message, "fix": self.fix}


def doctor(store: Store, settings: Settings, command: str = "migrate") -> list[Finding]:
    inspect = store.inspector()
    out: list[Finding] = []
    caller = inspect.caller()
    if caller:
        out.append(Finding("ok", "caller", f"AWS says you are {caller.arn}"))
    else:
        out.append(
            Finding(
                "warn",
                "caller",
                "STS would not say who you are",
                "check the credentials: `aws sts get-caller-identity`",
            )
        )
    if settings.credentials_source == "react-app":
        out.append(
            Finding(
                "warn",
                "credentials",
                f"the keys come from REACT_APP_* variables in {settings.credentials_origin}, "
                "which Create React App builds into the browser bundle",
                "use an AWS profile (AWS_PROFILE) and rotate this key",
            )
        )
    out += _bucket(store, inspect, settings)
    out += _table(store, inspect, settings, command)
    out += _permissions(store, inspect, settings, command, caller)
    return out


def _bucket(store: Store, inspect: Inspector, settings: Settings) -> list[Finding]:
    bucket = settings.bucket
    if not bucket:
        return [Finding("fail", "bucket", "no bucket is set", errors.bucket_not_set().fix)]
    try:
        store.check_bucket(bucket)
    except errors.KhplError as exc:
        return [Finding("fail", "bucket", exc.message, exc.fix)]
    out = [Finding("ok", "bucket", f"s3://{bucket} exists")]
    region = inspect.bucket_region(bucket)
    if region and region != store.region:
        out.append(
            Finding(
                "warn",
                "region",
                f"the bucket is in {region}, the tool uses {store.region}",
                f"pass --region {region}",
            )
        )
    return out + _protection(inspect, bucket) + [_source(store, bucket, settings.source_key)]


def _protection(inspect: Inspector, bucket: str) -> list[Finding]:
    """Versioning, public access and default encryption: what protects the data at rest."""
    block = inspect.public_access_block(bucket)
    encryption = inspect.bucket_encryption(bucket)
    return [
        Finding("ok", "versioning", "versioning is on: overwritten objects can be recovered")
        if inspect.versioning(bucket) == "Enabled"
        else Finding(
            "warn",
            "versioning",
            "versioning is off: the backup the tool takes is the "
            "only protection for registrations.json",
            f"aws s3api put-bucket-versioning --bucket {bucket} "
            "--versioning-configuration Status=Enabled",
        ),
        Finding("ok", "public access", "public access is blocked")
        if block and all(block.values())
        else Finding(
            "warn",
            "public access",
            "PUBLIC ACCESS IS NOT BLOCKED: photos and Aadhaar "
            "copies could be made public by one bucket policy or ACL",
            f"aws s3api put-public-access-block --bucket {bucket} "
            "--public-access-block-configuration BlockPublicAcls=true,"
            "IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
        ),
        Finding("ok", "encryption", f"default encryption: {encryption}")
        if encryption
        else Finding(
            "info",
            "encryption",
            "no default encryption; what this tool writes is "
            "encrypted anyway (SSE-S3 or --kms-key-id)",
            f"aws s3api put-bucket-encryption --bucket {bucket} "
            "--server-side-encryption-configuration "
            f"'{DEFAULT_ENCRYPTION}'",
        ),
    ]


def _source(store: Store, bucket: str, key: str) -> Finding:
    source = store.head_object(bucket, key)
    if source is None:
        return Finding(
            "fail", "source", f"s3://{bucket}/{key} does not exist", "check --source-key"
        )
    return Finding("ok", "source", f"{key}: {source.size:,} bytes")


def _table(store: Store, inspect: Inspector, settings: Settings, command: str) -> list[Finding]:
    description = store.describe_table(settings.table)
    if description is None:
        level: Level = "info" if command == "create-table" else "fail"
        return [
            Finding(
                level,
                "table",
                f"table {settings.table} does not exist",
                "run `khpl-migrate create-table`",
            )
        ]
    try:
        check_key_schema(settings.table, description)
    except errors.KhplError as exc:
        return [Finding("fail", "table", exc.message, exc.fix)]
    out = [
        Finding(
            "ok",
            "table",
            f"table {settings.table} exists with key id ({description.get('TableStatus')})",
        )
    ]
    pitr = inspect.point_in_time_recovery(settings.table)
    if pitr is None:
        out.append(
            Finding(
                "info",
                "point-in-time recovery",
                "this endpoint has no point-in-time recovery (DynamoDB Local)",
            )
        )
    elif pitr:
        out.append(Finding("ok", "point-in-time recovery", "point-in-time recovery is on"))
    else:
        out.append(
            Finding(
                "warn",
                "point-in-time recovery",
                "point-in-time recovery is off",
                "run `khpl-migrate create-table` (it turns it on)",
            )
        )
    if not description.get("DeletionProtectionEnabled"):
        out.append(
            Finding(
                "warn",
                "deletion protection",
                "deletion protection is off",
                f"aws dynamodb update-table --table-name {settings.table} "
                "--deletion-protection-enabled",
            )
        )
    return out


# IAM's simulator asks about one resource: a key under each prefix stands for the prefix.
PROBE = "khpl-doctor-probe"


def simulated_grants(
    command: str, settings: Settings, region: str, account: str
) -> list[tuple[str, str]]:
    """The (action, ARN) pairs doctor asks IAM about: the real table's ARN, in the region
    in force and the caller's account (a policy scoped to them, as `iam-policy` advises,
    must pass), and a key standing for each prefix the command writes under."""
    bucket = settings.bucket or "YOUR-BUCKET-NAME"
    wanted = policy.grants(
        [command], bucket, settings.table, settings.source_key, region=region, account=account
    )
    return sorted((action, arn.replace("*", PROBE)) for action, arn in wanted)


def _permissions(
    store: Store, inspect: Inspector, settings: Settings, command: str, caller: Caller | None
) -> list[Finding]:
    if caller is None:
        decisions = None
        table = f"table {settings.table}"
    else:
        concrete = simulated_grants(command, settings, store.region, caller.account)
        decisions = inspect.simulate(caller.arn, concrete)
        table = policy.resource_arn("table", "", settings.table, "", store.region, caller.account)
    if decisions is None:
        return [
            Finding(
                "info",
                "permissions",
                f"IAM would not simulate the caller's policy; the reads "
                f"above worked, writes for `{command}` on {table} are not checked",
                f"compare with `khpl-migrate iam-policy --command {command}`",
            )
        ]
    denied = [f"{a} on {r}" for (a, r), allowed in decisions.items() if not allowed]
    if not denied:
        return [
            Finding(
                "ok", "permissions", f"every permission `{command}` needs on {table} is granted"
            )
        ]
    return [
        Finding(
            "fail",
            "permissions",
            "not granted: " + "; ".join(denied),
            f"attach the policy from `khpl-migrate iam-policy --command {command}`",
        )
    ]
