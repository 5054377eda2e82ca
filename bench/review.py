"""Time `khpl-migrate review` on N migrated registrations of ~300 KB each (local stack).

    .venv/bin/python bench/review.py [--records 300]

Starts its own DynamoDB Local + moto, writes and migrates N registrations,
then starts the real `khpl-migrate review` and measures what an operator
waits for: the checks before the page is served, the first page with its
150 thumbnails fetched 6 at a time (as a browser does), and the record page of
the last record (its originals are found by streaming the whole backup).
Cold is the first request, warm the second (the server's caches). Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from data import write_source  # noqa: E402

from khpl_migrate import settings as settings_mod  # noqa: E402
from khpl_migrate.aws import Store  # noqa: E402
from khpl_migrate.migrate.apply import apply_plan  # noqa: E402
from khpl_migrate.migrate.plan import build_plan  # noqa: E402
from khpl_migrate.setup import local  # noqa: E402
from khpl_migrate.setup.table import create_table  # noqa: E402

BUCKET = "khpl-bench-review"


def _timed(call: object) -> float:
    began = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="khpl-bench-review-") as tmp:
        stack, _ = local.start(Path(tmp) / "stack")
        server = None
        try:
            env = {**stack.env(), "REACT_APP_S3_BUCKET_NAME": BUCKET}
            settings = settings_mod.load(env=env, state_dir=Path(tmp) / "state")
            store = Store(settings)
            store.create_bucket(BUCKET)
            source = Path(tmp) / "registrations.json"
            size = write_source(source, args.records, seed=7, pool=40)
            store.put_object(BUCKET, settings.source_key, source.read_bytes(), "application/json")
            create_table(store, settings)
            assert apply_plan(store, settings, build_plan(store, settings)).ok

            began = time.perf_counter()
            server = subprocess.Popen(
                [sys.executable, "-m", "khpl_migrate", "review"],
                env={**os.environ, **env, "KHPL_STATE_DIR": str(Path(tmp) / "state")},
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            ready = time.perf_counter() - began
            base = url.split("/?")[0]
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            opener.open(url).read()  # trades the token for the cookie

            def fetch(path: str) -> bytes:
                with opener.open(base + path) as response:
                    return bytes(response.read())

            def first_page() -> None:
                html = fetch("/").decode()
                thumbs = re.findall(r'src="(/img/[^"]+size=thumb)"', html)
                assert len(thumbs) == 150, len(thumbs)
                with ThreadPoolExecutor(6) as pool:
                    list(pool.map(fetch, [t.replace("&amp;", "&") for t in thumbs]))

            last = re.findall(r'href="(/records/[^"]+)"', fetch("/?page=99").decode())[-1]
            page_cold, page_warm = _timed(first_page), _timed(first_page)
            record_cold = _timed(lambda: fetch(last))
            record_warm = _timed(lambda: fetch(last))
            status = Path(f"/proc/{server.pid}/status").read_text()
            peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
            print(
                json.dumps(
                    {
                        "benchmark": "review",
                        "records": args.records,
                        "sourceMB": round(size / 1048576, 1),
                        "dynamodb": stack.dynamodb.kind,
                        "secondsUntilServed": round(ready, 2),
                        "firstPageWith150ThumbnailsSeconds": {
                            "cold": round(page_cold, 2),
                            "warm": round(page_warm, 2),
                        },
                        "lastRecordPageSeconds": {
                            "cold": round(record_cold, 2),
                            "warm": round(record_warm, 2),
                        },
                        "serverPeakRssMB": round(peak, 1),
                    }
                )
            )
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            local.stop(Path(tmp) / "stack")


if __name__ == "__main__":
    main()
