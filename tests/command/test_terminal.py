"""The command on a real pseudo-terminal: the dry run asks `Proceed? [y/N]`; the bars
show progress; Ctrl-C, once or twice at chosen points of a run, leaves a recorded run."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.core.layout import IMAGE_PREFIX
from khpl_migrate.kernel.manifest import parse_manifest
from khpl_migrate.kernel.runs import list_runs
from khpl_migrate.settings import Settings
from khpl_migrate.setup import local, sample
from khpl_migrate.setup.table import create_table
from tests.faults.proxy import FaultProxy, Rule
from tests.helpers import items, migrate, put_source, run

pytestmark = pytest.mark.command


def on_terminal(
    args: list[str], env: dict[str, str], answer: str, prompt: bytes = b"Proceed? [y/N]"
) -> tuple[int, str]:
    """Run the command with stdin/stdout/stderr on a pty; type `answer` at the prompt."""
    leader, follower = pty.openpty()
    full = {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent",
        "TERM": "xterm",
        "COLUMNS": "120",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "khpl_migrate", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=full,
        close_fds=True,
    )
    os.close(follower)
    seen, answered = b"", False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if not answered and prompt in seen:
            os.write(leader, answer.encode() + b"\r")
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(leader)
    return code, seen.decode(errors="replace")


@pytest.mark.usefixtures("seeded")
def test_answering_no_writes_nothing(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    code, screen = on_terminal(["migrate"], env, "n")
    assert "Proceed? [y/N]" in screen
    assert code == 0 and "Nothing was written" in screen
    assert items(store, settings) == {}


@pytest.mark.usefixtures("seeded")
def test_answering_yes_runs_the_migration(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    code, screen = on_terminal(["migrate"], env, "y")
    assert code == 0, screen
    assert "Migrated: 6 (18 images" in screen
    assert len(items(store, settings)) == 6


@pytest.mark.parametrize("answer", ["n", "y"])
def test_archive_source_asks_before_removing_the_original(
    answer: str,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    body = put_source(store, settings, sample_records)
    create_table(store, settings)
    assert on_terminal(["migrate", "--apply"], env, "")[0] == 0
    code, screen = on_terminal(["archive-source", "--remove-original"], env, answer, b"[y/N]")
    assert "DynamoDB-only mode [y/N]" in screen and code == 0, screen
    assert "Archived" in screen
    source = store.get_bytes(settings.bucket or "", settings.source_key)
    assert source == (None if answer == "y" else body)


# -- Ctrl-C and the bars -------------------------------------------------------------

# The installed console script, as the operator runs it.
SCRIPT = str(Path(sys.executable).parent / "khpl-migrate")
# One frame of a bar with a known total: "Migrating ━━━╸━━ 42/200 126 images, ...".
FRAME = re.compile(r"(Migrating|Checking|Syncing) [^\r\n]*? (\d+)/(\d+) ")
ACK = re.compile(r"Stopping: finishing the (\d+) records in flight \(Ctrl-C again to stop now\)")
RECORDS = 200  # enough for a run of a few seconds on the local stack


@pytest.fixture(scope="module")
def many() -> list[dict[str, Any]]:
    return sample.registrations(RECORDS, seed=19)


def interrupted(
    args: list[str], env: dict[str, str], phase: str, fraction: float, signals: int = 2
) -> tuple[int, str, int]:
    """Run the console script on a pty; once `phase`'s bar shows `fraction` of its records
    done (and at least one), send SIGINT (`signals` times, 0.15 s apart). The exit code,
    the screen, and where on it the first SIGINT was sent."""

    def due(screen: str) -> bool:
        frames = [f for f in FRAME.findall(screen) if f[0] == phase]
        return bool(frames) and int(frames[-1][1]) >= max(1, fraction * int(frames[-1][2]))

    return watch_terminal([SCRIPT, *args], env, due, signals)


def watch_terminal(
    argv: list[str], env: dict[str, str], due: Callable[[str], bool], signals: int
) -> tuple[int, str, int]:
    leader, follower = pty.openpty()
    full = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "TERM": "xterm", **env}
    full["COLUMNS"] = "160"
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=full, close_fds=True
    )
    os.close(follower)
    seen, mark = b"", -1
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.02)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if mark < 0 and signals and due(seen.decode(errors="replace")):
            mark = len(seen.decode(errors="replace"))
            for sent in range(signals):
                if sent:
                    time.sleep(0.15)
                proc.send_signal(signal.SIGINT)
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=60)
    os.close(leader)
    return code, seen.decode(errors="replace"), mark


def unnamed_images(store: Store, settings: Settings) -> set[str]:
    """Image objects that no run's manifest in the bucket names."""
    bucket = settings.require_bucket()
    named = {
        image.key
        for manifest in list_runs(store, bucket)
        for line in manifest.records
        for image in line.images
    }
    return {info.key for info in store.list_objects(bucket, IMAGE_PREFIX)} - named


