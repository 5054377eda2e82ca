"""archive-source: a checked copy, never a replaced archive, removal only when safe."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from typing import Any

import pytest

from khpl_migrate import errors
from khpl_migrate.archive import ArchiveRefused, archive_source
from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.verify import verify

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
