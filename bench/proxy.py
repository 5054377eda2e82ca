"""A TCP proxy that adds a fixed delay to every request/response exchange, and can shape
the bandwidth of the link it stands for.

Between a client and the local stack it forwards bytes both ways; each time the
client starts talking after the server has answered (a new request on a
keep-alive connection, or a body after `100 Continue`), it waits `delay`
seconds first. That is one network round trip per exchange, as a client far
from its AWS region sees, while the stack itself stays on loopback.

With `down_bps` and `up_bps` (bits per second) it is also a link of that
bandwidth, shared by every connection through it (`Link`; one `Link` may be given
to several proxies to put them on one line): each direction is a FIFO pacer, and
a chunk of n bytes takes `n * 8 / rate` seconds of the line from the moment it is
both read and the line is free; it is forwarded when its slot ends. Chunks are at
most 64 KiB (10 ms at 50 Mbps), so the pacing is fine-grained and many
connections share the line in turn, as a broadband line's queue shares it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

CHUNK = 65536


class Pacer:
    """One direction of a link: `bps` bits per second, first come first served.

    Thread-safe (a `Link` may be shared by proxies, each running its own event loop
    in its own thread); the clock is the monotonic one asyncio's loops use too."""

    def __init__(self, bps: float) -> None:
        if bps <= 0:
            raise ValueError("a link's rate must be positive")
        self.bps = bps
        self._free_at = 0.0
        self._lock = threading.Lock()

    def reserve(self, nbytes: int) -> float:
        """Book the line for `nbytes`; how long to wait until they have crossed it."""
        with self._lock:
            now = time.monotonic()
            self._free_at = max(now, self._free_at) + nbytes * 8 / self.bps
            return self._free_at - now

    async def carry(self, nbytes: int) -> None:
        wait = self.reserve(nbytes)
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class Link:
    """A line's two directions; either may be unshaped (None)."""

    down_bps: float | None = None  # service -> client
    up_bps: float | None = None  # client -> service
    down: Pacer | None = field(default=None, init=False, repr=False)
    up: Pacer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.down = Pacer(self.down_bps) if self.down_bps else None
        self.up = Pacer(self.up_bps) if self.up_bps else None


@dataclass
class _Turn:
    server_spoke: bool = True  # a new connection starts with the client's first request
    request: tuple[str, str] = ("", "")  # the method and path of the exchange under way


def _request_line(chunk: bytes) -> tuple[str, str] | None:
    """The method and path (no query) where `chunk` starts an HTTP/1.x request, else None
    (a body sent after `100 Continue` starts with its own bytes)."""
    line, _, _ = chunk[:8192].partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[0].isalpha():
        return None
    path = urllib.parse.unquote(parts[1].decode("latin-1").partition("?")[0])
    return parts[0].decode("ascii"), path


@dataclass
class DelayProxy:
    upstream_port: int
    delay: float = 0.020
    port: int = 0
    down_bps: float | None = None  # a shaped link: service -> client, bits per second
    up_bps: float | None = None  # client -> service
    link: Link | None = None  # a line shared with other proxies (else one of its own)
    exchanges: int = 0
    bytes_sent: int = 0  # client -> service
    bytes_received: int = 0  # service -> client
    # Service -> client bytes of GET exchanges (headers included), by path: which object
    # was read how many times over.
    get_received: Counter[str] = field(default_factory=Counter)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.link is None and (self.down_bps or self.up_bps):
            self.link = Link(self.down_bps, self.up_bps)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DelayProxy:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port)
            )
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            server.close()
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=serve, name="delay-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        turn = _Turn()
        up = self.link.up if self.link else None
        down = self.link.down if self.link else None

        async def upstream() -> None:
            while chunk := await client_r.read(CHUNK):
                if turn.server_spoke:
                    turn.server_spoke = False
                    turn.request = _request_line(chunk) or turn.request
                    self.exchanges += 1
                    await asyncio.sleep(self.delay)
                if up is not None:
                    await up.carry(len(chunk))
                self.bytes_sent += len(chunk)
                server_w.write(chunk)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            while chunk := await server_r.read(CHUNK):
                turn.server_spoke = True
                if down is not None:
                    await down.carry(len(chunk))
                self.bytes_received += len(chunk)
                method, path = turn.request
                if method == "GET":
                    self.get_received[path] += len(chunk)
                client_w.write(chunk)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (client_w, server_w):
                writer.close()