@contextmanager
def slowed(
    stack: local.Stack, env: dict[str, str], service: str, operation: str
) -> Iterator[dict[str, str]]:
    """`env` with `service` reached through a proxy that answers each `operation` 0.25 s
    late: the records in flight at the first Ctrl-C are still in flight at the second,
    0.15 s later, however fast this machine writes (else the second finds a run that has
    already ended, and there is nothing left for it to stop)."""
    upstream = stack.s3 if service == "s3" else stack.dynamodb
    proxy = FaultProxy(upstream.port, [Rule("slow", operation=operation, rate=1.0, delay=0.25)])
    proxy.start()
    try:
        yield {**env, f"AWS_ENDPOINT_URL_{service.upper()}": proxy.url}
    finally:
        proxy.stop()


def after_the_counts(screen: str) -> str:
    """What the screen shows from the line with the final counts on."""
    return screen[screen.rindex("Interrupted:") :]


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.9], ids=["early", "mid-way", "near-the-end"])
def test_ctrl_c_twice_leaves_a_recorded_run(
    fraction: float,
    stack: local.Stack,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    many: list[dict[str, Any]],
) -> None:
    put_source(store, settings, many)
    create_table(store, settings)
    with slowed(stack, env, "s3", "PutObject") as through:
        code, screen, mark = interrupted(["migrate", "--apply"], through, "Migrating", fraction)
    assert mark >= 0, screen
    # Acknowledged at once, before anything else the run says, with the count in flight.
    ack = ACK.search(screen, mark)
    assert ack is not None, screen[mark:]
    assert "Stopping now:" in screen[ack.end() :]
    assert code == 130, screen
    # The counts: each record in one of them, as the manifest (in S3) tells it.
    counts = re.search(
        r"Interrupted: (\d+) records migrated, (\d+) skipped, (\d+) failed.*?, (\d+) not "
        r"reached; the manifest is s3://[^/]+/(\S+)",
        screen,
    )
    assert counts is not None, screen[mark:]
    migrated, skipped, failed, unreached = map(int, counts.groups()[:4])
    assert migrated + skipped + failed + unreached == RECORDS
    key = counts.group(5)
    body = store.get_bytes(settings.require_bucket(), key)
    assert body is not None, "the manifest reached S3"
    manifest = parse_manifest(key.split("/")[1], key, body)
    assert manifest.summary is not None and "interrupted" in str(manifest.stopped)
    assert (manifest.count("migrated"), manifest.count("failed")) == (migrated, failed)
    assert len(items(store, settings)) == migrated
    # No image object that no manifest names; no bar drawn again after the counts.
    assert unnamed_images(store, settings) == set()
    tail = after_the_counts(screen)
    assert "Migrating" not in tail and "\x1b[2K" not in tail and "\r\x1b" not in tail, tail
    # The next run converges and the deep check passes.
    again = run(["migrate", "--apply"], env)
    assert again.returncode == 0, again.stderr
    assert len(items(store, settings)) == RECORDS
    assert unnamed_images(store, settings) == set()
    deep = run(["verify", "--deep"], env)
    assert deep.returncode == 0, deep.stderr[-2000:]


def test_ctrl_c_once_finishes_the_records_in_flight(
    store: Store, settings: Settings, env: dict[str, str], many: list[dict[str, Any]]
) -> None:
    put_source(store, settings, many)
    create_table(store, settings)
    code, screen, mark = interrupted(["migrate", "--apply"], env, "Migrating", 0.3, signals=1)
    ack = ACK.search(screen, mark)
    assert ack is not None and code == 130, screen[mark:]
    assert "Stopping now" not in screen
    counts = re.search(r"Interrupted: (\d+) records migrated, 0 skipped, 0 failed, (\d+)", screen)
    assert counts is not None, screen[mark:]
    migrated, unreached = map(int, counts.groups())
    # Every record in flight when Ctrl-C came was finished, and nothing was started after.
    assert migrated >= int(ack.group(1)) >= 1
    assert migrated + unreached == RECORDS == len(items(store, settings)) + unreached
    assert unnamed_images(store, settings) == set()
    assert "Migrating" not in after_the_counts(screen)


