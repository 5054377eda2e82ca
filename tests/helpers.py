"""Small helpers the integration and command tests share: seed, snapshot, read back."""

from __future__ import annotations

import hashlib
from typing import Any

from khpl_migrate import sample
from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.transform import restore


def put_source(
    store: Store, settings: Settings, records: list[Any] | None = None, *, raw: bytes | None = None
) -> bytes:
    body = raw if raw is not None else sample.source_bytes(records or [])
    assert settings.bucket
    store.put_object(settings.bucket, settings.source_key, body, "application/json")
    return body


def objects(store: Store, settings: Settings) -> dict[str, str]:
    """Every object in the bucket: key -> sha256 of its bytes."""
    assert settings.bucket
    out = {}
    for info in store.list_objects(settings.bucket, ""):
        data = store.get_bytes(settings.bucket, info.key)
        assert data is not None
        out[info.key] = hashlib.sha256(data).hexdigest()
    return out


def items(store: Store, settings: Settings) -> dict[str, dict[str, Any]]:
    if store.describe_table(settings.table) is None:
        return {}
    return {str(item["id"]): item for item in store.scan(settings.table)}


def restored(store: Store, settings: Settings, item: dict[str, Any]) -> dict[str, Any]:
    """The source record rebuilt from the table item and the image objects in S3."""
    assert settings.bucket
    stored = {}
    for entry in item["imageUploadResults"].values():
        data = store.get_bytes(settings.bucket, entry["s3Key"])
        assert data is not None, entry["s3Key"]
        stored[entry["s3Key"]] = data
    return restore(item, stored)


def copies(records: list[dict[str, Any]], times: int) -> list[dict[str, Any]]:
    """`times` copies of the sample registrations, each with an id of its own."""
    return [{**r, "id": f"{r['id']}_{i}"} for i in range(times) for r in records]
