"""`create-table`: the table the guide's app expects, made safe to keep.

On-demand billing, key `id` (S), deletion protection and point-in-time
recovery on (docs/design.md). Idempotent: an existing table with the right key is
left as it is; one with another key is an error, never altered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.settings import Settings


@dataclass(frozen=True)
class TableResult:
    table: str
    created: bool
    status: str
    point_in_time_recovery: bool | None  # None: the endpoint has no such feature
    deletion_protection: bool | None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "created": self.created,
            "status": self.status,
            "pointInTimeRecovery": self.point_in_time_recovery,
            "deletionProtection": self.deletion_protection,
            "note": self.note,
        }


def check_key_schema(table: str, description: dict[str, Any]) -> None:
    keys = [(k["AttributeName"], k["KeyType"]) for k in description.get("KeySchema", [])]
    types = {
        a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])
    }
    if keys != [("id", "HASH")] or types.get("id") != "S":
        shown = ", ".join(f"{name} ({kind}, {types.get(name, '?')})" for name, kind in keys)
        raise errors.TableSchemaMismatch(
            f"Table {table} exists with key {shown}, but registrations need the key id (HASH, S)",
            "pass --table with another name, or remove that table if it is not in use",
        )


def create_table(store: Store, settings: Settings) -> TableResult:
    name = settings.table
    existing = store.describe_table(name)
    created = existing is None
    if existing is not None:
        check_key_schema(name, existing)
    else:
        store.create_table(name)
    description = store.wait_table_active(name)
    pitr: bool | None = store.enable_point_in_time_recovery(name)
    note = None
    if not pitr:
        if not settings.dynamodb_is_local:
            raise errors.AwsError(
                f"Point-in-time recovery could not be enabled on {name}",
                "enable it in the DynamoDB console (Backups tab) and run create-table again",
            )
        pitr, note = None, "point-in-time recovery is not available on DynamoDB Local; skipped"
    return TableResult(
        table=name,
        created=created,
        status=str(description.get("TableStatus")),
        point_in_time_recovery=pitr,
        deletion_protection=description.get("DeletionProtectionEnabled"),
        note=note,
    )
