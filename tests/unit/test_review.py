"""The review page's pure parts: the checklist's judgement, search and pages, masking."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

from PIL import Image

from khpl_migrate.core.layout import archive_key
from khpl_migrate.kernel.backups import Backup
from khpl_migrate.kernel.manifest import Manifest, RunHeader, SummaryLine
from khpl_migrate.review.checks import Checks, RecordRow, checklist
from khpl_migrate.review.records import find, image_refs, shown_fields, thumbnail
from khpl_migrate.verify.model import DeepEntry, DeepReport
from khpl_migrate.verify.status import VerifyReport


def _entry(index: int, status: str = "=", **kw: Any) -> DeepEntry:
    defaults: dict[str, Any] = {"images": 3, "images_ok": 3, "fields_ok": True}
    return DeepEntry(index, f"R{index}", status, **(defaults | kw))  # type: ignore[arg-type]


def _checks(
    entries: list[DeepEntry] | None = None,
    *,
    orphans: list[str] | None = None,
    backups: list[Backup] | None = None,
    runs: list[Manifest] | None = None,
    archives: dict[str, bool] | None = None,
    allow_table_edits: bool = False,
    frozen: bool = False,
) -> Checks:
    entries = entries if entries is not None else [_entry(i) for i in range(4)]
    present = sum(1 for e in entries if e.status != "-")
    summary = VerifyReport(
        "s3://b/registrations.json",
        "T",
        True,
        s3_records=len(entries),
        dynamo_records=present,
        in_both=present,
        only_in_s3=[(str(e.id), None) for e in entries if e.status == "-"],
    )
    header = RunHeader(run_id="run1", backup_key="migration-backup-x")
    run = Manifest("run1", "k", header, (), SummaryLine(finished_at="t"))
    backup = Backup("migration-backup-x", 10, "run1", True, True)
    return Checks(
        checked_at=datetime.now(UTC),
        seconds=0.1,
        source_uri="s3://b/registrations.json",
        source_sha256="ab",
        summary=summary,
        deep=DeepReport(
            entries=entries, orphans=orphans or [], allow_table_edits=allow_table_edits
        ),
        rows=[],
        backups=[backup] if backups is None else backups,
        runs=[run] if runs is None else runs,
        archives=archives or {},
        table="T",
        frozen=frozen,
    )


def _states(checks: Checks) -> dict[str, str]:
    return {line.key: line.state for line in checklist(checks)}


def test_a_clean_migration_ticks_every_line_a_check_can_judge() -> None:
    states = _states(_checks())
    assert states == {
        "verify": "pass",
        "data": "pass",
        "images": "pass",
        "backups": "pass",
        "orphans": "pass",
        "runs": "pass",
        "sync": "pass",
        "app": "todo",  # the app's setting: nothing here can check it
        "archive": "todo",
    }
    figures = {line.key: line.figure for line in checklist(_checks())}
    assert "4 of 4 source records are in DynamoDB" in figures["verify"]
    assert "12 of 12 images" in figures["images"]


def test_a_damaged_image_crosses_verify_and_images_but_not_the_fields() -> None:
    damaged = _entry(2, "*", images_ok=2, details=("image userPhoto: bytes differ",))
    lines = {line.key: line for line in checklist(_checks([_entry(0), _entry(1), damaged]))}
    assert lines["verify"].state == "fail" and "2 of 3 identical" in lines["verify"].figure
    assert lines["images"].state == "fail" and "8 of 9 images" in lines["images"].figure
    assert lines["data"].state == "pass"


def test_a_changed_field_crosses_the_admin_panel_line() -> None:
    changed = _entry(1, "*", fields_ok=False, details=("field name: value differs",))
    states = _states(_checks([_entry(0), changed]))
    assert states["data"] == "fail" and states["verify"] == "fail" and states["images"] == "pass"


def test_a_missing_record_crosses_verify() -> None:
    states = _states(_checks([_entry(0), _entry(1, "-", images=0, images_ok=0)]))
    assert states["verify"] == "fail"


def test_orphans_backups_runs_and_archive_are_each_judged() -> None:
    assert _states(_checks(orphans=["registration-images/x/a.png"]))["orphans"] == "fail"
    assert _states(_checks(backups=[]))["backups"] == "fail"
    bad = Backup("migration-backup-x", 10, "run1", False, False)
    assert _states(_checks(backups=[bad]))["backups"] == "fail"
    header = RunHeader(run_id="run2", backup_key="migration-backup-x")
    cut_off = Manifest("run2", "k2", header, (), None)
    assert _states(_checks(runs=[cut_off]))["runs"] == "fail"
    assert _states(_checks(runs=[]))["runs"] == "fail"
    archived = _checks(archives={"archive/registrations-2026-11-28.json": True})
    assert _states(archived)["archive"] == "pass"
    stale = _checks(archives={"archive/registrations-2026-11-01.json": False})
    assert _states(stale)["archive"] == "todo"


def _app_edits() -> list[DeepEntry]:
    """Two records the app edited in DynamoDB since the migration: a field, and a photo it
    replaced in S3; the others identical."""
    field = _entry(1, "*", fields_ok=False, details=("field village",), sides=("table",))
    photo = _entry(2, "*", images_ok=2, details=("image userPhoto",), sides=("table",))
    return [_entry(0), field, photo, _entry(3)]


def test_without_the_flag_the_apps_edits_cross_lines_that_name_the_flag() -> None:
    lines = {line.key: line for line in checklist(_checks(_app_edits()))}
    for key in ("verify", "data", "images"):
        assert lines[key].state == "fail"
        assert "`khpl-migrate review --allow-table-edits` accepts" in lines[key].figure
        assert "every difference (2 records) is an edit made in DynamoDB" in lines[key].figure


def test_allow_table_edits_ticks_every_line_and_says_how_many_it_accepted() -> None:
    checks = _checks(
        _app_edits(),
        allow_table_edits=True,
        frozen=True,
        archives={"archive/registrations-2026-11-28.json": True},
    )
    lines = {line.key: line for line in checklist(checks)}
    assert {line.state for line in lines.values()} == {"pass"}
    for key in ("verify", "data", "images"):
        assert "the app's edits accepted: 2 records edited in DynamoDB" in lines[key].figure
    assert "2 of 4 identical" in lines["verify"].figure  # the figures stay true
    assert "registrations.json is frozen (freeze-source)" in lines["app"].figure


def test_allow_table_edits_never_accepts_damage_a_source_change_or_a_lost_record() -> None:
    for other in (
        _entry(3, "*", images_ok=2, sides=("damage",)),
        _entry(3, "*", fields_ok=False, sides=("source",)),
        _entry(3, "*", fields_ok=False, sides=("table", "source")),
        _entry(3, "*", fields_ok=False),  # its side could not be named
        _entry(3, "-", images=0, images_ok=0),  # never migrated
    ):
        entries = [*_app_edits()[:3], other]
        states = _states(_checks(entries, allow_table_edits=True))
        assert states["verify"] == "fail", other
        lines = checklist(_checks(entries))
        assert not any("--allow-table-edits" in line.figure for line in lines), other


def _rows(count: int) -> list[RecordRow]:
    names = ["Arjun Gowda", "Kiran Shetty", "Ravi Rao"]
    return [RecordRow(i, f"KHPL_{1000 + i}", names[i % 3], "=") for i in range(count)]


def test_source_edits_conflicts_and_waiting_deletions_cross_the_sync_line() -> None:
    assert _states(_checks([_entry(0, "*", sides=("table",))]))["sync"] == "pass"  # the app's
    for entry in (_entry(0, "*", sides=("source",)), _entry(0, "*", sides=("both",))):
        assert _states(_checks([entry]))["sync"] == "fail"
    checks = _checks()
    checks.deep.unexplained = ["KHPL_gone"]
    line = next(line for line in checklist(checks) if line.key == "sync")
    assert line.state == "fail"
    assert line.figure == (
        "0 records changed in the source since the migration; 0 conflicts; 1 deletion waiting"
    )


def test_pages_hold_fifty_records_and_clamp_out_of_range_numbers() -> None:
    rows = _rows(120)
    first, last = find(rows), find(rows, page=3)
    assert (first.pages, len(first.rows), first.rows[0].index) == (3, 50, 0)
    assert (len(last.rows), last.rows[0].index) == (20, 100)
    assert find(rows, page=99).number == 3 and find(rows, page=-4).number == 1
    assert find([], "x").pages == 1


def test_search_matches_id_or_name_in_any_case_every_word() -> None:
    rows = _rows(9)
    assert {r.index for r in find(rows, "gowda").rows} == {0, 3, 6}
    assert [r.index for r in find(rows, "KHPL_1004").rows] == [4]
    assert {r.index for r in find(rows, "  SHETTY  kiran ").rows} == {1, 4, 7}
    assert find(rows, "gowda shetty").matches == 0


def test_shown_fields_leave_out_the_migration_metadata_and_put_the_name_first() -> None:
    item = {
        "village": "Kota",
        "name": "Ravi Rao",
        "phone": "9876543210",
        "nested": {"aadhaar": "234567890123"},
        "migratedFrom": "S3",
        "imageUploadResults": {},
        "bio": "x" * 500,
    }
    shown = dict(shown_fields(item))
    assert next(iter(shown)) == "name"
    assert "migratedFrom" not in shown and "imageUploadResults" not in shown
    assert shown["phone"] == "XXXXXX3210"
    assert "234567890123" not in shown["nested"]
    assert len(shown["bio"]) == 200 and shown["bio"].endswith("…")


def test_aadhaar_images_are_marked_sensitive_by_name_or_field() -> None:
    item = {
        "imageUploadResults": {
            "aadhaar": {"s3Key": "registration-images/a/aadhaar.png", "field": ["aadhaarCopy"]},
            "userPhoto": {"s3Key": "registration-images/a/userPhoto.jpeg", "field": ["image"]},
            "documents-1": {"s3Key": "registration-images/a/d.png", "field": ["uidScan", 0]},
        }
    }
    sensitive = {ref.name: ref.sensitive for ref in image_refs(item)}
    assert sensitive == {"aadhaar": True, "documents-1": True, "userPhoto": False}


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_thumbnails_are_small_jpegs_and_undecodable_bytes_give_none() -> None:
    small = thumbnail(_jpeg(800, 400))
    assert small is not None
    with Image.open(io.BytesIO(small)) as picture:
        assert picture.format == "JPEG" and max(picture.size) == 192
    assert thumbnail(b"\xff\xd8\xff not really a jpeg") is None


def test_archive_keys_carry_the_date() -> None:
    day = date(2026, 11, 28)
    assert archive_key("registrations.json", day) == "archive/registrations-2026-11-28.json"
    assert archive_key("data/regs", day) == "archive/regs-2026-11-28.json"
