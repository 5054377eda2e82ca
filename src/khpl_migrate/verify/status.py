"""Source vs table: the guide's status report.

`verify` counts the records in `registrations.json` and in DynamoDB, which ids
are in both, only in S3 or only in DynamoDB, which items are marked as
migrated, and the migrated records and images per migration date (the guide's
`verifyMigration.js`). A missing table is not an error here: before
`create-table` the guide's report shows 0 DynamoDB records. The deep check,
every field and every image byte, is `deep.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core.errors import RecordError
from khpl_migrate.core.transform import MIGRATED_FROM, record_id
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.runs import tables_written
from khpl_migrate.settings import Settings

# Where the registration form keeps the player's name; the first present is shown.
NAME_FIELDS = ("name", "fullName", "playerName")


@dataclass(frozen=True)
class Unusable:
    index: int
    id: str | None
    reason: str


@dataclass
class VerifyReport:
    source_uri: str
    table: str
    table_exists: bool
    s3_records: int = 0
    dynamo_records: int = 0
    in_both: int = 0
    marked_migrated: int = 0
    only_in_s3: list[tuple[str, str | None]] = field(default_factory=list)
    only_in_dynamo: list[tuple[str, str | None]] = field(default_factory=list)
    by_date: dict[str, tuple[int, int]] = field(default_factory=dict)
    unusable: list[Unusable] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    # The table does not exist: the other tables the runs recorded in the bucket wrote to
    # (a --table or REACT_APP_DYNAMODB_TABLE_NAME that names the wrong one).
    run_tables: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every usable source record is in the table, and no record is unusable."""
        return self.table_exists and not self.only_in_s3 and not self.unusable

    def to_json(self) -> dict[str, Any]:
        return {
            "s3Records": self.s3_records,
            "dynamoRecords": self.dynamo_records,
            "inBoth": self.in_both,
            "markedMigrated": self.marked_migrated,
            "onlyInS3": [rid for rid, _ in self.only_in_s3],
            "onlyInDynamo": [rid for rid, _ in self.only_in_dynamo],
            "byMigrationDate": {
                day: {"records": records, "images": images}
                for day, (records, images) in sorted(self.by_date.items())
            },
            "unusable": [{"index": u.index, "id": u.id, "reason": u.reason} for u in self.unusable],
            "duplicateIds": self.duplicates,
            "tableExists": self.table_exists,
            "complete": self.complete,
            **({} if self.table_exists else {"tablesOfRuns": self.run_tables}),
        }


def display_name(record: Any) -> str | None:
    if isinstance(record, dict):
        for name in NAME_FIELDS:
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                return value
    return None


def verify(store: Store, settings: Settings) -> VerifyReport:
    source = source_mod.open_source(store, settings)
    table = store.describe_table(settings.table)
    report = VerifyReport(source.uri, settings.table, table_exists=table is not None)
    if table is None:
        written = tables_written(store, source.bucket)
        report.run_tables = [name for name in written if name != settings.table]
    in_source: dict[str, str | None] = {}
    dupes: list[str] = []
    for index, record in source_mod.iter_records(store, source):
        report.s3_records += 1
        try:
            rid = record_id(record)
        except RecordError as exc:
            shown = record.get("id") if isinstance(record, dict) else None
            report.unusable.append(Unusable(index, None if shown is None else str(shown), str(exc)))
            continue
        if rid in in_source:
            dupes.append(rid)
            continue
        in_source[rid] = display_name(record)
    report.duplicates = sorted(set(dupes))

    in_table: dict[str, str | None] = {}
    per_day: Counter[str] = Counter()
    images_per_day: Counter[str] = Counter()
    if table is not None:
        wanted = ("id", "migratedFrom", "migrationDate", "imageUploadResults", *NAME_FIELDS)
        for item in store.scan(settings.table, wanted):
            rid = str(item["id"])
            in_table[rid] = display_name(item)
            if item.get("migratedFrom") == MIGRATED_FROM:
                if rid in in_source:
                    report.marked_migrated += 1
                day = str(item.get("migrationDate", "unknown"))[:10]
                per_day[day] += 1
                images_per_day[day] += len(item.get("imageUploadResults") or {})
    report.dynamo_records = len(in_table)
    report.in_both = sum(1 for rid in in_source if rid in in_table)
    report.only_in_s3 = [(rid, name) for rid, name in in_source.items() if rid not in in_table]
    report.only_in_dynamo = [(rid, name) for rid, name in in_table.items() if rid not in in_source]
    report.by_date = {day: (per_day[day], images_per_day[day]) for day in per_day}
    return report
