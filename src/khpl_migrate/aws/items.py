"""DynamoDB: the table, and items read consistently and written only under conditions.

No item is ever overwritten: puts carry `attribute_not_exists(id)`, deletes
carry the run id the item must still hold. Reads that decide something are
strongly consistent. Numbers stay exact `Decimal`s both ways (boto3's
serialiser), never floats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from khpl_migrate.aws.expressions import (
    Expression,
    ItemRejected,
    Path,
    Update,
    from_attribute_values,
    strings_of,
    to_attribute_values,
)
from khpl_migrate.aws.tables import TableStore
from khpl_migrate.aws.translate import ClientError, code, message, translate
from khpl_migrate.core import errors
from khpl_migrate.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# BatchGetItem takes at most 100 keys a request, TransactWriteItems 100 actions
# and 4 MB (DynamoDB quotas).
BATCH_GET_KEYS = 100
TRANSACT_ITEMS = 100
TRANSACT_BYTES = 3_500_000
# Unprocessed keys are throttled reads; this many rounds of backoff (about a
# minute in all) before the read gives up with RetriesExhausted.
BATCH_GET_ROUNDS = 16


class ItemStore(TableStore):
    """The DynamoDB half of `Store`: its items."""

    settings: Settings
    ddb: DynamoDBClient
    _sleep: Callable[[float], None]

    def owners(self, table: str, ids: Iterable[str]) -> dict[str, str | None]:
        """Which of `ids` have an item, each with the run that wrote it (None: no run of
        the tool did): BatchGetItem, 100 keys a call, two attributes of each item."""
        found = self.get_items(table, ids, attributes=("id", "migrationRunId"))
        return {
            rid: str(item["migrationRunId"]) if item.get("migrationRunId") else None
            for rid, item in found.items()
        }

    def get_items(
        self, table: str, ids: Iterable[str], *, attributes: tuple[str, ...] = ()
    ) -> dict[str, dict[str, Any]]:
        """The items of `ids` that exist, by id (BatchGetItem, 100 keys a call); with
        `attributes`, only those of each."""
        found: dict[str, dict[str, Any]] = {}
        batch: list[str] = []
        for rid in dict.fromkeys(ids):  # BatchGetItem refuses a key asked for twice
            batch.append(rid)
            if len(batch) == BATCH_GET_KEYS:
                found |= self._batch_get(table, batch, attributes)
                batch = []
        if batch:
            found |= self._batch_get(table, batch, attributes)
        return found

    def _batch_get(
        self, table: str, ids: list[str], attributes: tuple[str, ...]
    ) -> dict[str, dict[str, Any]]:
        keys: dict[str, Any] = {"Keys": [{"id": {"S": rid}} for rid in ids], "ConsistentRead": True}
        if attributes:
            names = {f"#a{n}": name for n, name in enumerate(attributes)}
            keys |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        request: dict[str, Any] = {table: keys}
        found: dict[str, dict[str, Any]] = {}
        with translate(f"read table {table}"):
            for attempt in range(1, BATCH_GET_ROUNDS + 1):
                try:
                    response = self.ddb.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    if code(exc) == "ResourceNotFoundException":
                        raise errors.table_missing(table) from None
                    raise
                for item in response.get("Responses", {}).get(table, []):
                    found[item["id"]["S"]] = from_attribute_values(dict(item))
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    return found
                if attempt < BATCH_GET_ROUNDS:
                    # Unprocessed keys are throttled reads: back off, never drop them.
                    self._sleep(min(0.05 * 2**attempt, 5.0))
        left = len(request[table]["Keys"])
        raise errors.RetriesExhausted(
            f"DynamoDB left {left} of {len(ids)} keys of {table} unprocessed "
            f"{BATCH_GET_ROUNDS} times in a row",
            "the table is throttled: wait, or raise its read capacity, and run again",
            last_cause=f"UnprocessedKeys: {left} keys",
        )

    def put_item_if_absent(self, table: str, item: dict[str, Any]) -> bool:
        """Put an item only where no item with its id exists. False when one does."""
        with translate(f"write to table {table}"):
            try:
                self.ddb.put_item(
                    TableName=table,
                    Item=to_attribute_values(item),
                    ConditionExpression="attribute_not_exists(#id)",
                    ExpressionAttributeNames={"#id": "id"},
                )
                return True
            except ClientError as exc:
                if code(exc) == "ConditionalCheckFailedException":
                    return False
                if code(exc) == "ValidationException":
                    raise ItemRejected(message(exc)) from None
                raise

    def delete_item_if_run(self, table: str, rid: str, run_id: str) -> bool:
        """Delete an item only while it still carries this run's id. False where it does not."""
        with translate(f"delete from table {table}"):
            try:
                self.ddb.delete_item(
                    TableName=table,
                    Key={"id": {"S": rid}},
                    ConditionExpression="#run = :run",
                    ExpressionAttributeNames={"#run": "migrationRunId"},
                    ExpressionAttributeValues={":run": {"S": run_id}},
                )
                return True
            except ClientError as exc:
                if code(exc) == "ConditionalCheckFailedException":
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
        with translate(f"write to table {table}"):
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
            except ClientError as exc:
                if code(exc) in {"TransactionCanceledException", "ValidationException"}:
                    return False
                raise

    def update_item_if(self, table: str, rid: str, update: Update) -> bool:
        """One UpdateItem, only while every expected path still holds what was read.
        False when one does not (the app changed the item in between)."""
        expression = Expression()
        clauses = []
        if update.set:
            assigns = (
                f"{expression.path(p)} = {expression.value(v)}" for p, v in update.set.items()
            )
            clauses.append("SET " + ", ".join(assigns))
        if update.remove:
            clauses.append("REMOVE " + ", ".join(expression.path(p) for p in update.remove))
        request: dict[str, Any] = {
            "TableName": table,
            "Key": {"id": {"S": rid}},
            "UpdateExpression": " ".join(clauses),
        }
        condition = expression.condition(update.expect)
        if condition:
            request["ConditionExpression"] = condition
        with translate(f"update an item of table {table}"):
            try:
                self.ddb.update_item(**(request | expression.request()))
                return True
            except ClientError as exc:
                if code(exc) == "ConditionalCheckFailedException":
                    return False
                if code(exc) == "ValidationException":
                    raise ItemRejected(message(exc)) from None
                raise

    def delete_item_if(
        self, table: str, rid: str, expect: Mapping[Path, Any]
    ) -> dict[str, Any] | None:
        """Delete an item only while every expected path still holds what was read. The
        item as it was deleted (a condition cannot say "and nothing else"; the caller
        checks), or None where the condition failed and nothing was deleted."""
        expression = Expression()
        condition = expression.condition({("id",): rid, **expect})
        with translate(f"delete from table {table}"):
            try:
                request: dict[str, Any] = {"TableName": table, "Key": {"id": {"S": rid}}}
                response = self.ddb.delete_item(
                    **request,
                    ConditionExpression=condition,
                    ReturnValues="ALL_OLD",
                    **expression.request(),
                )
            except ClientError as exc:
                if code(exc) == "ConditionalCheckFailedException":
                    return None
                raise
        return from_attribute_values(dict(response.get("Attributes") or {"id": {"S": rid}}))

    def delete_item_exactly(self, table: str, item: Mapping[str, Any]) -> str:
        """Delete an item only while it is exactly `item`, every attribute as read.

        "deleted"; "changed" when an attribute changed since the read (nothing deleted);
        "added" when the app added an attribute in between (a condition cannot say "and
        nothing else"): the item is put back as the app left it (or, where the app wrote
        a new one meanwhile, that one stays) and nothing is lost.
        """
        rid = str(item["id"])
        deleted = self.delete_item_if(table, rid, {(k,): v for k, v in item.items() if k != "id"})
        if deleted is None:
            return "changed"
        if set(deleted) - set(item):
            self.put_item_if_absent(table, deleted)
            return "added"
        return "deleted"

    def strings_under(self, table: str, prefix: str, segments: int = 4) -> dict[str, set[str]]:
        """By item id, the keys under `prefix` any string anywhere in the item names (nested
        in maps, lists and sets; a key itself, or a URL or path holding one): which image
        keys each item names. A parallel scan, strongly consistent."""

        def segment(number: int) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            pages = self.ddb.get_paginator("scan").paginate(
                TableName=table, Segment=number, TotalSegments=segments, ConsistentRead=True
            )
            for page in pages:
                for raw in page.get("Items", []):
                    keys: set[str] = set()
                    for value in raw.values():
                        strings_of(value, prefix, keys)
                    if keys:
                        found[str(raw["id"]["S"])] = keys
            return found

        with translate(f"read table {table}"), ThreadPoolExecutor(segments) as pool:
            return {
                rid: keys
                for part in pool.map(segment, range(segments))
                for rid, keys in part.items()
            }

    def get_item(self, table: str, rid: str) -> dict[str, Any] | None:
        with translate(f"read table {table}"):
            response = self.ddb.get_item(
                TableName=table, Key={"id": {"S": rid}}, ConsistentRead=True
            )
        item = response.get("Item")
        return from_attribute_values(dict(item)) if item else None

    def scan(
        self, table: str, attributes: tuple[str, ...] | None = None, *, consistent: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every item of the table, page by page (deserialised, numbers as Decimal)."""
        kwargs: dict[str, Any] = {"TableName": table}
        if consistent:
            kwargs["ConsistentRead"] = True
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            kwargs["ProjectionExpression"] = ", ".join(names)
            kwargs["ExpressionAttributeNames"] = names
        with translate(f"read table {table}"):
            for page in self.ddb.get_paginator("scan").paginate(**kwargs):
                for item in page.get("Items", []):
                    yield from_attribute_values(dict(item))
