"""archive-source: a checked copy, never a replaced archive, removal only when safe."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.cutover.archive import ArchiveRefused, archive_source
from khpl_migrate.cutover.freeze import FreezeAltered, freeze, sid, statement
from khpl_migrate.settings import Settings
from khpl_migrate.verify.status import verify
from tests.helpers import app_sets, image_key, put_source

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 28)
KEY = "archive/registrations-2026-11-28.json"


@pytest.fixture
def body(store: Store, settings: Settings, migrated: list[dict[str, Any]]) -> bytes:
    """The migrated source's bytes."""
    data = store.get_bytes(settings.bucket or "", settings.source_key)
    assert data is not None
    return data


def test_archive_copies_the_exact_bytes_and_leaves_the_original(
    store: Store, settings: Settings, body: bytes
) -> None:
    bucket = settings.bucket or ""
    result = archive_source(store, settings, day=DAY)
    assert (result.key, result.already_archived, result.removed_original) == (KEY, False, False)
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert store.get_bytes(bucket, KEY) == body
    assert store.get_bytes(bucket, settings.source_key) == body
    again = archive_source(store, settings, day=DAY)
    assert again.already_archived and store.get_bytes(bucket, KEY) == body


def test_an_archive_with_other_bytes_is_never_replaced(
    store: Store, settings: Settings, body: bytes
) -> None:
    bucket = settings.bucket or ""
    store.put_object(bucket, KEY, b"[]", "application/json")
    with pytest.raises(ArchiveRefused, match="already exists and holds other bytes"):
        archive_source(store, settings, day=DAY, remove_original=True)
    assert store.get_bytes(bucket, KEY) == b"[]"
    assert store.get_bytes(bucket, settings.source_key) == body


def test_the_original_stays_while_a_record_is_not_identical(
    store: Store, settings: Settings, body: bytes, sample_records: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    victim = f"registration-images/{sample_records[0]['id']}/userPhoto.jpeg"
    store.put_object(bucket, victim, b"\xff\xd8\xff other bytes", "image/jpeg")
    with pytest.raises(ArchiveRefused, match="5 of 6 records identical") as caught:
        archive_source(store, settings, day=DAY, remove_original=True)
    assert caught.value.exit_code == 1 and "verify --deep" in caught.value.fix
    assert store.get_bytes(bucket, settings.source_key) == body
    assert store.get_bytes(bucket, KEY) == body  # archived all the same


def test_the_original_goes_after_a_complete_deep_verify_and_the_archive_verifies(
    store: Store, settings: Settings, body: bytes, sample_records: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    result = archive_source(store, settings, day=DAY, remove_original=True)
    assert result.removed_original
    assert store.head_object(bucket, settings.source_key) is None
    with pytest.raises(errors.SourceMissing) as caught:
        verify(store, settings)
    assert "--source-key archive/" in caught.value.fix
    report = verify(store, dataclasses.replace(settings, source_key=KEY))
    assert report.complete and report.in_both == len(sample_records)


def test_a_missing_source_is_a_clear_error(store: Store, settings: Settings) -> None:
    with pytest.raises(errors.SourceMissing):
        archive_source(store, settings, day=DAY)


# -- the end of the cut-over: the app's edits kept, the source frozen -------------------

THEIRS = {
    "Sid": "TheirsAlready",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:DeleteBucket",
    "Resource": "arn:aws:s3:::placeholder",
}


def _frozen_with_theirs(store: Store, settings: Settings) -> dict[str, Any]:
    """The bucket's policy holds someone's statement, then freeze-source's: returned as it is."""
    bucket = settings.bucket or ""
    theirs = {**THEIRS, "Resource": f"arn:aws:s3:::{bucket}"}
    store.set_bucket_policy(bucket, {"Version": "2012-10-17", "Statement": [theirs]})
    assert freeze(store, settings, apply=True).frozen
    policy = store.bucket_policy(bucket)
    assert policy is not None and len(policy["Statement"]) == 2
    return policy


def test_the_apps_edit_keeps_the_original_unless_table_edits_are_allowed(
    store: Store, settings: Settings, body: bytes, sample_records: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    app_sets(store, settings, sample_records[2]["id"], "village", "Edited by the app")
    policy = _frozen_with_theirs(store, settings)

    with pytest.raises(ArchiveRefused, match="edit made in DynamoDB") as caught:
        archive_source(store, settings, day=DAY, remove_original=True)
    assert "--allow-table-edits" in caught.value.fix
    assert store.get_bytes(bucket, settings.source_key) == body
    assert store.bucket_policy(bucket) == policy

    result = archive_source(store, settings, day=DAY, remove_original=True, allow_table_edits=True)
    assert result.removed_original and result.accepted_table_edits == 1
    assert store.head_object(bucket, settings.source_key) is None
    # The source stays frozen, and every statement is exactly as it was.
    assert result.frozen == sid(settings.source_key)
    assert store.bucket_policy(bucket) == policy


@pytest.mark.parametrize("other", ["damage in S3", "changed in the source", "lost record"])
def test_with_table_edits_allowed_any_other_difference_keeps_the_original(
    store: Store,
    settings: Settings,
    body: bytes,
    sample_records: list[dict[str, Any]],
    other: str,
) -> None:
    bucket = settings.bucket or ""
    app_sets(store, settings, sample_records[2]["id"], "village", "Edited by the app")
    if other == "damage in S3":
        store.s3.delete_object(Bucket=bucket, Key=image_key(sample_records[4], "aadhaar"))
    elif other == "changed in the source":
        edited = [dict(r) for r in sample_records]
        edited[3]["paymentStatus"] = "refunded"
        body = put_source(store, settings, edited)
    else:
        put_source(store, settings, [*sample_records, {**sample_records[0], "id": "KHPL_new"}])
        body = store.get_bytes(bucket, settings.source_key) or b""
    with pytest.raises(ArchiveRefused, match="records identical") as caught:
        archive_source(store, settings, day=DAY, remove_original=True, allow_table_edits=True)
    assert "--allow-table-edits" not in caught.value.fix
    assert store.get_bytes(bucket, settings.source_key) == body


def test_a_freeze_statement_someone_altered_is_refused_and_left_alone(
    store: Store, settings: Settings, body: bytes
) -> None:
    bucket = settings.bucket or ""
    altered = {
        **statement(bucket, settings.source_key),
        "Principal": {"AWS": "arn:aws:iam::1:root"},
    }
    store.set_bucket_policy(bucket, {"Version": "2012-10-17", "Statement": [altered]})
    with pytest.raises(FreezeAltered, match="not the one freeze-source wrote"):
        archive_source(store, settings, day=DAY, remove_original=True)
    assert store.bucket_policy(bucket) == {"Version": "2012-10-17", "Statement": [altered]}
    assert store.get_bytes(bucket, settings.source_key) == body
