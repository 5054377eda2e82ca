"""Run the real `khpl-migrate review` in a subprocess and talk to it over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from khpl_migrate.setup import sample


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class ReviewServer:
    """A `khpl-migrate review` process: its URL (with the token) and a cookie jar of one."""

    proc: subprocess.Popen[str]
    url: str
    stderr: list[str] = field(default_factory=list)
    cookie: str | None = None
    printed: str = ""  # the line on stdout

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.url).port or 0)

    @property
    def token(self) -> str:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)["token"][0]

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: str | None = None,
        host: str = "127.0.0.1",
        with_cookie: bool = True,
    ) -> Reply:
        conn = http.client.HTTPConnection(host, self.port, timeout=60)
        sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if with_cookie and self.cookie:
            sent["Cookie"] = self.cookie
        if body is not None:
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def log_in(self) -> Reply:
        """Open the printed URL once: the token becomes this client's cookie."""
        reply = self.request("GET", f"/?token={self.token}", with_cookie=False)
        assert reply.status == 303, reply
        self.cookie = reply.headers["set-cookie"].split(";")[0]
        return reply

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code


def _pump(stream: IO[str], sink: queue.Queue[str | None], keep: list[str] | None) -> None:
    for line in stream:
        if keep is not None:
            keep.append(line)
        sink.put(line)
    sink.put(None)


def start_review(
    env: dict[str, str],
    *args: str,
    cwd: Path | None = None,
    timeout: float = 120,
    command: str = "review",
) -> ReviewServer:
    """Start `khpl-migrate review ARGS` (or `command ARGS`, such as `rehearse FILE --review`)
    with `env`, wait for the URL it prints on stdout."""
    full = {"PATH": os.environ["PATH"], "HOME": env.get("HOME", "/nonexistent"), **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "khpl_migrate", command, *args],
        env=full,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, lines, None), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, queue.Queue(), errors), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"review printed no URL in {timeout} s: {''.join(errors)}") from None
    if line is None:
        proc.wait()
        raise AssertionError(f"review exited {proc.returncode}: {''.join(errors)}")
    printed = line.strip()
    # With --json the line is an object holding the address.
    url = json.loads(printed)["url"] if printed.startswith("{") else printed
    return ReviewServer(proc, url, errors, printed=printed)


def other_addresses() -> list[str]:
    """This machine's own IPv4 addresses that are not loopback."""
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(str(info[4][0]))
    except socket.gaierror:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outward address
            found.add(probe.getsockname()[0])
        except OSError:
            pass
    return sorted(ip for ip in found if not ip.startswith("127."))


DEMO_RECORDS = 25  # `khpl-migrate demo`'s default


class Demo:
    """`khpl-migrate demo --keep` with one record damaged afterwards, and review serving it."""

    def __init__(self, server: ReviewServer, env: dict[str, str], damaged: dict[str, Any]):
        self.server, self.env, self.damaged = server, env, damaged
        self.records = sample.registrations(DEMO_RECORDS)
