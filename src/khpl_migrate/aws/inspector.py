"""Read-only questions `doctor` asks about the account, the bucket and the table.

Each answers None where the endpoint cannot say (DynamoDB Local has no
point-in-time recovery; moto no policy simulator), so doctor can say
"not checked" rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.parsers import ResponseParserError

from khpl_migrate.aws.clients import Clients
from khpl_migrate.aws.translate import DENIED_CODES, ClientError, code, translate

# Doctor asks; it does not insist: two attempts, then "not checked".
_ATTEMPTS = 2


@dataclass(frozen=True)
class Caller:
    """Who STS says the caller is: the ARN, and the account the table's ARN is in."""

    arn: str
    account: str


class Inspector:
    def __init__(self, clients: Clients) -> None:
        self._clients = clients
        self._sts = clients.client("sts", max_attempts=_ATTEMPTS)
        self._iam = clients.client("iam", max_attempts=_ATTEMPTS)

    def _ask(self, what: str, call: Callable[[], Any], absent: set[str] | None = None) -> Any:
        with translate(what):
            try:
                return call()
            except ClientError as exc:
                if absent and code(exc) in absent:
                    return None
                if code(exc) in DENIED_CODES | {"UnknownOperationException", "NotImplemented"}:
                    return None
                raise
            except ResponseParserError:
                return None  # an endpoint that does not implement the call

    def caller(self) -> Caller | None:
        found = self._ask("ask STS who the caller is", self._sts.get_caller_identity)
        return Caller(str(found["Arn"]), str(found["Account"])) if found else None

    def bucket_region(self, bucket: str) -> str | None:
        found = self._ask(
            "read the bucket's region", lambda: self._clients.s3.get_bucket_location(Bucket=bucket)
        )
        return (found or {}).get("LocationConstraint") or ("us-east-1" if found else None)

    def versioning(self, bucket: str) -> str:
        found = self._ask(
            "read versioning", lambda: self._clients.s3.get_bucket_versioning(Bucket=bucket)
        )
        return str((found or {}).get("Status") or "Disabled")

    def public_access_block(self, bucket: str) -> dict[str, bool] | None:
        found = self._ask(
            "read the public access block",
            lambda: self._clients.s3.get_public_access_block(Bucket=bucket),
            {"NoSuchPublicAccessBlockConfiguration"},
        )
        return dict(found["PublicAccessBlockConfiguration"]) if found else None

    def bucket_encryption(self, bucket: str) -> str | None:
        found = self._ask(
            "read default encryption",
            lambda: self._clients.s3.get_bucket_encryption(Bucket=bucket),
            {"ServerSideEncryptionConfigurationNotFoundError"},
        )
        if not found:
            return None
        rule = found["ServerSideEncryptionConfiguration"]["Rules"][0]
        return str(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"])

    def point_in_time_recovery(self, table: str) -> bool | None:
        found = self._ask(
            "read continuous backups",
            lambda: self._clients.ddb.describe_continuous_backups(TableName=table),
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
