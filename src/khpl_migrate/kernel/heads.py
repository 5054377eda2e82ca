"""What the image objects hold now: each one's run tag and SHA-256, read once.

An image is its reference together with the object it names (`core/ownership.py`):
an object that is there with other bytes, or without a run tag of the tool, is
another writer's. Sync's plan, a rollback's plan and its items' checks all ask
this of the same keys; one HEAD each (S3's stored SHA-256 checksum, or the bytes
read and hashed where the endpoint keeps none) answers them all.
"""

from __future__ import annotations

import threading

from khpl_migrate.aws import ObjectInfo, Store
from khpl_migrate.core.ownership import ObjectState


class Heads:
    """Each object's head and SHA-256, read once per plan (a rollback's item checks and
    its objects' steps ask about the same keys); safe to ask from the pool's threads."""

    def __init__(self, store: Store, bucket: str) -> None:
        self.store, self.bucket = store, bucket
        self._seen: dict[str, tuple[ObjectInfo, str] | None] = {}
        self._lock = threading.Lock()  # the pool's threads ask at once (sync's plan)

    def of(self, key: str) -> tuple[ObjectInfo, str] | None:
        with self._lock:
            if key in self._seen:
                return self._seen[key]
        info = self.store.head_object(self.bucket, key)
        found: tuple[ObjectInfo, str] | None = None
        if info is not None and info.run_id is None:
            # No run tag: another writer's object whatever it holds (and maybe with no
            # stored checksum): not worth reading to hash.
            found = (info, "")
        elif info is not None:
            found = (info, self.store.sha256_of(self.bucket, info))
        with self._lock:
            self._seen[key] = found
        return found

    def state(self, key: str) -> ObjectState | None:
        found = self.of(key)
        return None if found is None else (found[0].run_id, found[1])
