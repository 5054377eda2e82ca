"""`khpl-migrate freeze-source`: no more writes to registrations.json, for the cut-over.

Once the app runs on DynamoDB only, nothing should write the old source again:
a write the app still makes to it (a tab left open, an old build) would be an
edit no sync carries over. A bucket-policy statement of its own denies
`s3:PutObject` and `s3:DeleteObject` on the source key to everyone. Only that
statement is added, and only that statement is removed again (`--undo`): the
rest of the bucket's policy is left as it is. A dry run unless asked to apply.

`archive-source --remove-original` at the end of the cut-over finds the source
frozen by this very statement: `deletes_allowed` narrows it to deny writes only
while the original is deleted, then puts it back as it was (the source stays
frozen, so nothing can write a new registrations.json either).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.kernel.source import open_source
from khpl_migrate.settings import Settings

ACTIONS = ["s3:DeleteObject", "s3:PutObject"]


def sid(source_key: str) -> str:
    """The statement's own Sid: one per source key (Sids are letters and digits only)."""
    return "KhplFreezeSource" + hashlib.sha256(source_key.encode()).hexdigest()[:8]


def statement(bucket: str, source_key: str) -> dict[str, Any]:
    return {
        "Sid": sid(source_key),
        "Effect": "Deny",
        "Principal": "*",
        "Action": ACTIONS,
        "Resource": f"arn:aws:s3:::{bucket}/{source_key}",
    }


def _writes_only(frozen: dict[str, Any]) -> dict[str, Any]:
    """The statement narrowed while archive-source deletes the original: writes still denied."""
    return {**frozen, "Action": ["s3:PutObject"]}


class FreezeAltered(errors.KhplError):
    """A statement carries freeze-source's Sid but is not what freeze-source wrote."""

    exit_code = 1


@dataclass(frozen=True)
class FreezeResult:
    bucket: str
    source_key: str
    statement: dict[str, Any]
    undo: bool
    applied: bool  # False: a dry run
    changed: bool  # the policy was (or would be) changed
    frozen: bool  # the source is frozen once this call returns

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "sourceKey": self.source_key,
            "statement": self.statement,
            "undo": self.undo,
            "applied": self.applied,
            "changed": self.changed,
            "frozen": self.frozen,
        }


def is_frozen(store: Store, bucket: str, source_key: str) -> bool:
    policy = store.bucket_policy(bucket) or {}
    return any(s.get("Sid") == sid(source_key) for s in _statements(policy))


def freeze(
    store: Store, settings: Settings, *, undo: bool = False, apply: bool = False
) -> FreezeResult:
    """Add (or, with `undo`, remove) the freeze statement; only say what would change unless
    `apply`."""
    if undo:
        # The source may be gone (archive-source --remove-original leaves it frozen):
        # lifting the freeze needs only its key.
        bucket, key = settings.require_bucket(), settings.source_key
    else:
        source = open_source(store, settings)
        bucket, key = source.bucket, source.info.key
    wanted = statement(bucket, key)
    policy = store.bucket_policy(bucket)
    current = _statements(policy or {})
    others = [s for s in current if s.get("Sid") != wanted["Sid"]]
    ours = [s for s in current if s.get("Sid") == wanted["Sid"]]
    if undo:
        changed = bool(ours)
        after: dict[str, Any] | None = _with(policy, others) if others else None
    else:
        changed = ours != [wanted]
        after = _with(policy, [*others, wanted])
    if apply and changed:
        store.set_bucket_policy(bucket, after)
    return FreezeResult(
        bucket,
        key,
        wanted,
        undo,
        apply,
        changed,
        frozen=(not undo) if apply else bool(ours),
    )


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def _with(policy: dict[str, Any] | None, statements: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(policy) if policy else {"Version": "2012-10-17"}
    document["Statement"] = statements
    return document


@contextmanager
def deletes_allowed(store: Store, bucket: str, source_key: str) -> Iterator[bool]:
    """While the block runs, the tool's own freeze of the source denies writes only, so the
    original can be deleted; afterwards the statement is exactly what freeze-source wrote.
    Yields whether the source is frozen by it.

    Only the statement with the tool's Sid is replaced, in its place, each time on a
    fresh read of the policy: every other statement stays as it is. A statement with the
    tool's Sid that is neither form the tool writes is someone's edit: refused, untouched.
    """
    ours = statement(bucket, source_key)
    found = [
        s for s in _statements(store.bucket_policy(bucket) or {}) if s.get("Sid") == ours["Sid"]
    ]
    if not found:
        yield False
        return
    if any(s not in (ours, _writes_only(ours)) for s in found):
        raise FreezeAltered(
            f"The bucket policy's statement {ours['Sid']} is not the one freeze-source wrote "
            f"for s3://{bucket}/{source_key}; nothing was removed and the policy was not changed",
            "look at the bucket policy: `khpl-migrate freeze-source --apply` writes the "
            "statement again, `freeze-source --undo --apply` removes it",
        )
    _replace_ours(store, bucket, _writes_only(ours))
    try:
        yield True
    finally:
        _replace_ours(store, bucket, ours)


def _replace_ours(store: Store, bucket: str, wanted: dict[str, Any]) -> None:
    policy = store.bucket_policy(bucket)
    current = _statements(policy or {})
    if any(s.get("Sid") == wanted["Sid"] for s in current):
        statements = [wanted if s.get("Sid") == wanted["Sid"] else s for s in current]
    else:
        statements = [*current, wanted]
    store.set_bucket_policy(bucket, _with(policy, statements))
