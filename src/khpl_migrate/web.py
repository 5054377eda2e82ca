"""`khpl-migrate review`: the post-migration checklist as a local web page.

A small Starlette app with Jinja2 templates, served by uvicorn on 127.0.0.1
only. It renders what `review.py` computes; every action is a library call the
command line offers too (`archive-source`, `rollback --run`).

The page shows personal data (names, photos, Aadhaar copies), so the server
takes care a generic dev server would not:
- it binds 127.0.0.1 alone, never 0.0.0.0;
- it answers only with the secret token from the URL it printed (then a
  cookie), like Jupyter, so another user or process on the machine cannot read it;
- it checks the Host header (DNS rebinding) and the Origin of every POST;
- a strict Content-Security-Policy: no script, style or image from anywhere else;
- nothing is cached by the browser, and images from S3 are served only as the
  image types a browser displays safely (never SVG or HTML from the bucket).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import secrets
import socket
import threading
import webbrowser
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from khpl_migrate import errors, review
from khpl_migrate.archive import ArchiveResult, archive_source
from khpl_migrate.aws import Store
from khpl_migrate.dataurls import sniff
from khpl_migrate.layout import archive_key, is_image_key
from khpl_migrate.masking import is_identity_field
from khpl_migrate.rollback import plan_rollback, show_rollback
from khpl_migrate.settings import Settings

HOST = "127.0.0.1"
HERE = Path(__file__).parent
# The types a browser shows as an image without running anything in it.
SAFE_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",  # "no-referrer" would send Origin: null on POST
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """A small thread-safe least-recently-used cache: memory stays bounded."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()  # outside the lock: S3 reads run in parallel
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class Review:
    """The server's state: the store, the latest checks, and bounded caches."""

    def __init__(self, store: Store, settings: Settings, checks: review.Checks) -> None:
        self.store, self.settings, self.bucket = store, settings, settings.require_bucket()
        self.checks = checks
        self.token = secrets.token_urlsafe(24)
        self.port = 0
        self.notice: str | None = None  # after an action that changed what the checks saw
        self._lock = threading.Lock()
        self.items: Lru[str, dict[str, Any] | None] = Lru(2_000)
        self.thumbs: Lru[tuple[str, str], bytes | None] = Lru(1_000)
        self.originals: Lru[str, review.Originals] = Lru(16)

    def recheck(self) -> None:
        checks = review.run_checks(self.store, self.settings)
        with self._lock:
            self.checks = checks
            self.notice = None
        for cache in (self.items, self.thumbs, self.originals):
            cache.clear()

    def item(self, rid: str) -> dict[str, Any] | None:
        if not self.checks.summary.table_exists:
            return None
        return self.items.get(rid, lambda: self.store.get_item(self.settings.table, rid))

    def load_items(self, rids: list[str]) -> dict[str, dict[str, Any]]:
        """One BatchGetItem for a page of records, kept for their thumbnails' requests."""
        found = self.store.get_items(self.settings.table, rids)
        for rid in rids:
            self.items.put(rid, found.get(rid))
        return found

    def image(self, ref: review.ImageRef) -> tuple[bytes, str] | None:
        """An image object's bytes and ETag; only keys under the images prefix are read."""
        if not is_image_key(ref.key):
            return None
        found = self.store.get_object(self.bucket, ref.key)
        return None if found is None else (found[0], found[1].etag)

    def original(self, rid: str, run_id: str) -> review.Originals:
        key = self.checks.backup_of_run(run_id)
        return self.originals.get(
            f"{key}\n{rid}",
            lambda: review.original_images(self.store, self.settings, key, rid),
        )


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["rollback_command"] = review.rollback_command
    templates.env.globals["plural"] = review.plural
    templates.env.filters["query"] = lambda params: urlencode(
        {k: v for k, v in params.items() if v}
    )
    return templates


SYMBOLS = {"pass": "✔", "fail": "✘", "todo": "○"}


