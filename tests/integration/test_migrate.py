"""The guide's flow against the local stack: every field and image byte read back."""

from __future__ import annotations

import base64
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.limits import MAX_ITEM_BYTES, item_size
from khpl_migrate.core.transform import RunStamp, transform
from khpl_migrate.kernel.runner import SerialRunner
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import Action, build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup import sample
from khpl_migrate.setup.table import create_table
from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.status import verify
from tests.helpers import items, objects, put_source, restored

pytestmark = pytest.mark.integration
READS = {
    "HeadBucket",
    "HeadObject",
    "GetObject",
    "ListObjectsV2",
    "DescribeTable",
    "BatchGetItem",
    "GetItem",
    "Scan",
}


def migrate(store: Store, settings: Settings) -> Any:
    return apply_plan(store, settings, build_plan(store, settings))


def test_the_guides_flow_moves_every_field_and_image_byte(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records)
    before = verify(store, settings)
    assert (before.s3_records, before.dynamo_records, before.table_exists) == (6, 0, False)
    assert not before.complete

    assert create_table(store, settings).created
    result = migrate(store, settings)
    assert (result.migrated, result.skipped, result.failed) == (6, 0, [])
    assert result.images == 18

    table = items(store, settings)
    assert set(table) == {r["id"] for r in sample_records}
    for record in sample_records:
        item = table[record["id"]]
        assert restored(store, settings, item) == record  # every field, every image byte
        assert item["migratedFrom"] == "S3"
        assert item["migrationRunId"] == result.run_id
        assert set(item["imageUploadResults"]) == {"userPhoto", "aadhaar", "paymentScreenshot"}
        assert item["registrationFee"] == Decimal("499.50")
        for entry in item["imageUploadResults"].values():
            head = store.s3.head_object(Bucket=settings.bucket or "", Key=entry["s3Key"])
            assert head["ContentType"] == entry["mimeType"]
            assert head["ServerSideEncryption"] == "AES256"
    assert table[sample_records[0]["id"]]["imageUploadResults"]["userPhoto"]["s3Key"] == (
        f"registration-images/{sample_records[0]['id']}/userPhoto.jpeg"
    )

    after = verify(store, settings)
    assert after.complete
    assert (after.s3_records, after.dynamo_records, after.in_both, after.marked_migrated) == (
        6,
        6,
        6,
        6,
    )
    assert list(after.by_date.values()) == [(6, 18)]


