"""The manifest's schema: every line type round-trips, a damaged line is skipped, and the
lines of the released 0.1.0 decode, none lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from khpl_migrate.kernel.manifest import (
    ImageLine,
    ImageMove,
    IntentLine,
    Line,
    RecordLine,
    RepairLine,
    RunHeader,
    SourceVersion,
    SummaryLine,
    decode,
    encode,
    parse_manifest,
)

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "manifests-0.1.0" / "migration-runs"

LINES: list[Line] = [
    RunHeader(
        run_id="R",
        kind="sync",
        started_at="2026-12-07T05:54:37.546Z",
        table="T",
        bucket="b",
        source=SourceVersion("registrations.json", '"e"', None, 10, "ab"),
        backup_key="migration-backup-x",
        planned={"in_step": 2},
        schema=2,
    ),
    RecordLine(id="a", index=0, outcome="migrated", images=(ImageLine("k", "h", 3, True),)),
    RecordLine(id="b", index=1, outcome="updated", carried=("field village",)),
    IntentLine(
        id="a",
        set=("image userPhoto",),
        prev={"image userPhoto": "R0"},
        images={"userPhoto": ImageMove({"s3Key": "old"}, {"s3Key": "new"})},
    ),
    IntentLine(id="c", delete=True, item={"migrationRunId": "R0", "imageUploadResults": {}}),
    RepairLine(id="a", key="k", sha256="h"),
    SummaryLine(finished_at="t", stopped=None, outcomes={"updated": 1}, failed=0),
]


@pytest.mark.parametrize("line", LINES, ids=lambda line: type(line).__name__)
def test_every_line_type_round_trips(line: Line) -> None:
    assert decode(encode(line)) == line


def test_keys_are_camel_case_on_the_wire() -> None:
    wire = encode(RecordLine(id="a", index=0, outcome="migrated", item_written=True))
    assert wire == b'{"type":"record","id":"a","index":0,"outcome":"migrated","itemWritten":true}'


def test_a_line_cut_short_or_of_an_unknown_type_is_skipped_and_the_rest_count() -> None:
    body = b"\n".join(
        [encode(LINES[0]), encode(LINES[1]), b'{"type":"from-the-future","x":1}', b'{"type":"rec']
    )
    manifest = parse_manifest("R", "k", body)
    assert manifest.header == LINES[0] and manifest.records == (LINES[1],)
    assert manifest.summary is None


def test_no_line_of_the_released_version_is_lost() -> None:
    for path in sorted(OLD.rglob("*.jsonl")):
        lines = [raw for raw in path.read_bytes().splitlines() if raw.strip()]
        decoded = [decode(raw) for raw in lines]
        assert None not in decoded, path
        kinds = [type(line).__name__ for line in decoded]
        assert kinds[0] == "RunHeader", path


def test_old_outcomes_in_words_read_as_codes() -> None:
    raw = b'{"type": "record", "index": 3, "id": "x", "outcome": "left untouched", "images": []}'
    line = decode(raw)
    assert isinstance(line, RecordLine) and line.outcome == "left_untouched"
