"""The review page in a real browser, after a demo migration with one damaged record."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page

from tests.review_server import Demo, other_addresses

pytestmark = pytest.mark.browser
ALL_LOADED = "() => Array.from(document.images).every(i => i.complete)"


def test_every_thumbnail_on_the_first_page_shows_an_image(
    page: Page, demo: Demo, artifacts: Path
) -> None:
    page.wait_for_function(ALL_LOADED)
    thumbs = page.locator("td.thumbs img")
    assert thumbs.count() == 3 * len(demo.records)  # 25 records fit on the first page
    widths = thumbs.evaluate_all("images => images.map(i => i.naturalWidth)")
    assert all(width > 0 for width in widths), widths
    shot = artifacts / "review-page.png"
    page.screenshot(path=str(shot), full_page=True)
    page.screenshot(path=str(artifacts / "review-page-top.png"))  # docs/commands/review.md
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")


def test_search_finds_a_record_by_name(page: Page, demo: Demo) -> None:
    wanted = demo.records[7]
    page.fill("#q", wanted["name"])
    page.press("#q", "Enter")
    page.wait_for_load_state("networkidle")
    rows = page.locator("tr.record")
    ids = rows.evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert wanted["id"] in ids
    same_name = {r["id"] for r in demo.records if r["name"] == wanted["name"]}
    assert set(ids) == same_name
    assert page.locator("tr.record .name").all_inner_texts() == [wanted["name"]] * len(ids)


def test_the_damaged_record_shows_a_star_and_crosses_its_checklist_lines(
    page: Page, demo: Demo
) -> None:
    row = page.locator(f'tr.record[data-id="{demo.damaged["id"]}"]')
    assert row.locator(".status").inner_text() == "*"
    assert "userPhoto" in row.locator(".reasons").inner_text()
    statuses = page.locator("tr.record").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses.count("*") == 1 and statuses.count("=") == len(demo.records) - 1
    for key in ("verify", "images"):
        line = page.locator(f'li[data-check="{key}"]')
        assert line.get_attribute("data-state") == "fail"
        assert line.locator(".mark").inner_text() == "✘"
    assert "74 of 75 images" in page.locator('li[data-check="images"]').inner_text()
    for key in ("data", "backups", "orphans", "runs"):
        assert page.locator(f'li[data-check="{key}"]').get_attribute("data-state") == "pass", key


def test_the_record_page_shows_the_migrated_image_beside_the_original(
    page: Page, demo: Demo, artifacts: Path
) -> None:
    page.click(f'a[href="/records/{demo.damaged["id"]}"]')
    page.wait_for_load_state("networkidle")
    page.wait_for_function(ALL_LOADED)
    pairs = page.locator("section.pair")
    verdicts = dict(
        zip(
            pairs.evaluate_all("ps => ps.map(p => p.dataset.image)"),
            pairs.evaluate_all("ps => ps.map(p => p.dataset.same)"),
            strict=True,
        )
    )
    assert verdicts == {"aadhaar": "yes", "paymentScreenshot": "yes", "userPhoto": "no"}
    photo = page.locator('section.pair[data-image="userPhoto"]')
    assert "bytes differ" in photo.inner_text()
    widths = photo.locator("img").evaluate_all("images => images.map(i => i.naturalWidth)")
    assert len(widths) == 2 and all(w > 0 for w in widths)
    page.screenshot(path=str(artifacts / "review-record.png"), full_page=True)


def test_no_aadhaar_or_phone_number_reaches_the_page(page: Page, demo: Demo) -> None:
    views = [page.content() + page.inner_text("body")]
    page.click(f'a[href="/records/{demo.damaged["id"]}"]')
    page.wait_for_load_state("networkidle")
    views.append(page.content() + page.inner_text("body"))
    for view in views:
        digits = re.sub(r"[\s-]", "", view)
        for record in demo.records:
            aadhaar, phone = record["aadhaarNumber"], record["phone"]
            assert aadhaar not in digits, "an Aadhaar number is on the page"
            assert phone not in digits, "a phone number is on the page"
        assert "XXXX XXXX" in view and "XXXXXX" in view  # shown, masked


def test_aadhaar_copies_are_blurred_until_clicked(page: Page) -> None:
    card = page.locator("figure.sensitive img").first
    assert "blur" in card.evaluate("i => getComputedStyle(i).filter")
    photo = page.locator("figure.thumb:not(.sensitive) img").first
    assert photo.evaluate("i => getComputedStyle(i).filter") == "none"
    card.click()
    page.wait_for_function("i => getComputedStyle(i).filter === 'none'", arg=card.element_handle())
    card.click()
    assert "blur" in card.evaluate("i => getComputedStyle(i).filter")
    card.focus()  # and from the keyboard
    page.keyboard.press("Enter")
    assert card.get_attribute("aria-pressed") == "true"
    # The blur fades out over 0.15 s: wait for its end, as after the click above.
    page.wait_for_function("i => getComputedStyle(i).filter === 'none'", arg=card.element_handle())


def test_the_server_refuses_every_address_but_127_0_0_1(browser: Browser, demo: Demo) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        port = demo.server.port
        for host in ("127.0.0.2", "[::1]", *other_addresses()):
            with pytest.raises(Error, match=r"ERR_CONNECTION_REFUSED|ERR_ADDRESS_UNREACHABLE"):
                tab.goto(f"http://{host}:{port}/?token={demo.server.token}", timeout=15_000)
        fresh = context.new_page()
        fresh.goto(f"http://127.0.0.1:{port}/?token={demo.server.token}")
        assert fresh.locator("h2#checklist-title").is_visible()
    finally:
        context.close()


def test_the_actions_show_the_rollback_command_and_archive_the_source(
    page: Page, demo: Demo
) -> None:
    run_id = page.locator("tr[data-run]").first.get_attribute("data-run")
    page.click(f'tr[data-run="{run_id}"] a.button')
    page.check('input[name="confirm"]')
    page.click("button[type=submit] >> text=Show the rollback")
    assert (
        page.locator("pre.command").inner_text() == f"khpl-migrate rollback --run {run_id} --apply"
    )
    # The replaced photo is not the bytes the run wrote: it is the app's, and so is the item
    # that shows it (with its other two images). Rollback leaves them, and says so.
    plan = page.inner_text(".rollback-plan")
    assert "would delete 24 items and 72 image objects, and leave 4 in place" in plan
    assert f"{demo.damaged['id']}/userPhoto.jpeg" in page.inner_text("ul.reasons")

    page.goto("/".join(demo.server.url.split("/")[:3]) + "/actions/archive")
    page.check('input[name="confirm"]')
    page.click("button[type=submit] >> text=Archive")
    heading = page.locator("h2.pass").inner_text()
    assert re.search(r"Archived as archive/registrations-\d{4}-\d{2}-\d{2}\.json", heading)
    page.click("text=← back")
    assert page.locator('li[data-check="archive"]').get_attribute("data-state") == "pass"