@pytest.mark.usefixtures("seeded")
def test_a_dry_run_sends_no_write_request(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    calls: list[tuple[str, str]] = []
    watched = Store(settings, observer=lambda service, op: calls.append((service, op)))
    before = objects(store, settings), items(store, settings)

    plan = build_plan(watched, settings)

    assert plan.count(Action.CREATE) == 6
    assert calls, "the observer saw no request at all"
    assert {op for _, op in calls} <= READS, calls
    assert ("dynamodb", "BatchGetItem") in calls
    assert (objects(store, settings), items(store, settings)) == before


@pytest.mark.usefixtures("seeded")
def test_running_again_changes_nothing(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    first = migrate(store, settings)
    table, stored = items(store, settings), objects(store, settings)

    second = migrate(store, settings)

    assert (second.migrated, second.skipped, second.failed) == (0, 6, [])
    assert items(store, settings) == table
    assert objects(store, settings) == stored  # not even a new backup or manifest
    assert (second.backup_key, second.manifest_key) == (None, None)
    assert first.run_id != second.run_id


def test_a_re_run_after_a_partial_run_migrates_only_the_rest(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records[:2])
    create_table(store, settings)
    first = migrate(store, settings)
    put_source(store, settings, sample_records)  # four more registrations arrived since

    second = migrate(store, settings)

    assert (first.migrated, second.migrated, second.skipped) == (2, 4, 2)
    assert second.backup_key and second.manifest_key
    assert verify(store, settings).complete


@pytest.mark.usefixtures("seeded")
def test_a_record_the_app_wrote_is_skipped_and_left_untouched(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    rid = sample_records[0]["id"]
    app_key = f"registration-images/{rid}/userPhoto.jpeg"
    app_item = {
        "id": rid,
        "name": "Written by the app",
        "imageUploadResults": {"userPhoto": {"s3Key": app_key}},
    }
    store.put_item_if_absent(settings.table, app_item)
    assert settings.bucket
    store.put_object(settings.bucket, app_key, b"the app's own photo", "image/jpeg")

    result = migrate(store, settings)

    assert (result.migrated, result.skipped, result.failed) == (5, 1, [])
    assert store.get_item(settings.table, rid) == app_item
    assert store.get_bytes(settings.bucket, app_key) == b"the app's own photo"


def test_an_image_object_with_other_bytes_is_never_overwritten(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    """The guide's key holds bytes the tool did not write (the app's, or a record deleted
    and re-added): the record's bytes get a key from their content instead, every run."""
    put_source(store, settings, sample_records[:2])
    create_table(store, settings)
    rid = sample_records[1]["id"]
    key = f"registration-images/{rid}/aadhaar.png"
    assert settings.bucket
    store.put_object(settings.bucket, key, b"other bytes", "image/png")

    result = migrate(store, settings)

    assert (result.migrated, result.failed) == (2, [])
    assert store.get_bytes(settings.bucket, key) == b"other bytes"
    ref = (store.get_item(settings.table, rid) or {})["imageUploadResults"]["aadhaar"]
    assert ref["s3Key"] == f"registration-images/{rid}/aadhaar-{ref['sha256'][:16]}.png"
    assert (
        hashlib.sha256(store.get_bytes(settings.bucket, ref["s3Key"]) or b"").hexdigest()
        == (ref["sha256"])
    )
    _, deep = deep_verify(store, settings)
    assert deep.ok, deep.lines()


def test_a_record_whose_both_keys_hold_other_bytes_fails_and_says_the_way_out(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records[:2])
    create_table(store, settings)
    record = sample_records[1]
    assert settings.bucket
    canonical = f"registration-images/{record['id']}/aadhaar.png"
    sha = hashlib.sha256(base64.b64decode(record["aadhaarCopy"].split(",", 1)[1])).hexdigest()
    derived = f"registration-images/{record['id']}/aadhaar-{sha[:16]}.png"
    for key in (canonical, derived):
        store.put_object(settings.bucket, key, b"the app's bytes", "image/png")

    result = migrate(store, settings)

    assert [(f.index, f.id) for f in result.failed] == [(1, record["id"])]
    assert "neither is overwritten. Fix:" in result.failed[0].reason
    for key in (canonical, derived):
        assert store.get_bytes(settings.bucket, key) == b"the app's bytes"
    assert store.get_item(settings.table, record["id"]) is None  # no item without its images


def test_the_backup_is_byte_identical_to_the_source(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    body = put_source(store, settings, sample_records)
    create_table(store, settings)
    result = migrate(store, settings)
    assert settings.bucket and result.backup_key
    assert result.backup_key.startswith("migration-backup-") and result.backup_key.endswith(
        "Z-registrations.json"
    )
    assert store.get_bytes(settings.bucket, result.backup_key) == body
    assert store.get_bytes(settings.bucket, settings.source_key) == body  # the source is untouched


def test_a_source_over_the_single_copy_limit_is_backed_up_by_a_multipart_copy(
    store: Store, settings: Settings
) -> None:
    """S3 copies at most 5 GiB in one request; a bigger source is copied in parts, each
    conditional on the checked ETag. Here the limit is lowered to 5 MiB for a 12 MiB
    object: three parts, the same bytes, and a source replaced meanwhile refused."""
    bucket = settings.require_bucket()
    body = bytes(range(256)) * (12 * 4096)  # 12 MiB
    store.put_object(bucket, "big.json", body, "application/json")
    info = store.head_object(bucket, "big.json")
    assert info is not None

    head = store.copy_object(bucket, info, "big-copy.json", single_limit=5 * 1024**2)

    assert head.size == len(body)
    assert store.get_bytes(bucket, "big-copy.json") == body
    assert store.sha256_of(bucket, head) == hashlib.sha256(body).hexdigest()
    store.put_object(bucket, "big.json", body[::-1], "application/json")  # replaced
    with pytest.raises(errors.SourceChanged):
        store.copy_object(bucket, info, "big-copy-2.json", single_limit=5 * 1024**2)


def test_a_truncated_source_is_refused_with_nothing_written(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    body = sample.source_bytes(sample_records)
    put_source(store, settings, raw=body[: len(body) - 1000])
    create_table(store, settings)
    before = objects(store, settings)

    with pytest.raises(errors.SourceInvalid, match="not valid JSON near byte"):
        build_plan(store, settings)

    assert objects(store, settings) == before
    assert items(store, settings) == {}


def test_bad_records_fail_with_index_id_and_reason_and_the_run_goes_on(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    good = sample_records[0]
    nested = {
        "id": "KHPL_nested",
        "fee": Decimal("499.50"),
        "big": 123456789012345678901234567890,
        "documents": [
            {"scan": "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4").decode()}
        ],
    }
    source: list[Any] = [
        good,
        {"id": "KHPL_badb64", "image": "data:image/png;base64,@@not-base64@@"},
        {"name": "no id here"},
        "not an object",
        dict(good),  # same id as index 0
        {"id": "KHPL_huge", "notes": "x" * (MAX_ITEM_BYTES + 1)},
        {"id": "KHPL_emptyname", "": "value"},
        nested,
    ]
    put_source(store, settings, source)
    create_table(store, settings)

    result = migrate(store, settings)

    assert result.migrated == 2 and result.skipped == 0
    failures = {f.index: (f.id, f.reason) for f in result.failed}
    assert sorted(failures) == [1, 2, 3, 4, 5, 6]
    assert failures[1][0] == "KHPL_badb64" and "invalid base64 at image" in failures[1][1]
    assert failures[2] == (None, "record has no id")
    assert "not a registration object" in failures[3][1]
    assert failures[4][0] == good["id"] and "duplicate id" in failures[4][1]
    assert "409,600" in failures[5][1]
    assert "empty attribute name" in failures[6][1]
    assert result.migrated + result.skipped + len(result.failed) == len(source)

    item = store.get_item(settings.table, "KHPL_nested")
    assert item is not None
    assert item["fee"] == Decimal("499.50") and item["big"] == 123456789012345678901234567890
    assert item["documents"] == [{}]
    key = item["imageUploadResults"]["documents.0.scan"]["s3Key"]
    assert key == "registration-images/KHPL_nested/documents.0.scan.pdf"
    assert settings.bucket and store.get_bytes(settings.bucket, key) == b"%PDF-1.4"


def test_our_item_size_agrees_with_dynamodb_at_the_400_kb_limit(
    store: Store, settings: Settings
) -> None:
    create_table(store, settings)
    stamp = RunStamp("run", "2025-12-19T10:30:00.000Z")
    base = transform({"id": "KHPL_edge", "notes": ""}, stamp)
    at_limit = {"id": "KHPL_edge", "notes": "x" * (MAX_ITEM_BYTES - base.item_size)}
    result = transform(at_limit, stamp)
    assert item_size(result.item) == MAX_ITEM_BYTES
    assert store.put_item_if_absent(settings.table, result.item)  # DynamoDB Local accepts it

    with pytest.raises(Exception, match="409,600"):
        transform({"id": "KHPL_edge2", "notes": "x" * (MAX_ITEM_BYTES - base.item_size + 1)}, stamp)


def test_the_run_manifest_records_every_outcome(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, [*sample_records[:3], {"no": "id"}])
    create_table(store, settings)
    result = apply_plan(store, settings, build_plan(store, settings), runner=SerialRunner())
    assert settings.bucket and result.manifest_key
    body = store.get_bytes(settings.bucket, result.manifest_key)
    assert body is not None
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines[0]["type"] == "run" and lines[0]["backupKey"] == result.backup_key
    assert (
        lines[0]["source"]["sha256"]
        == hashlib.sha256(store.get_bytes(settings.bucket, settings.source_key) or b"").hexdigest()
    )
    records = sorted((line for line in lines if line["type"] == "record"), key=lambda r: r["index"])
    assert sorted((r["index"], r["outcome"]) for r in records) == [
        (0, "migrated"),
        (1, "migrated"),
        (2, "migrated"),
        (3, "failed"),
    ]
    assert all(len(r["images"]) == 3 and r["itemWritten"] for r in records[:3])
    assert lines[-1]["type"] == "summary" and lines[-1]["migrated"] == 3
    assert result.manifest_path
    assert Path(result.manifest_path).read_bytes() == body


def test_create_table_is_idempotent_and_refuses_another_key_schema(
    store: Store, settings: Settings
) -> None:
    first = create_table(store, settings)
    second = create_table(store, settings)
    assert (first.created, second.created) == (True, False)
    assert first.deletion_protection is True
    description = store.describe_table(settings.table)
    assert description and description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    store.ddb.create_table(
        TableName=settings.table + "-other",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    other = Settings(**{**settings.__dict__, "table": settings.table + "-other"})
    with pytest.raises(errors.TableSchemaMismatch, match="key id"):
        create_table(store, other)


def test_migrate_needs_the_table(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, sample_records)
    with pytest.raises(errors.TableMissing, match="create-table"):
        build_plan(store, settings)


def test_an_item_the_app_writes_after_the_plan_is_not_overwritten(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    """The conditional put is what protects a record the live app writes mid-run."""
    put_source(store, settings, sample_records[:3])
    create_table(store, settings)
    plan = build_plan(store, settings)
    assert plan.count(Action.CREATE) == 3
    rid = sample_records[2]["id"]
    app_item = {"id": rid, "name": "registered in the app just now"}
    assert store.put_item_if_absent(settings.table, app_item)

    result = apply_plan(store, settings, plan, runner=SerialRunner())

    assert (result.migrated, result.skipped, result.failed) == (2, 1, [])
    assert store.get_item(settings.table, rid) == app_item


def test_a_backup_that_does_not_match_the_source_stops_the_run(
    store: Store, settings: Settings, sample_records: list[dict[str, Any]]
) -> None:
    from khpl_migrate.kernel.backups import make_backup
    from khpl_migrate.kernel.source import Digest, open_source

    body = put_source(store, settings, sample_records[:2])
    source = open_source(store, settings)
    wrong = Digest(sha256=hashlib.sha256(body + b" ").hexdigest(), size=len(body))
    with pytest.raises(errors.BackupFailed, match="does not hash to the source"):
        make_backup(store, source, wrong, "2025-12-19T10:30:00.000Z")
    right = Digest(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    key = make_backup(store, source, right, "2025-12-19T10:30:00.001Z")
    assert key == "migration-backup-2025-12-19T10:30:00.001Z-registrations.json"
