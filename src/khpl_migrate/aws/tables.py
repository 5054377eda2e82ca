"""DynamoDB's table: described, created (on demand, encrypted, protected), waited for,
and the pre-flight probe of a write that must be allowed before a rollback starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from khpl_migrate.aws.translate import ClientError, code, translate
from khpl_migrate.core import errors
from khpl_migrate.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class TableStore:
    """The table half of `Store`'s DynamoDB side."""

    settings: Settings
    ddb: DynamoDBClient
    _sleep: Callable[[float], None]

    def describe_table(self, table: str) -> dict[str, Any] | None:
        with translate(f"describe table {table}"):
            try:
                return dict(self.ddb.describe_table(TableName=table)["Table"])
            except ClientError as exc:
                if code(exc) == "ResourceNotFoundException":
                    return None
                raise

    def require_table(self, table: str) -> dict[str, Any]:
        description = self.describe_table(table)
        if description is None:
            raise errors.table_missing(table)
        return description

    def create_table(self, table: str) -> None:
        with translate(f"create table {table}"):
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
        with translate(f"enable point-in-time recovery on {table}"):
            try:
                self.ddb.update_continuous_backups(
                    TableName=table,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
                return True
            except ClientError as exc:
                if code(exc) in {"UnknownOperationException", "UnsupportedOperation"}:
                    return False
                raise

    def probe_item_write(self, table: str, probe_id: str, action: str) -> None:
        """Ask DynamoDB for a write (delete, update or put) on an id that does not exist,
        under a condition that cannot hold: refused for want of permission, it raises
        AccessDenied with the fix; allowed, nothing is written."""
        kwargs: dict[str, Any] = {
            "TableName": table,
            "ConditionExpression": "attribute_exists(#id)",
            "ExpressionAttributeNames": {"#id": "id"},
        }
        call: Callable[[], Any] = {
            "delete": lambda: self.ddb.delete_item(Key={"id": {"S": probe_id}}, **kwargs),
            "update": lambda: self.ddb.update_item(
                Key={"id": {"S": probe_id}},
                UpdateExpression="SET #p = :p",
                ExpressionAttributeNames={"#id": "id", "#p": "khplProbe"},
                ExpressionAttributeValues={":p": {"S": "probe"}},
                TableName=table,
                ConditionExpression="attribute_exists(#id)",
            ),
            "put": lambda: self.ddb.put_item(Item={"id": {"S": probe_id}}, **kwargs),
        }[action]
        with translate(f"{action} items in table {table}"):
            try:
                call()
            except ClientError as exc:
                if code(exc) == "ConditionalCheckFailedException":
                    return
                raise
        raise errors.AwsError(  # the condition held on an id nobody wrote: not DynamoDB
            f"Table {table} accepted a conditional {action} it should have refused",
            "point AWS_ENDPOINT_URL_DYNAMODB at DynamoDB (or DynamoDB Local)",
        )
