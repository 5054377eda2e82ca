"""The review page's server: a socket on 127.0.0.1 alone, and uvicorn serving the app on it."""

from __future__ import annotations

import errno
import socket
import threading
import webbrowser
from collections.abc import Callable

from khpl_migrate.core import errors
from khpl_migrate.review.app import ReviewState, create_app
from khpl_migrate.review.guard import HOST


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: a free one); clear errors when it cannot."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise errors.ConfigError(
                f"Port {port} on {HOST} is in use",
                "pass another --port, or leave --port out to take a free one",
            ) from None
        raise errors.ConfigError(
            f"Cannot listen on {HOST}:{port}: {exc.strerror}",
            "pass another --port (1024 or higher), or leave it out",
        ) from None
    sock.listen(128)
    return sock


def serve(
    state: ReviewState,
    sock: socket.socket,
    *,
    open_browser: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    import uvicorn

    state.port = sock.getsockname()[1]
    url = f"http://{HOST}:{state.port}/?token={state.token}"
    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,  # request lines would carry the token and record ids
        server_header=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(url)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    server.run(sockets=[sock])
