"""`khpl-migrate review`: the guide's post-migration checklist as a local web page.

- `checks.py`: the real checks and the checklist judged by them;
- `records.py`: records found, paged and masked; their images and originals;
- `app.py`: the Starlette app (routes at module level, state on `app.state`);
- `guard.py`: the request guard (token, Host, Origin, security headers);
- `cache.py`: the bounded caches; `server.py`: the socket and uvicorn.

Only `app.py`, `guard.py` and `server.py` load the web stack, and only the
`review` command imports them.
"""
