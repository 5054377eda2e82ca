"""A fault-injecting HTTP proxy between the tool and the local stack.

One request per connection (it answers `Connection: close`, which botocore
handles by reconnecting), so each request can be judged on its own: forwarded,
or answered with a fault. The faults are the ones a client of real AWS meets:
S3 `503 SlowDown`, DynamoDB `ProvisionedThroughputExceededException` and
`ThrottlingException`, `500 InternalError`, a connection reset while the
request is sent (nothing reached the service) or while the response comes back
(the service did the work; the client does not know), slow answers, and a
BatchGetItem answered with every key "unprocessed" (a throttled read), and
refusals: `403 AccessDenied` (credentials without the permission) and `501
NotImplemented` (an S3-compatible server without conditional deletes), and a
`rewrite` of an answer's body (a read that returns other bytes than were stored). A `hook`
rule runs the test's code just before it forwards a request (another writer
acting between the tool's read and its write). A
`kill` rule calls back the test (which SIGKILLs the tool) at the Nth matching
request, before or after forwarding it: a crash at a chosen point, with no hook
in the product.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from tests.helpers import command_env

FaultKind = Literal[
    "throttle",
    "internal",
    "reset_request",
    "reset_response",
    "slow",
    "kill",
    "unprocessed",
    "hook",
    "denied",
    "not_implemented",
    "rewrite",
]


@dataclass
class Rule:
    kind: FaultKind
    service: Literal["s3", "dynamodb", "any"] = "any"
    operation: str | None = None  # "PutObject", "TransactWriteItems", ...
    key_contains: str | None = None  # S3: only keys containing this
    key: str | None = None  # S3: only this key
    header: str | None = None  # only requests carrying this header ("if-match")
    rate: float = 0.0  # chance per matching request
    nth: int | None = None  # or exactly the nth matching request (1-based)
    delay: float = 0.3  # for "slow"
    after: bool = False  # for "kill": after the service has done the work
    hook: Callable[[], None] | None = None  # for "hook": run before the request goes on
    on_request: Callable[[Request], None] | None = None  # for "hook": the same, told the request
    body: Callable[[bytes], bytes] | None = None  # for "rewrite": the answer's new body
    seen: int = 0
    fired: int = 0


@dataclass
class Request:
    head: bytes
    body: bytes
    method: str
    path: str
    headers: dict[str, str]

    @property
    def service(self) -> str:
        return "dynamodb" if "x-amz-target" in self.headers else "s3"

    @property
    def operation(self) -> str:
        if self.service == "dynamodb":
            return self.headers["x-amz-target"].split(".")[-1]
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        has_key = len(segments) > 1
        if self.method == "PUT" and "x-amz-copy-source" in self.headers:
            return "CopyObject"
        names = {
            ("PUT", True): "PutObject",
            ("PUT", False): "CreateBucket",
            ("GET", True): "GetObject",
            ("GET", False): "ListObjectsV2",
            ("HEAD", True): "HeadObject",
            ("HEAD", False): "HeadBucket",
            ("DELETE", True): "DeleteObject",
        }
        return names.get((self.method, has_key), self.method)

    @property
    def key(self) -> str:
        segments = [s for s in urlsplit(self.path).path.split("/") if s]
        return unquote("/".join(segments[1:]))


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Request(head, body, method, path, headers)


def _forwardable(request: Request) -> bytes:
    lines = request.head.decode("latin-1").split("\r\n")
    kept = [
        ln for ln in lines if ln.split(":", 1)[0].strip().lower() not in {"connection", "expect"}
    ]
    return ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + request.body


def _reset(conn: socket.socket) -> None:
    """Close with RST, as a dropped connection looks to the other side."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _unprocessed(request: Request, response: bytes) -> bytes:
    """DynamoDB's answer to a throttled BatchGetItem: nothing read, every key handed back."""
    asked = json.loads(request.body)["RequestItems"]
    body = json.dumps(
        {"Responses": {table: [] for table in asked}, "UnprocessedKeys": asked}
    ).encode()
    status = response.split(b"\r\n", 1)[0].decode("latin-1")
    head = (
        f"{status}\r\nContent-Type: application/x-amz-json-1.0\r\n"
        f"Content-Length: {len(body)}\r\nx-amz-crc32: {zlib.crc32(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _rewritten(response: bytes, body: Callable[[bytes], bytes]) -> bytes:
    """The same answer with another body: its length said, and no checksum header (as an
    object the app uploaded without one: botocore would otherwise catch the change)."""
    head, _, old = response.partition(b"\r\n\r\n")
    new = body(old)
    length = f"Content-Length: {len(new)}".encode()
    lines = [
        length if line.lower().startswith(b"content-length:") else line
        for line in head.split(b"\r\n")
        if not line.lower().startswith(b"x-amz-checksum")
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + new


def _error(request: Request, kind: str) -> bytes:
    if request.service == "dynamodb":
        status, name = {
            "throttle": (
                400,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            ),
            "throttle2": (400, "com.amazon.coral.availability#ThrottlingException"),
            "internal": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
        }[kind]
        body = json.dumps({"__type": name, "message": "injected by the fault proxy"}).encode()
        ctype = "application/x-amz-json-1.0"
    else:
        status, code = {"throttle": (503, "SlowDown"), "internal": (500, "InternalError")}[kind]
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        ctype = "application/xml"
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Slow Down"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _refusal(request: Request, kind: str) -> bytes:
    if request.service == "dynamodb":
        status, reason = 400, "Bad Request"
        name = "com.amazonaws.dynamodb.v20120810#AccessDeniedException"
        body = json.dumps({"__type": name, "message": "injected: not authorized"}).encode()
        ctype = "application/x-amz-json-1.0"
    else:
        status, reason, code = {
            "denied": (403, "Forbidden", "AccessDenied"),
            "not_implemented": (501, "Not Implemented", "NotImplemented"),
        }[kind]
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        ctype = "application/xml"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class FaultProxy:
    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    seed: int = 0
    on_kill: Callable[[], None] | None = None
    port: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._counted = threading.Condition(self._lock)
        self._server = socket.create_server(("127.0.0.1", self.port))
        self.port = self._server.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        # On Linux, close() alone does not wake a thread blocked in accept(): shutdown()
        # does, so the join below returns at once instead of after its 5 s.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(5)

    def wait_for(self, operation: str, count: int, timeout: float = 60) -> bool:
        """Block until `count` requests of `operation` have come through."""
        with self._counted:
            return self._counted.wait_for(lambda: self.operations[operation] >= count, timeout)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _choose(self, request: Request) -> Rule | None:
        with self._lock:
            self.operations[request.operation] += 1
            self._counted.notify_all()
            for rule in self.rules:
                if rule.service not in ("any", request.service):
                    continue
                if rule.operation and rule.operation != request.operation:
                    continue
                if rule.key_contains and rule.key_contains not in request.key:
                    continue
                if rule.key is not None and rule.key != request.key:
                    continue
                if rule.header and rule.header not in request.headers:
                    continue
                rule.seen += 1
                hit = rule.seen == rule.nth if rule.nth else self._rng.random() < rule.rate
                if hit:
                    rule.fired += 1
                    self.injected[rule.kind] += 1
                    return rule
        return None

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                conn.close()
                return
            rule = self._choose(request)
            kind = rule.kind if rule else None
            if kind == "reset_request":
                _reset(conn)
                return
            if kind in ("denied", "not_implemented"):
                conn.sendall(_refusal(request, kind))
                conn.close()
                return
            if kind in ("throttle", "internal"):
                flavour = (
                    "throttle2"
                    if kind == "throttle"
                    and request.service == "dynamodb"
                    and (self._rng.random() < 0.5)
                    else kind
                )
                conn.sendall(_error(request, flavour))
                conn.close()
                return
            if kind == "kill" and rule and not rule.after and self.on_kill:
                self.on_kill()
                _reset(conn)
                return
            if kind == "hook" and rule and rule.hook:
                rule.hook()  # another writer acts between the tool's read and its write
            if kind == "hook" and rule and rule.on_request:
                rule.on_request(request)
            response = self._forward(request)
            if kind == "kill" and rule and rule.after and self.on_kill:
                self.on_kill()
                _reset(conn)
                return
            if kind == "reset_response":
                conn.sendall(response[: max(1, len(response) // 2)])
                _reset(conn)
                return
            if kind == "unprocessed":
                response = _unprocessed(request, response)
            if kind == "rewrite" and rule and rule.body:
                response = _rewritten(response, rule.body)
            if kind == "slow" and rule:
                time.sleep(rule.delay)
            conn.sendall(response)
            conn.close()
        except OSError:
            conn.close()

    def _forward(self, request: Request) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            upstream.sendall(_forwardable(request))
            chunks = []
            while chunk := upstream.recv(1 << 20):
                chunks.append(chunk)
        return b"".join(chunks)


# The `faulty` fixture: make(s3_rules, ddb_rules, seed) -> (s3 proxy, dynamodb proxy, env).
ProxyPair = Callable[..., tuple[FaultProxy, FaultProxy, dict[str, str]]]


def killed_run(faulty: ProxyPair, args: list[str], service: str, rule: Rule) -> int:
    """`khpl-migrate ARGS` through fault proxies whose `rule` (a "kill", on `service`)
    SIGKILLs it at a chosen request; its exit status (-SIGKILL when the rule fired)."""
    victim: dict[str, subprocess.Popen[bytes]] = {}

    def kill() -> None:
        os.kill(victim["proc"].pid, signal.SIGKILL)

    s3_rules, ddb_rules = ([rule], []) if service == "s3" else ([], [rule])
    _, _, through = faulty(s3_rules, ddb_rules, on_kill=kill)
    victim["proc"] = subprocess.Popen(
        [sys.executable, "-m", "khpl_migrate", *args],
        env=command_env(through),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return victim["proc"].wait(timeout=120)


def fewer_records(keep: int) -> Callable[[bytes], bytes]:
    """A source's bytes with only its first `keep` records, padded with spaces to the same
    length: valid JSON of the size S3 announced, so only the count of records tells."""

    def body(old: bytes) -> bytes:
        records = json.loads(old)[:keep]
        new = json.dumps(records).encode()
        assert len(new) <= len(old)
        return new + b" " * (len(old) - len(new))

    return body
