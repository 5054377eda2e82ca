"""`khpl-migrate review` over HTTP: the token, the Host and Origin checks, the headers,
the image endpoint, the actions, and a clean stop. The browser tests drive the page itself."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from khpl_migrate.aws import Store
from khpl_migrate.core.dataurls import data_url
from khpl_migrate.settings import Settings
from tests.helpers import items, put_source, run
from tests.review_server import ReviewServer, other_addresses, start_review

pytestmark = pytest.mark.command
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>'


@pytest.fixture
def records(sample_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    drawing = {**sample_records[0], "id": "KHPL_svg", "image": data_url("image/svg+xml", SVG)}
    return [*sample_records, drawing]


@pytest.fixture
def served(
    store: Store, settings: Settings, env: dict[str, str], records: list[dict[str, Any]]
) -> Iterator[ReviewServer]:
    put_source(store, settings, records)
    assert run(["create-table"], env).returncode == 0
    assert run(["migrate", "--apply"], env).returncode == 0
    bucket = settings.bucket or ""
    # One damaged record: its photo replaced by another (valid) photo.
    other = store.get_bytes(bucket, f"registration-images/{records[1]['id']}/userPhoto.jpeg")
    assert other is not None
    store.put_object(
        bucket, f"registration-images/{records[2]['id']}/userPhoto.jpeg", other, "image/jpeg"
    )
    server = start_review(env)
    try:
        yield server
    finally:
        server.stop()


def test_review_prints_a_loopback_url_and_the_checklist(served: ReviewServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{30,}", served.url)
    err = "".join(served.stderr)
    assert "Post-migration checklist" in err
    assert "❌ Verify images display correctly" in err
    assert "✅ Check backup files were created" in err
    assert served.stop() == 0
    assert "Review stopped" in "".join(served.stderr)


def test_the_page_answers_only_with_the_token_it_printed(served: ReviewServer) -> None:
    refused = served.request("GET", "/", with_cookie=False)
    assert refused.status == 403 and "khpl-migrate review" in refused.text
    wrong = served.request("GET", "/?token=" + "x" * 32, with_cookie=False)
    assert wrong.status == 403
    login = served.log_in()
    assert login.headers["location"] == "/"  # the token leaves the address bar
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = served.request("GET", "/")
    assert page.status == 200 and "Post-migration checklist" in page.text
    assert served.token not in page.text
    for path in ("/records/KHPL_svg", "/img/KHPL_svg/aadhaar?size=thumb", "/static/review.css"):
        assert served.request("GET", path, with_cookie=False).status == 403, path


def test_a_foreign_host_or_origin_is_refused(served: ReviewServer) -> None:
    served.log_in()
    rebound = served.request("GET", "/", headers={"Host": f"evil.example:{served.port}"})
    assert rebound.status == 400
    posted = served.request(
        "POST", "/check", headers={"Origin": "http://evil.example"}, body="confirm=yes"
    )
    assert posted.status == 403
    same = served.request(
        "POST", "/check", headers={"Origin": f"http://127.0.0.1:{served.port}"}, body=""
    )
    assert same.status == 303


def test_every_answer_carries_the_security_headers(served: ReviewServer) -> None:
    served.log_in()
    for path in ("/", "/records/KHPL_svg", "/img/KHPL_svg/paymentScreenshot?size=thumb"):
        reply = served.request("GET", path)
        assert reply.status == 200, (path, reply.status)
        policy = reply.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert reply.headers["cache-control"] == "no-store"
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["referrer-policy"] == "same-origin"


def test_images_are_served_only_as_safe_image_types(
    served: ReviewServer, records: list[dict[str, Any]]
) -> None:
    served.log_in()
    rid = records[0]["id"]
    thumb = served.request("GET", f"/img/{rid}/aadhaar?size=thumb")
    assert thumb.status == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.body)) as picture:
        assert max(picture.size) <= 192
    full = served.request("GET", f"/img/{rid}/userPhoto")
    assert full.status == 200 and full.headers["content-type"] == "image/jpeg"
    original = served.request("GET", f"/img/{rid}/userPhoto?from=backup")
    assert original.status == 200 and original.body == full.body
    # An SVG from the bucket could run script in the page's origin: never served as SVG.
    drawing = served.request("GET", "/img/KHPL_svg/userPhoto")
    assert drawing.status == 415 and b"<svg" not in drawing.body
    assert served.request("GET", "/img/KHPL_svg/userPhoto?size=thumb").status == 422
    assert served.request("GET", f"/img/{rid}/nothing").status == 404
    assert served.request("GET", f"/img/{rid}/..%2F..%2Fregistrations.json").status == 404


def test_the_record_page_compares_each_image_with_the_backup(
    served: ReviewServer, records: list[dict[str, Any]]
) -> None:
    served.log_in()
    damaged = served.request("GET", f"/records/{records[2]['id']}").text
    assert re.search(r'data-image="userPhoto" data-same="no"', damaged)
    assert re.search(r'data-image="aadhaar" data-same="yes"', damaged)
    assert "bytes differ" in damaged and "bytes identical" in damaged
    assert served.request("GET", "/records/no-such-record").status == 404


def test_archive_and_rollback_actions_need_confirmation(
    served: ReviewServer, store: Store, settings: Settings, env: dict[str, str]
) -> None:
    served.log_in()
    bucket = settings.bucket or ""
    key = f"archive/registrations-{datetime.now(UTC).date().isoformat()}.json"
    unconfirmed = served.request("POST", "/actions/archive", body="")
    assert unconfirmed.status == 400 and store.head_object(bucket, key) is None
    done = served.request("POST", "/actions/archive", body="confirm=yes")
    assert done.status == 200 and f'Archived as <span class="mono">{key}' in done.text
    assert store.get_bytes(bucket, key) == store.get_bytes(bucket, settings.source_key)
    assert "✔" in served.request("GET", "/").text.split('data-check="archive"')[1][:200]

    run_id = re.findall(r'data-run="([^"]+)"', served.request("GET", "/").text)[0]
    before = items(store, settings)
    assert served.request("POST", f"/runs/{run_id}/rollback", body="").status == 400
    shown = served.request("POST", f"/runs/{run_id}/rollback", body="confirm=yes")
    assert shown.status == 200
    assert f"khpl-migrate rollback --run {run_id} --apply" in shown.text
    assert re.search(r"would delete <b>\d+</b> items", shown.text)
    assert items(store, settings) == before  # showing the rollback deletes nothing


def test_review_listens_on_127_0_0_1_only(served: ReviewServer) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5):
        pass
    for family, address in [
        (socket.AF_INET, "127.0.0.2"),
        (socket.AF_INET6, "::1"),
        *[(socket.AF_INET, ip) for ip in other_addresses()],
    ]:
        with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(OSError):
            sock.settimeout(5)
            sock.connect((address, served.port))


def test_a_taken_port_is_a_clear_error(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run(["review", "--port", str(port)], env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"Port {port} on 127.0.0.1 is in use" in proc.stderr and "Fix:" in proc.stderr


def test_foreseeable_errors_show_their_message_and_fix_on_the_page(
    served: ReviewServer, store: Store, settings: Settings
) -> None:
    served.log_in()
    refused = served.request("POST", "/actions/archive", body="confirm=yes&remove_original=yes")
    assert refused.status == 409 and "records identical" in refused.text
    assert "Fix: run `khpl-migrate verify --deep`" in refused.text.replace("&#96;", "`")
    bucket = settings.bucket or ""
    assert store.head_object(bucket, settings.source_key) is not None  # not removed
    store.s3.delete_object(Bucket=bucket, Key=settings.source_key)
    gone = served.request("POST", "/check", body="")
    assert gone.status == 409 and "does not exist" in gone.text and "Fix:" in gone.text
    assert "Traceback" not in gone.text + "".join(served.stderr)
    assert served.request("GET", "/").status == 200  # the last checks are still shown


def test_open_hands_the_address_to_the_web_browser(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    put_source(store, settings, records)
    # A stand-in browser that writes the address it is given into a pipe the test reads.
    opened = tmp_path / "opened"
    os.mkfifo(opened)
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    # Python's webbrowser module runs $BROWSER with the address in place of %s.
    server = start_review({**env, "BROWSER": f"{sys.executable} {browser} %s"}, "--open")
    try:
        got: list[bytes] = []

        def read() -> None:
            with opened.open("rb") as pipe:  # blocks until the browser opens it
                got.append(pipe.read())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(30)
        assert got and got[0].decode() == server.url, "the browser was not opened"
        # No table yet: every record shows as missing, and the page still works.
        server.log_in()
        page = server.request("GET", "/")
        assert page.status == 200 and page.text.count('data-status="-"') == len(records)
    finally:
        server.stop()


def test_json_prints_the_address_and_the_checklist_and_the_page_lists_orphans(
    store: Store, settings: Settings, env: dict[str, str], records: list[dict[str, Any]]
) -> None:
    put_source(store, settings, records)
    assert run(["create-table"], env).returncode == 0
    assert run(["migrate", "--apply"], env).returncode == 0
    orphan = "registration-images/nobody/userPhoto.jpeg"  # the migration's own (a run's id)
    run_id = "20251219T103000000Z-abcdef"
    store.put_object_if_absent(settings.bucket or "", orphan, b"\xff\xd8\xff", "image/jpeg", run_id)
    server = start_review(env, "--json")
    try:
        printed = json.loads(server.printed)
        assert printed["url"] == server.url
        states = {line["key"]: line["state"] for line in printed["checklist"]}
        assert states["orphans"] == "fail" and states["verify"] == "pass"
        server.log_in()
        page = server.request("GET", "/").text
        assert f'+ <span class="mono">{orphan}</span>' in page
        assert "1 orphan image object, 0 migrated items in no source record" in page
    finally:
        server.stop()