def create_app(state: Review) -> Starlette:
    templates = _templates()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        checks = state.checks
        context |= {
            "checks": checks,
            "notice": state.notice,
            "symbols": SYMBOLS,
            "words": {"=": "identical", "-": "missing", "*": "differs", "!": "unchecked"},
            "status_class": {"=": "same", "-": "missing", "*": "differs", "!": "unchecked"},
        }
        return templates.TemplateResponse(request, name, context, status_code=status)

    def index(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        number = _int(request.query_params.get("page"), 1)
        found = review.find(state.checks.rows, query, number)
        ids = [row.id for row in found.rows if row.id is not None]
        items = state.load_items(ids) if state.checks.summary.table_exists else {}
        cards = [_card(row, items.get(row.id or "")) for row in found.rows]
        return page(
            request,
            "index.html",
            lines=review.checklist(state.checks),
            found=found,
            cards=cards,
        )

    def record(request: Request) -> Response:
        rid = request.path_params["rid"]
        row = state.checks.row(rid)
        if row is None:
            return page(request, "missing.html", 404, rid=rid)
        item = state.item(rid)
        compared = []
        originals = None
        if item is not None:
            originals = state.original(rid, str(item.get("migrationRunId", "")))
            for ref in review.image_refs(item):
                found = state.image(ref)
                original = originals.images.get(ref.name)
                compared.append(_compare(ref, found, original))
        return page(
            request,
            "record.html",
            row=row,
            item=item,
            fields=review.shown_fields(item) if item else [],
            compared=compared,
            originals=originals,
        )

    def image(request: Request) -> Response:
        rid, name = request.path_params["rid"], request.path_params["name"]
        origin = request.query_params.get("from", "table")
        size = request.query_params.get("size", "full")
        item = state.item(rid)
        refs = {ref.name: ref for ref in review.image_refs(item)} if item else {}
        ref = refs.get(name)
        if item is None or ref is None:
            return PlainTextResponse("no such image", status_code=404)
        if origin == "backup":
            original = state.original(rid, str(item.get("migrationRunId", ""))).images.get(name)
            if original is None:
                return PlainTextResponse("not in the backup", status_code=404)
            data, tag = original.data, f"backup:{original.sha256}"
        else:
            found = state.image(ref)
            if found is None:
                return PlainTextResponse("the image object is missing", status_code=404)
            data, tag = found
        if size == "thumb":
            small = state.thumbs.get((ref.key, tag), lambda: review.thumbnail(data))
            if small is None:
                return PlainTextResponse("does not decode as an image", status_code=422)
            return Response(small, media_type="image/jpeg")
        kind = sniff(data)
        if kind not in SAFE_IMAGE_TYPES:
            return PlainTextResponse(
                f"not shown: the bytes are {kind or 'not a known image type'}", status_code=415
            )
        return Response(data, media_type=kind)

    def recheck(request: Request) -> Response:
        state.recheck()
        return RedirectResponse("/", status_code=303)

    def archive_form(request: Request) -> Response:
        return page(request, "archive.html", key=_today_key(state))

    async def archive_post(request: Request) -> Response:
        form = await request.form()
        remove = form.get("remove_original") == "yes"
        if form.get("confirm") != "yes":
            return page(
                request, "archive.html", 400, key=_today_key(state), error="Tick the confirmation"
            )
        return await run_in_threadpool(_archive, request, state, page, remove)

    def rollback_form(request: Request) -> Response:
        return page(request, "rollback.html", run_id=request.path_params["run_id"], plan=None)

    async def rollback_post(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if (await request.form()).get("confirm") != "yes":
            return page(request, "rollback.html", 400, run_id=run_id, plan=None)
        return await run_in_threadpool(_rollback_plan, request, state, page, run_id)

    routes = [
        Route("/", index),
        Route("/records/{rid:path}", record),
        Route("/img/{rid}/{name}", image),
        Route("/check", recheck, methods=["POST"]),
        Route("/actions/archive", archive_form, methods=["GET"]),
        Route("/actions/archive", archive_post, methods=["POST"]),
        Route("/runs/{run_id}/rollback", rollback_form, methods=["GET"]),
        Route("/runs/{run_id}/rollback", rollback_post, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    def failed(request: Request, exc: Exception) -> Response:
        # A foreseeable problem (AWS refused, the source changed or went): its message
        # and fix on the page, as the command line would print them; never a traceback.
        assert isinstance(exc, errors.KhplError)
        return page(request, "error.html", 409, message=exc.message, fix=exc.fix)

    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, state=state)],
        exception_handlers={errors.KhplError: failed},
    )


def _archive(
    request: Request, state: Review, page: Callable[..., Response], remove: bool
) -> Response:
    result: ArchiveResult = archive_source(state.store, state.settings, remove_original=remove)
    state.checks.archives[result.key] = True
    if result.removed_original:
        state.notice = (
            f"{result.source_uri} was removed; these checks read it before. To review again, "
            f"start review with --source-key {result.key}"
        )
    return page(request, "archived.html", result=result)


def _rollback_plan(
    request: Request, state: Review, page: Callable[..., Response], run_id: str
) -> Response:
    """What `rollback --run` would delete (a dry run: reads only), and the command."""
    plan = plan_rollback(state.store, state.settings, run_id)
    return page(request, "rollback.html", run_id=run_id, plan=show_rollback(plan).to_json())


def _today_key(state: Review) -> str:
    from datetime import UTC, datetime

    return archive_key(state.settings.source_key, datetime.now(UTC).date())


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or default)
    except ValueError:
        return default


