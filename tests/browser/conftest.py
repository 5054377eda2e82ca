"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser download is never used (this machine has no internet):
`.ci/system-deps` installs Debian's chromium where it is missing. Without it
the tests fail with the command that installs it, rather than skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from khpl_migrate.setup import sample
from tests.helpers import exports, run
from tests.review_server import DEMO_RECORDS, Demo, start_review

CHROMIUM = os.environ.get("KHPL_CHROMIUM", "/usr/bin/chromium")
# The flags a closed network needs: no background requests to Google's hosts.
FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium "
            "(bash .ci/system-deps, or apt-get install chromium), or set KHPL_CHROMIUM"
        )
    # Root cannot use Chromium's sandbox (CI and these machines run as root).
    flags = [*FLAGS, "--no-sandbox"] if os.geteuid() == 0 else FLAGS
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: KHPL_ARTIFACTS_DIR, or artifacts/ in this test run's folder."""
    chosen = os.environ.get("KHPL_ARTIFACTS_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("browser-demo")
    state = base / "state"
    home = {"HOME": str(base)}
    proc = run(["demo", "--keep", "--state-dir", str(state)], home)
    try:
        assert proc.returncode == 0, proc.stderr
        env = {**exports(proc.stdout), **home}
        env["KHPL_STATE_DIR"] = str(state)
        records = sample.registrations(DEMO_RECORDS)
        damaged = records[1]
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        bucket = env["REACT_APP_S3_BUCKET_NAME"]
        photo = s3.get_object(
            Bucket=bucket, Key=f"registration-images/{records[0]['id']}/userPhoto.jpeg"
        )
        # The damage: another player's photo (a valid JPEG) where this one's should be.
        s3.put_object(
            Bucket=bucket,
            Key=f"registration-images/{damaged['id']}/userPhoto.jpeg",
            Body=photo["Body"].read(),
            ContentType="image/jpeg",
        )
        server = start_review(env)
        try:
            yield Demo(server, env, damaged)
        finally:
            server.stop()
    finally:
        run(["local", "down", "--state-dir", str(state / "demo")], home)


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.goto(demo.server.url)  # the token becomes the context's cookie
    opened.wait_for_load_state("networkidle")
    try:
        yield opened
    finally:
        context.close()
