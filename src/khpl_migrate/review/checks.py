"""The review page's evidence: the real checks, and the guide's checklist judged by them.

`run_checks` runs verify --deep, the backups, the runs and the archives once;
`checklist` turns what they found into the guide's post-migration checklist,
each line ticked, crossed or left to do by hand, with its figures. The
checklist is a pure function of the checks, unit-tested without AWS.

With `allow_table_edits` (`review --allow-table-edits`, after the cut-over) the
app's edits made in DynamoDB since the migration count as checked, judged as
`verify --deep --allow-table-edits` judges them (`DeepReport.table_edits`);
without it, a line they alone cross says so and names the flag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from khpl_migrate.aws import Store
from khpl_migrate.cutover.archive import list_archives
from khpl_migrate.cutover.freeze import is_frozen
from khpl_migrate.kernel import source as source_mod
from khpl_migrate.kernel.backups import Backup, list_backups, object_sha256
from khpl_migrate.kernel.manifest import Manifest
from khpl_migrate.kernel.runner import Runner
from khpl_migrate.kernel.runs import list_runs
from khpl_migrate.settings import Settings
from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.model import DeepEntry, DeepReport, Status
from khpl_migrate.verify.status import VerifyReport, display_name


@dataclass(frozen=True)
class RecordRow:
    """One source record as the page lists it: its deep-verify status and reasons."""

    index: int
    id: str | None
    name: str | None
    status: Status
    details: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class Checks:
    """Everything the page shows, from one pass of the real checks."""

    checked_at: datetime
    seconds: float
    source_uri: str
    source_sha256: str
    summary: VerifyReport
    deep: DeepReport
    rows: list[RecordRow]
    backups: list[Backup]
    runs: list[Manifest]
    archives: dict[str, bool]  # archive key -> holds the same bytes as today's source
    table: str
    frozen: bool = False  # freeze-source's statement denies writing the source

    @property
    def accepting(self) -> bool:
        """The app's edits made in DynamoDB pass (review --allow-table-edits)."""
        return self.deep.allow_table_edits

    def only_table_edits(self) -> bool:
        """The checks fail, and --allow-table-edits would accept every difference."""
        return self.deep.only_table_edits(self.summary)

    def backup_of_run(self, run_id: str) -> str | None:
        for run in self.runs:
            if run.run_id == run_id:
                return run.header.backup_key
        return None

    def row(self, rid: str) -> RecordRow | None:
        return next((r for r in self.rows if r.id == rid), None)


def run_checks(
    store: Store,
    settings: Settings,
    *,
    runner: Runner | None = None,
    on_entry: Callable[[DeepEntry], None] | None = None,
    allow_table_edits: bool = False,
) -> Checks:
    """verify --deep, the backups, the runs and the archives: the page's evidence."""
    began = time.monotonic()
    names: dict[int, str | None] = {}
    lock = threading.Lock()

    def keep_name(index: int, record: Any) -> None:
        with lock:
            names[index] = display_name(record)

    summary, deep = deep_verify(
        store,
        settings,
        runner=runner,
        on_entry=on_entry,
        on_record=keep_name,
        allow_table_edits=allow_table_edits,
    )
    rows = [
        RecordRow(e.index, e.id, names.get(e.index), e.status, e.details, e.warnings)
        for e in sorted(deep.entries, key=lambda e: e.index)
    ]
    source = source_mod.open_source(store, settings)
    current = object_sha256(store, source.bucket, source.info.key) or ""
    archives = {
        info.key: object_sha256(store, source.bucket, info.key) == current
        for info in list_archives(store, source.bucket)
    }
    return Checks(
        checked_at=datetime.now(UTC),
        seconds=time.monotonic() - began,
        source_uri=source.uri,
        source_sha256=current,
        summary=summary,
        deep=deep,
        rows=rows,
        backups=list_backups(store, settings, current),
        runs=list_runs(store, source.bucket, settings.state_dir),  # as `runs` lists them
        archives=archives,
        table=settings.table,
        frozen=is_frozen(store, source.bucket, source.info.key),
    )


