"""The one place that talks to AWS: only this package imports boto3 or botocore."""

from khpl_migrate.aws.clients import sdk_versions
from khpl_migrate.aws.expressions import (
    ABSENT,
    ItemRejected,
    Path,
    Update,
    from_attribute_values,
    key_named,
    to_attribute_values,
)
from khpl_migrate.aws.inspector import Caller, Inspector
from khpl_migrate.aws.items import BATCH_GET_KEYS, TRANSACT_BYTES, TRANSACT_ITEMS
from khpl_migrate.aws.objects import RUN_METADATA, ObjectInfo, PutOutcome
from khpl_migrate.aws.store import Store
from khpl_migrate.aws.stream import ResumingStream

__all__ = [
    "ABSENT",
    "BATCH_GET_KEYS",
    "RUN_METADATA",
    "TRANSACT_BYTES",
    "TRANSACT_ITEMS",
    "Caller",
    "Inspector",
    "ItemRejected",
    "ObjectInfo",
    "Path",
    "PutOutcome",
    "ResumingStream",
    "Store",
    "Update",
    "from_attribute_values",
    "key_named",
    "sdk_versions",
    "to_attribute_values",
]
