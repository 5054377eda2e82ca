"""Seeing every AWS call without patching boto3: an observer, and a trace file.

Tests pass an `observer` to watch every request (a dry run must send no write);
`KHPL_TRACE_OPERATIONS=FILE` appends every call's service, operation and
resource to FILE, which is how the least-privilege policy (`iam-policy`) is
held to what the tool really calls. Names only: never parameters that carry data.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Observer = Callable[[str, str], None]


def observe(clients: dict[str, Any], observer: Observer) -> None:
    """Call `observer(service, operation)` before every request of these clients."""
    for service, client in clients.items():
        client.meta.events.register(
            "before-call.*.*",
            lambda model, _service=service, **_: observer(_service, model.name),
        )


def trace_to(clients: dict[str, Any], path: Path) -> None:
    """Append every API call (service, operation, bucket/key or table) to `path`."""
    lock = threading.Lock()

    def record(model: Any, params: dict[str, Any], _service: str, **_: Any) -> None:
        line = {"service": _service, "operation": model.name}
        for name in ("Bucket", "Key", "TableName"):
            if name in params:
                line[name] = params[name]
        if params.get("VersionId"):
            line["VersionId"] = True
        if "CopySource" in params:
            line["CopySourceKey"] = params["CopySource"]["Key"]
            if params["CopySource"].get("VersionId"):
                line["CopySourceVersionId"] = True
        if "RequestItems" in params:
            line["TableName"] = next(iter(params["RequestItems"]))
        if "TransactItems" in params:
            first = params["TransactItems"][0]
            line["TableName"] = next(iter(first.values()))["TableName"]
        with lock, path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    # before-parameter-build sees the API parameters (before-call sees the wire request).
    for service, client in clients.items():
        client.meta.events.register(
            "before-parameter-build.*.*",
            lambda _service=service, **kw: record(_service=_service, **kw),
        )
