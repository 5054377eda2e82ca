"""A TCP proxy that adds a fixed delay to every request/response exchange.

Between a client and the local stack it forwards bytes both ways; each time the
client starts talking after the server has answered (a new request on a
keep-alive connection, or a body after `100 Continue`), it waits `delay`
seconds first. That is one network round trip per exchange, as a client far
from its AWS region sees, while the stack itself stays on loopback.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field


@dataclass
class _Turn:
    server_spoke: bool = True  # a new connection starts with the client's first request


@dataclass
class DelayProxy:
    upstream_port: int
    delay: float = 0.020
    port: int = 0
    exchanges: int = 0
    bytes_sent: int = 0  # client -> service
    bytes_received: int = 0  # service -> client
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

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

        async def upstream() -> None:
            while chunk := await client_r.read(65536):
                if turn.server_spoke:
                    turn.server_spoke = False
                    self.exchanges += 1
                    await asyncio.sleep(self.delay)
                self.bytes_sent += len(chunk)
                server_w.write(chunk)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            while chunk := await server_r.read(65536):
                turn.server_spoke = True
                self.bytes_received += len(chunk)
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