def test_verify_deep_shows_progress_from_the_start(
    store: Store, settings: Settings, env: dict[str, str], many: list[dict[str, Any]]
) -> None:
    put_source(store, settings, many[:40])
    create_table(store, settings)
    migrate(store, settings)
    code, screen, _ = watch_terminal([SCRIPT, "verify", "--deep"], env, lambda _: False, 0)
    assert code == 0, screen
    report = screen.index("Data Summary")
    # The first frame comes when the work starts (before the guide's counts are read),
    # then one per record checked, with images, bytes and the time left; none after.
    assert screen.index("Counting") < screen.index("Checking") < report
    frames = [(int(done), int(total)) for phase, done, total in FRAME.findall(screen)]
    assert frames[0] == (0, 40) and max(frames) > (0, 40), frames
    assert re.search(r"Checking [^\r\n]* [1-9]\d*/40 [1-9]\d* images, \d+\.\d MB", screen)
    assert max(m.start() for m in FRAME.finditer(screen)) < report
    assert "Checking" not in screen[report:] and "Counting" not in screen[report:]
    # Without a terminal: no bars at all.
    plain = run(["verify", "--deep"], env)
    assert plain.returncode == 0 and "Checking" not in plain.stderr + plain.stdout


def test_ctrl_c_stops_verify_deep(
    store: Store, settings: Settings, env: dict[str, str], many: list[dict[str, Any]]
) -> None:
    put_source(store, settings, many)
    create_table(store, settings)
    migrate(store, settings)
    code, screen, mark = interrupted(["verify", "--deep"], env, "Checking", 0.4)
    assert ACK.search(screen, mark) is not None, screen[mark:]
    assert code == 130, screen[mark:]
    found = re.search(r"Interrupted: verify --deep checked (\d+) of 200 records", screen)
    assert found is not None and 0 < int(found.group(1)) < RECORDS, screen[mark:]
    assert "nothing was changed" in screen
    assert "Checking" not in after_the_counts(screen)
    assert "Data Summary" not in screen  # no report of a check that did not finish


def test_ctrl_c_twice_leaves_a_recorded_sync(
    stack: local.Stack,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    many: list[dict[str, Any]],
) -> None:
    put_source(store, settings, many)
    create_table(store, settings)
    migrate(store, settings)
    edited = [{**record, "village": f"Moved {index}"} for index, record in enumerate(many)]
    put_source(store, settings, edited)
    with slowed(stack, env, "dynamodb", "UpdateItem") as through:
        code, screen, mark = interrupted(["sync", "--apply"], through, "Syncing", 0.3)
    ack = ACK.search(screen, mark)
    assert ack is not None and "Stopping now:" in screen[ack.end() :], screen[mark:]
    assert code == 130, screen[mark:]
    found = re.search(r"Interrupted: \d+ records synced.*manifest is s3://[^/]+/(\S+)", screen)
    assert found is not None, screen[mark:]
    body = store.get_bytes(settings.require_bucket(), found.group(1))
    assert body is not None
    manifest = parse_manifest(found.group(1).split("/")[1], found.group(1), body)
    assert str(manifest.stopped).startswith("interrupted")
    assert "Syncing" not in after_the_counts(screen)
    again = run(["sync", "--apply"], env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(item["village"].startswith("Moved") for item in items(store, settings).values())
    deep = run(["verify", "--deep"], env)
    assert deep.returncode == 0, deep.stderr[-2000:]


def test_sigterm_without_a_terminal_is_acknowledged_on_stderr(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    many: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    put_source(store, settings, many)
    create_table(store, settings)
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [SCRIPT, "migrate", "--apply"],
            env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        # The apply pass has begun once the local manifest holds a record's line.
        runs = Path(env["KHPL_STATE_DIR"]) / "runs"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            lines = [p.read_text().count("\n") for p in runs.glob("*/manifest.jsonl")]
            if lines and lines[0] >= 2:
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.01)
        code = proc.wait(timeout=120)
    said = errors.read_text()
    assert code == 130, said
    assert ACK.search(said) is not None, said
    assert "Interrupted:" in said and "Migrating" not in said
    assert unnamed_images(store, settings) == set()
