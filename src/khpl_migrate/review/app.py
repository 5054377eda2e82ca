"""The review page's Starlette app: routes at module level, reading `request.app.state`.

It renders what `checks.py` and `records.py` compute; every action is a library
call the command line offers too (`archive-source`, `rollback --run`). Images
from S3 are served only as the image types a browser displays safely, never SVG
or HTML from the bucket.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.dataurls import sniff
from khpl_migrate.core.layout import archive_key, is_image_key
from khpl_migrate.core.masking import is_identity_field
from khpl_migrate.core.units import provenance
from khpl_migrate.cutover.archive import ArchiveResult, archive_source
from khpl_migrate.review import checks as checks_mod
from khpl_migrate.review import records
from khpl_migrate.review.cache import Lru
from khpl_migrate.review.guard import Guard
from khpl_migrate.rollback import plan_rollback, show_rollback
from khpl_migrate.settings import Settings

HERE = Path(__file__).parent
# The types a browser shows as an image without running anything in it.
SAFE_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
SYMBOLS = {"pass": "✔", "fail": "✘", "todo": "○"}


class ReviewState:
    """The server's state: the store, the latest checks, and bounded caches."""

    def __init__(self, store: Store, settings: Settings, checks: checks_mod.Checks) -> None:
        self.store, self.settings, self.bucket = store, settings, settings.require_bucket()
        self.checks = checks
        self.token = secrets.token_urlsafe(24)
        self.port = 0
        self.notice: str | None = None  # after an action that changed what the checks saw
        self._lock = threading.Lock()
        self.items: Lru[str, dict[str, Any] | None] = Lru(2_000)
        self.thumbs: Lru[tuple[str, str], bytes | None] = Lru(1_000)
        self.originals: Lru[str, records.Originals] = Lru(16)

    def recheck(self) -> None:
        checks = checks_mod.run_checks(
            self.store, self.settings, allow_table_edits=self.checks.accepting
        )
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

    def image(self, ref: records.ImageRef) -> tuple[bytes, str] | None:
        """An image object's bytes and ETag; only keys under the images prefix are read."""
        if not is_image_key(ref.key):
            return None
        found = self.store.get_object(self.bucket, ref.key)
        return None if found is None else (found[0], found[1].etag)

    def original(self, rid: str, run_id: str) -> records.Originals:
        key = self.checks.backup_of_run(run_id)
        return self.originals.get(
            f"{key}\n{rid}",
            lambda: records.original_images(self.store, self.settings, key, rid),
        )


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["rollback_command"] = checks_mod.rollback_command
    templates.env.globals["plural"] = checks_mod.plural
    templates.env.filters["query"] = lambda params: urlencode(
        {k: v for k, v in params.items() if v}
    )
    return templates


TEMPLATES = _templates()


def _state(request: Request) -> ReviewState:
    state: ReviewState = request.app.state.review
    return state


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    state = _state(request)
    context |= {
        "checks": state.checks,
        "notice": state.notice,
        "symbols": SYMBOLS,
        "words": {"=": "identical", "-": "missing", "*": "differs", "!": "unchecked"},
        "status_class": {"=": "same", "-": "missing", "*": "differs", "!": "unchecked"},
    }
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


def index(request: Request) -> Response:
    state = _state(request)
    query = request.query_params.get("q", "").strip()
    number = _int(request.query_params.get("page"), 1)
    found = records.find(state.checks.rows, query, number)
    ids = [row.id for row in found.rows if row.id is not None]
    items = state.load_items(ids) if state.checks.summary.table_exists else {}
    cards = [_card(row, items.get(row.id or "")) for row in found.rows]
    lines = checks_mod.checklist(state.checks)
    return page(request, "index.html", lines=lines, found=found, cards=cards)


def record(request: Request) -> Response:
    state = _state(request)
    rid = request.path_params["rid"]
    row = state.checks.row(rid)
    if row is None:
        return page(request, "missing.html", 404, rid=rid)
    item = state.item(rid)
    compared = []
    originals = None
    if item is not None:
        originals = state.original(rid, str(item.get("migrationRunId", "")))
        for ref in records.image_refs(item):
            # An image a sync replaced since: its original is in that sync run's backup.
            found = state.original(rid, _run_of(item, ref.name))
            original = found.images.get(ref.name)
            compared.append(_compare(ref, state.image(ref), original))
    return page(
        request,
        "record.html",
        row=row,
        item=item,
        fields=records.shown_fields(item) if item else [],
        compared=compared,
        originals=originals,
    )


