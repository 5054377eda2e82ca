"""`Store`: the facade the rest of the tool talks to AWS through.

It joins the S3 half (`objects.py`, with `copies.py` and `buckets.py`) and the
DynamoDB half (`items.py`, with `tables.py`; conditions in `expressions.py`) over one
set of clients (`clients.py`), so there is one set of retry rules, one
translation of AWS errors (`translate.py`) and one hook through which tests see
every request without patching boto3 (`tracing.py`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from khpl_migrate.aws import tracing
from khpl_migrate.aws.buckets import BucketStore
from khpl_migrate.aws.clients import Clients
from khpl_migrate.aws.copies import CopyStore
from khpl_migrate.aws.inspector import Inspector
from khpl_migrate.aws.items import ItemStore
from khpl_migrate.aws.objects import ObjectInfo
from khpl_migrate.aws.stream import ResumingStream
from khpl_migrate.settings import Settings


class Store(CopyStore, BucketStore, ItemStore):
    """S3 + DynamoDB for one settings object; thread-safe (boto3 clients are)."""

    def __init__(
        self,
        settings: Settings,
        *,
        observer: tracing.Observer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        traced: bool = True,
    ) -> None:
        """`traced=False`: calls stay out of KHPL_TRACE_OPERATIONS (a rehearsal's own
        local stack is not AWS, and the IAM policy is held to that trace)."""
        self.settings = settings
        self._sleep = sleep
        self.clients = Clients(settings)
        self.s3 = self.clients.s3
        self.ddb = self.clients.ddb
        watched = {"s3": self.s3, "dynamodb": self.ddb}
        trace = os.environ.get("KHPL_TRACE_OPERATIONS")
        if trace and traced:
            tracing.trace_to(watched, Path(trace))
        if observer is not None:
            tracing.observe(watched, observer)

    @property
    def region(self) -> str:
        return self.clients.region

    def open_stream(self, bucket: str, info: ObjectInfo) -> ResumingStream:
        """`open_object`, reopened where it stopped when the connection drops mid-stream."""
        return ResumingStream(self, bucket, info)

    def inspector(self) -> Inspector:
        """The read-only account and bucket questions `doctor` asks."""
        return Inspector(self.clients)