State = Literal["pass", "fail", "todo"]


@dataclass(frozen=True)
class ChecklistLine:
    key: str  # stable, for links and tests
    title: str  # the guide's words
    state: State
    figure: str  # what the check found, with its numbers

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "title": self.title, "state": self.state, "figure": self.figure}


def checklist(checks: Checks) -> list[ChecklistLine]:
    """The guide's post-migration checklist, each line judged by a real check."""
    return [judge(checks) for judge in LINES]


def _migrated(checks: Checks) -> list[DeepEntry]:
    """The entries of records that have their item (identical or not)."""
    return [e for e in checks.deep.entries if e.status in {"=", "*"}]


def _accepted(checks: Checks) -> set[int]:
    """The indexes of the records whose differences are the app's edits, accepted."""
    return {e.index for e in checks.deep.allowed()}


def _app_edits(checks: Checks, passed: object, figure: str) -> tuple[State, str]:
    """A line's state and figure, saying what happens to the app's edits: how many were
    accepted, or, when they alone cross the line, the flag that accepts them."""
    count = len(checks.deep.table_edits())
    if checks.accepting and count:
        figure += f"; the app's edits accepted: {plural(count, 'record')} edited in DynamoDB"
    elif not passed and checks.only_table_edits():
        figure += (
            f"; every difference ({plural(count, 'record')}) is an edit made in DynamoDB "
            "since the migration (the app, or damage): "
            "`khpl-migrate review --allow-table-edits` accepts them as the app's"
        )
    return _state(passed), figure


def _verify_line(checks: Checks) -> ChecklistLine:
    summary, deep = checks.summary, checks.deep
    total, identical = len(deep.entries), deep.count("=")
    figure = (
        f"{summary.in_both:,} of {summary.s3_records:,} source records are in DynamoDB; "
        f"{identical:,} of {total:,} identical field for field and byte for byte"
    )
    if summary.unusable:
        figure += f"; {len(summary.unusable):,} cannot be migrated"
    accepted = len(_accepted(checks))
    passed = deep.complete(summary) and total and identical + accepted == total
    state, figure = _app_edits(checks, passed, figure)
    return ChecklistLine("verify", "Run verification script shows 100% success", state, figure)


def _data_line(checks: Checks) -> ChecklistLine:
    migrated = _migrated(checks)
    accepted = _accepted(checks)
    fields_ok = sum(1 for e in migrated if e.fields_ok)
    passes = sum(1 for e in migrated if e.fields_ok or e.index in accepted)
    state, figure = _app_edits(
        checks,
        migrated and passes == len(migrated) == checks.summary.in_both,
        f"{len(migrated):,} items read back from {checks.table}; "
        f"every field matches the source in {fields_ok:,}",
    )
    return ChecklistLine("data", "Test admin panel loads migrated data", state, figure)


def _images_line(checks: Checks) -> ChecklistLine:
    migrated = _migrated(checks)
    accepted = _accepted(checks)
    images = sum(e.images for e in migrated)
    images_ok = sum(e.images_ok for e in migrated)
    passes = sum(e.images if e.index in accepted else e.images_ok for e in migrated)
    state, figure = _app_edits(
        checks,
        images and passes == images,
        f"{images_ok:,} of {images:,} images match the source's bytes and decode",
    )
    return ChecklistLine("images", "Verify images display correctly", state, figure)


def _backups_line(checks: Checks) -> ChecklistLine:
    bad = [b for b in checks.backups if b.matches_source is False]
    kept = {b.key for b in checks.backups}
    runs_without = [
        r.run_id for r in checks.runs if r.header.backup_key and r.header.backup_key not in kept
    ]
    return ChecklistLine(
        "backups",
        "Check backup files were created",
        _state(checks.backups and not bad and not runs_without),
        _backups_figure(checks.backups, bad, runs_without),
    )


