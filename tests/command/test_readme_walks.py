"""The README's "Quick start" and docs/cutover.md's "Closing the window", walked as an
operator would, from their own text: a command changed there is the command tested here,
so they cannot rot."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.cutover.freeze import statement
from khpl_migrate.settings import Settings
from tests.helpers import app_puts_over, app_sets, image_key, put_source, run
from tests.review_server import start_review

pytestmark = pytest.mark.command
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CUTOVER = ROOT / "docs" / "cutover.md"


def _section(title: str, doc: Path = README) -> str:
    text = doc.read_text()
    assert f"\n## {title}\n" in text, f"{doc.relative_to(ROOT)} has no section {title!r}"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _commands(title: str, program: str, doc: Path = README) -> list[list[str]]:
    """The commands of the section's ```bash block, comments left out."""
    found = re.search(r"```bash\n(.*?)```", _section(title, doc), re.S)
    assert found, f"no bash block in {doc.relative_to(ROOT)}'s {title!r}"
    lines = [line.split("  #", 1)[0].strip() for line in found.group(1).splitlines()]
    commands = [shlex.split(line) for line in lines if line.startswith(program + " ")]
    assert commands, f"no {program} command in {doc.relative_to(ROOT)}'s {title!r}"
    return [command[1:] for command in commands]


# -- Quick start ------------------------------------------------------------------------


def _normal(text: str) -> list[str]:
    """Lines without what changes from run to run: the date and the seconds taken."""
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "DATE", text)
    text = re.sub(r"Checked in [\d.]+ s", "Checked in S s", text)
    return [line.rstrip() for line in text.strip().splitlines()]


def test_the_quick_start_make_targets_run_what_it_says_and_the_demo_ends_as_shown(
    tmp_path: Path,
) -> None:
    targets = [command[0] for command in _commands("Quick start", "make")]
    assert targets == ["demo", "test"]
    # `make test` runs every test, this one included: it is checked for what it runs.
    # Under `make test` this runs inside make (MAKELEVEL is set), where make would add
    # "Entering/Leaving directory" lines of its own: --no-print-directory keeps them out.
    planned = {
        target: subprocess.run(
            ["make", "--no-print-directory", "-n", target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for target in targets
    }
    assert all(p.returncode == 0 for p in planned.values()), planned
    assert "khpl-migrate demo" in planned["demo"].stdout.splitlines()[-1]
    assert "pytest" in planned["test"].stdout.splitlines()[-1]

    # What `make demo` runs once set up, and the end the README shows.
    shown = re.search(r"It ends like this:\n\n```\n(.*?)```", _section("Quick start"), re.S)
    assert shown, "the quick start shows no end of the demo"
    demo = run(
        ["demo", "--state-dir", str(tmp_path / "state")],
        {"HOME": str(tmp_path), "COLUMNS": "100"},
    )
    assert demo.returncode == 0, demo.stderr
    expected = _normal(shown.group(1))
    assert _normal(demo.stderr)[-len(expected) :] == expected


# -- The cut-over -----------------------------------------------------------------------


def _checklist(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-check="(\w+)" data-state="(\w+)"', page))


def test_the_cut_over_as_the_docs_give_it_ends_green_with_the_apps_edits_kept(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    bucket = settings.bucket or ""
    theirs = {
        "Sid": "TheirsAlready",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    store.set_bucket_policy(bucket, {"Version": "2012-10-17", "Statement": [theirs]})
    put_source(store, settings, sample_records)
    for before in (["create-table"], ["migrate", "--apply"]):
        assert run(before, env).returncode == 0
    # After the migration: an admin edits registrations.json, and the live app edits
    # DynamoDB: a jersey size changed, and a player's photo replaced in place.
    source = [dict(r) for r in sample_records]
    source[0]["paymentStatus"] = "refunded"
    put_source(store, settings, source)
    app_sets(store, settings, source[1]["id"], "jerseySize", "XXL")
    other_photo = store.get_bytes(bucket, image_key(source[3], "userPhoto")) or b""
    app_puts_over(store, bucket, image_key(source[2], "userPhoto"), other_photo, "image/jpeg")

    commands = _commands("Closing the window", "khpl-migrate", CUTOVER)
    assert [c[0] for c in commands] == [
        "sync",
        "freeze-source",
        "sync",
        "verify",
        "archive-source",
        "review",
        "archive-source",
    ]
    said: dict[str, str] = {}
    for command in commands:
        if command[0] == "review":
            server = start_review(env, *command[1:], "--json")
            try:
                printed = json.loads(server.printed)
                assert (printed["allowTableEdits"], printed["acceptedTableEdits"]) == (True, 2)
                server.log_in()
                page = server.request("GET", "/").text
            finally:
                assert server.stop() == 0
            assert set(_checklist(page).values()) == {"pass"}, _checklist(page)
            assert len(_checklist(page)) == 9
            assert 'data-accepted="2"' in page
            assert (
                "The app's edits are accepted (<code>--allow-table-edits</code>): 2 records "
                "edited in DynamoDB since the migration count as checked"
            ) in page
            continue
        if "--remove-original" in command:
            command = [*command, "--yes"]  # it asks on a terminal; the test has none
        done = run(command, env)
        assert done.returncode == 0, (command, done.stderr)
        said[" ".join(command)] = done.stderr

    assert "with edits made in DynamoDB, kept: 2" in said["sync --apply"]
    assert "✅ Source and table in step" in said["sync --apply"]  # the last one
    assert "The app's edits accepted: 2 records" in said["verify --deep --allow-table-edits"]
    removed = said["archive-source --remove-original --allow-table-edits --yes"]
    assert "The original was removed" in removed and "Still frozen" in removed
    assert store.head_object(bucket, settings.source_key) is None
    # The source stays frozen, and the bucket's other statement is as it was.
    after = store.bucket_policy(bucket)
    assert after == {
        "Version": "2012-10-17",
        "Statement": [theirs, statement(bucket, settings.source_key)],
    }
    # The freeze is lifted as docs/cutover.md says, exactly: the source is gone by now.
    lifted = run(["freeze-source", "--undo", "--apply"], env)
    assert lifted.returncode == 0, lifted.stderr
    assert store.bucket_policy(bucket) == {"Version": "2012-10-17", "Statement": [theirs]}
    # The app's edits are there, and the source's edit was carried over.
    items = {i["id"]: i for i in store.scan(settings.table)}
    assert items[source[1]["id"]]["jerseySize"] == "XXL"
    assert items[source[0]["id"]]["paymentStatus"] == "refunded"
