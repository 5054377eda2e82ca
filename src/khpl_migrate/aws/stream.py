"""A pinned object stream that survives dropped connections.

botocore retries a request, not a body half read. When reading fails, the
same version is requested again from the byte where it stopped (a Range GET
with If-Match), up to `RESUMES` times; then the error carries the last cause.
"""

from __future__ import annotations

import logging
from typing import BinaryIO, Protocol

import botocore.exceptions
import urllib3.exceptions

from khpl_migrate.aws.objects import ObjectInfo
from khpl_migrate.core import errors

log = logging.getLogger(__name__)


class Opener(Protocol):
    def open_object(self, bucket: str, info: ObjectInfo, start: int = 0) -> BinaryIO: ...


class ResumingStream:
    RESUMES = 10

    def __init__(self, opener: Opener, bucket: str, info: ObjectInfo) -> None:
        self._opener, self._bucket, self._info = opener, bucket, info
        self._body = opener.open_object(bucket, info)
        self.position = 0
        self.resumed = 0

    def read(self, size: int = -1) -> bytes:
        while True:
            try:
                chunk: bytes = self._body.read(size)
            except (
                OSError,
                botocore.exceptions.BotoCoreError,
                urllib3.exceptions.HTTPError,
            ) as exc:
                if self.resumed >= self.RESUMES:
                    cause = f"{type(exc).__name__}: {exc}"
                    raise errors.RetriesExhausted(
                        f"Reading s3://{self._bucket}/{self._info.key} failed "
                        f"{self.resumed + 1} times; the last time at byte {self.position:,} "
                        f"({cause})",
                        "check the network and run the command again",
                        last_cause=cause,
                    ) from exc
                self.resumed += 1
                log.info("stream dropped at byte %d; resuming", self.position)
                self._body = self._opener.open_object(self._bucket, self._info, self.position)
                continue
            self.position += len(chunk)
            return chunk

    def close(self) -> None:
        """Let go of the connection of a stream not read to its end."""
        self._body.close()