def _orphans_line(checks: Checks) -> ChecklistLine:
    deep = checks.deep
    figure = (
        f"{plural(len(deep.orphans), 'image object')} without an item; "
        f"{plural(len(deep.unexplained), 'migrated item')} without a source record"
    )
    if checks.accepting and deep.of_deleted_items:
        figure += (
            f"; the app's deletions accepted: {plural(len(deep.of_deleted_items), 'image object')}"
            " of items deleted in DynamoDB"
        )
    passed = not (deep.orphans or deep.unexplained)
    if not passed and checks.only_table_edits():
        figure += (
            "; the image objects are those of items the app deleted: "
            "`khpl-migrate review --allow-table-edits` accepts the app's deletions"
        )
    return ChecklistLine(
        "orphans",
        "No orphans: every image object has its item, every item its source record",
        _state(passed),
        figure,
    )


def _runs_line(checks: Checks) -> ChecklistLine:
    # A run with no summary was cut off and not yet resumed; one that stopped early
    # and was resumed is history (verify says whether anything is still missing).
    cut_off = [r for r in checks.runs if r.summary is None]
    stopped = [r for r in checks.runs if r.stopped]
    return ChecklistLine(
        "runs",
        "Runs recorded, each with its rollback command",
        _state(checks.runs and not cut_off),
        plural(len(checks.runs), "run")
        + (f"; {len(stopped):,} stopped early" if stopped else "")
        + (f"; {len(cut_off):,} cut off (run migrate --apply again)" if cut_off else ""),
    )


def _sync_line(checks: Checks) -> ChecklistLine:
    """The cut-over: nothing changed in the source that the table lacks."""
    entries = checks.deep.entries
    source = sum(1 for e in entries if "source" in e.sides)
    both = sum(1 for e in entries if "both" in e.sides)
    waiting = len(checks.deep.unexplained)
    return ChecklistLine(
        "sync",
        "Source and table in step (run sync while the app still writes registrations.json)",
        _state(not (source or both or waiting)),
        f"{plural(source, 'record')} changed in the source since the migration; "
        f"{plural(both, 'conflict')}; {plural(waiting, 'deletion')} waiting",
    )


def _app_line(checks: Checks) -> ChecklistLine:
    # The switch itself is in the app's settings; what this page can see is the
    # cut-over's guard that follows it: nothing can write registrations.json any more.
    if checks.frozen:
        return ChecklistLine(
            "app",
            "Update application to use DynamoDB-only mode",
            "pass",
            "registrations.json is frozen (freeze-source): nothing can write it any more, "
            "so the app's writes go to DynamoDB only",
        )
    return ChecklistLine(
        "app",
        "Update application to use DynamoDB-only mode",
        "todo",
        "by hand, in the app's settings: this page cannot check it; "
        "then `khpl-migrate freeze-source --apply` (ticked once the source is frozen)",
    )


def _archive_line(checks: Checks) -> ChecklistLine:
    same = [key for key, identical in checks.archives.items() if identical]
    return ChecklistLine(
        "archive",
        "Consider archiving old S3 registrations.json",
        "pass" if same else "todo",
        f"archived as {same[-1]}, the same bytes as {checks.source_uri}"
        if same
        else "not archived yet: use Archive the source below",
    )


# The guide's checklist, in its order.
LINES: tuple[Callable[[Checks], ChecklistLine], ...] = (
    _verify_line,
    _data_line,
    _images_line,
    _backups_line,
    _orphans_line,
    _runs_line,
    _sync_line,
    _app_line,
    _archive_line,
)


def _state(passed: object) -> State:
    return "pass" if passed else "fail"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _backups_figure(backups: list[Backup], bad: list[Backup], runs_without: list[str]) -> str:
    if not backups:
        return "no backup of the source found"
    good = len(backups) - len(bad)
    count = plural(len(backups), "backup")
    text = f"{count}; {good:,} of {len(backups):,} hold the bytes their run read"
    if runs_without:
        text += f"; {plural(len(runs_without), 'run')} without the backup they took"
    return text


def rollback_command(run_id: str) -> str:
    return f"khpl-migrate rollback --run {run_id} --apply"
