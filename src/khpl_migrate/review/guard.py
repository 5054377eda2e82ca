"""The request guard: the page shows personal data, so every request must prove itself.

- the Host header must be this server's (DNS rebinding);
- the secret token from the printed address, then the cookie it is traded for
  (like Jupyter), so another user or process on the machine cannot read the page;
- a POST must come from this origin;
- every answer carries a strict Content-Security-Policy (no script, style or
  image from anywhere else), `no-store`, and framing is refused.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

HOST = "127.0.0.1"
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


class Guard(BaseHTTPMiddleware):
    """Host check, the session token, POST origin check, and the security headers.

    The token and the port are the app's state (`app.state.review`)."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = refuse(request, request.app.state.review)
        if response is None:
            response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def refuse(request: Request, state: Any) -> Response | None:
    """The answer that turns `request` away, or None when it may pass."""
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