def _card(row: review.RecordRow, item: dict[str, Any] | None) -> dict[str, Any]:
    """One row of the records table: a few fields (masked) and the image thumbnails."""
    fields = review.shown_fields(item) if item else []
    # The identity fields an operator looks for first, then the rest, a handful in all.
    first = [f for f in fields if is_identity_field(f[0])]
    rest = [f for f in fields if f not in first and f[0] != "name"]
    return {
        "row": row,
        "fields": (first + rest)[:6],
        "images": review.image_refs(item) if item else [],
    }


def _compare(
    ref: review.ImageRef, found: tuple[bytes, str] | None, original: Any
) -> dict[str, Any]:
    migrated = found[0] if found else None
    verdict: str
    if migrated is None:
        verdict, same = "the migrated object is missing", False
    elif original is None:
        verdict, same = "the backup has no such image to compare with", False
    else:
        same = hashlib.sha256(migrated).hexdigest() == original.sha256
        verdict = (
            f"bytes identical (SHA-256 {original.sha256[:12]}…, {len(migrated):,} bytes)"
            if same
            else f"bytes differ: migrated {len(migrated):,} bytes, original {original.size:,} bytes"
        )
    return {"ref": ref, "same": same, "verdict": verdict, "has_original": original is not None}


class Guard(BaseHTTPMiddleware):
    """Host check, the session token, POST origin check, and the security headers."""

    def __init__(self, app: Any, state: Review) -> None:
        super().__init__(app)
        self.state = state

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = self._refuse(request)
        if response is None:
            response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _refuse(self, request: Request) -> Response | None:
        state = self.state
        allowed = {f"{HOST}:{state.port}", f"localhost:{state.port}"}
        if request.headers.get("host") not in allowed:
            return PlainTextResponse("Unexpected Host header", status_code=400)
        cookie = f"khpl_review_{state.port}"
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given, state.token):
            # Trade the token in the URL for a cookie, and take it out of the address bar.
            rest = {k: v for k, v in request.query_params.items() if k != "token"}
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            redirect = RedirectResponse(target, status_code=303)
            redirect.set_cookie(cookie, state.token, httponly=True, samesite="strict")
            return redirect
        if not hmac.compare_digest(request.cookies.get(cookie, ""), state.token):
            return PlainTextResponse(
                "Open the address `khpl-migrate review` printed (it carries this session's "
                "token); restart review for a new one.",
                status_code=403,
            )
        if request.method == "POST":
            origin = request.headers.get("origin")
            if origin is not None and origin not in {f"http://{a}" for a in allowed}:
                return PlainTextResponse("Cross-origin request refused", status_code=403)
        return None


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
    state: Review,
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