def image(request: Request) -> Response:
    state = _state(request)
    rid, name = request.path_params["rid"], request.path_params["name"]
    item = state.item(rid)
    ref = {ref.name: ref for ref in records.image_refs(item)}.get(name) if item else None
    if item is None or ref is None:
        return PlainTextResponse("no such image", status_code=404)
    if request.query_params.get("from", "table") == "backup":
        original = state.original(rid, _run_of(item, name)).images.get(name)
        if original is None:
            return PlainTextResponse("not in the backup", status_code=404)
        data, tag = original.data, f"backup:{original.sha256}"
    else:
        found = state.image(ref)
        if found is None:
            return PlainTextResponse("the image object is missing", status_code=404)
        data, tag = found
    if request.query_params.get("size", "full") == "thumb":
        small = state.thumbs.get((ref.key, tag), lambda: records.thumbnail(data))
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
    _state(request).recheck()
    return RedirectResponse("/", status_code=303)


def archive_form(request: Request) -> Response:
    return page(request, "archive.html", key=_today_key(_state(request)))


async def archive_post(request: Request) -> Response:
    form = await request.form()
    remove = form.get("remove_original") == "yes"
    if form.get("confirm") != "yes":
        key = _today_key(_state(request))
        return page(request, "archive.html", 400, key=key, error="Tick the confirmation")
    return await run_in_threadpool(_archive, request, remove)


def rollback_form(request: Request) -> Response:
    return page(request, "rollback.html", run_id=request.path_params["run_id"], plan=None)


async def rollback_post(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    if (await request.form()).get("confirm") != "yes":
        return page(request, "rollback.html", 400, run_id=run_id, plan=None)
    return await run_in_threadpool(_rollback_plan, request, run_id)


def failed(request: Request, exc: Exception) -> Response:
    # A foreseeable problem (AWS refused, the source changed or went): its message
    # and fix on the page, as the command line would print them; never a traceback.
    assert isinstance(exc, errors.KhplError)
    return page(request, "error.html", 409, message=exc.message, fix=exc.fix)


ROUTES = [
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


def create_app(state: ReviewState) -> Starlette:
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(Guard)],
        exception_handlers={errors.KhplError: failed},
    )
    app.state.review = state
    return app


def _archive(request: Request, remove: bool) -> Response:
    state = _state(request)
    result: ArchiveResult = archive_source(
        state.store,
        state.settings,
        remove_original=remove,
        allow_table_edits=state.checks.accepting,  # review --allow-table-edits
    )
    state.checks.archives[result.key] = True
    if result.removed_original:
        state.notice = (
            f"{result.source_uri} was removed; these checks read it before. To review again, "
            f"start review with --source-key {result.key}"
        )
    return page(request, "archived.html", result=result)


def _rollback_plan(request: Request, run_id: str) -> Response:
    """What `rollback --run` would delete (a dry run: reads only), and the command."""
    state = _state(request)
    plan = plan_rollback(state.store, state.settings, run_id)
    return page(request, "rollback.html", run_id=run_id, plan=show_rollback(plan).to_json())


def _run_of(item: dict[str, Any], name: str) -> str:
    """The run that wrote this image reference: its backup holds the original."""
    return provenance(item, ("image", name)) or str(item.get("migrationRunId", ""))


def _today_key(state: ReviewState) -> str:
    return archive_key(state.settings.source_key, datetime.now(UTC).date())


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or default)
    except ValueError:
        return default


def _card(row: checks_mod.RecordRow, item: dict[str, Any] | None) -> dict[str, Any]:
    """One row of the records table: a few fields (masked) and the image thumbnails."""
    fields = records.shown_fields(item) if item else []
    # The identity fields an operator looks for first, then the rest, a handful in all.
    first = [f for f in fields if is_identity_field(f[0])]
    rest = [f for f in fields if f not in first and f[0] != "name"]
    return {
        "row": row,
        "fields": (first + rest)[:6],
        "images": records.image_refs(item) if item else [],
    }


def _compare(
    ref: records.ImageRef, found: tuple[bytes, str] | None, original: Any
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
