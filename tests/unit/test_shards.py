"""The stable hash that splits records among shards, the index a process takes, and the
write-rate cap: pure code, and the partition as a property over any ids."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from khpl_migrate.core.errors import ConfigError
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.core.shards import BATCH_INDEX, K8S_INDEX, pick_index, shard_of
from khpl_migrate.kernel.engine import Pace
from khpl_migrate.kernel.manifest import ImageLine, Manifest, RecordLine, RunHeader, SummaryLine
from khpl_migrate.kernel.progress import NullProgress
from khpl_migrate.kernel.runner import SerialRunner
from khpl_migrate.kernel.runs import merge_shards


def test_the_hash_is_sha256_of_the_ids_utf8_mod_n() -> None:
    rid = "KHPL_1701234567_l7axyo"
    assert shard_of(rid, 7) == int(hashlib.sha256(rid.encode()).hexdigest(), 16) % 7
    # Fixed values, worked out once: a change of hash (to the salted hash(), say) would
    # split a run's records differently between its prepare and a re-run shard.
    assert shard_of(rid, 7) == 4
    assert [shard_of(f"KHPL_{n}", 4) for n in range(8)] == [3, 1, 2, 0, 3, 2, 1, 0]
    assert shard_of("ಕನ್ನಡ", 3) == 0


def test_a_record_without_an_id_goes_to_shard_0_and_one_shard_takes_everything() -> None:
    assert shard_of(None, 5) == 0
    assert shard_of("anything", 1) == 0


@given(st.lists(st.text(), max_size=60), st.integers(1, 50))
def test_shards_partition_any_ids(ids: list[str], shards: int) -> None:
    """Every id in exactly one shard, in range, equal ids in the same one."""
    taken: dict[int, list[str]] = {}
    for rid in ids:
        index = shard_of(rid, shards)
        assert 0 <= index < shards
        taken.setdefault(index, []).append(rid)
    assert sorted(rid for part in taken.values() for rid in part) == sorted(ids)
    for rid in ids:
        assert shard_of(rid, shards) == shard_of(str(rid), shards)


def test_a_lone_surrogate_in_an_id_still_hashes() -> None:
    assert 0 <= shard_of("bad\udcff", 4) < 4


@pytest.mark.parametrize(
    ("choice", "env", "expected"),
    [
        ("2", {}, 2),
        ("2", {BATCH_INDEX: "1", K8S_INDEX: "3"}, 2),  # an explicit index wins
        ("auto", {BATCH_INDEX: "3"}, 3),
        ("auto", {K8S_INDEX: "0"}, 0),
        ("auto", {BATCH_INDEX: "1", K8S_INDEX: "1"}, 1),  # both, the same: fine
        ("auto", {BATCH_INDEX: "", K8S_INDEX: "2"}, 2),  # empty is unset
    ],
)
def test_the_index_a_process_takes(choice: str, env: dict[str, str], expected: int) -> None:
    assert pick_index(choice, env, 4) == expected


@pytest.mark.parametrize(
    ("choice", "env", "words"),
    [
        ("auto", {}, "found neither AWS_BATCH_JOB_ARRAY_INDEX nor JOB_COMPLETION_INDEX"),
        ("auto", {BATCH_INDEX: "1", K8S_INDEX: "2"}, "two different indexes"),
        ("auto", {K8S_INDEX: "4"}, "JOB_COMPLETION_INDEX is 4, but the run has 4 shards"),
        ("9", {}, "--shard is 9, but the run has 4 shards"),
        ("-1", {}, "not a shard index"),
        ("auto", {BATCH_INDEX: "one"}, "AWS_BATCH_JOB_ARRAY_INDEX is 'one', not a shard index"),
    ],
)
def test_a_wrong_index_is_a_clear_error(choice: str, env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        pick_index(choice, env, 4)
    assert words in str(caught.value)
    assert caught.value.exit_code == 2 and caught.value.fix


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_write_rate_spaces_writes_by_their_size() -> None:
    clock = FakeClock()
    rate = WriteRate(10, clock=clock, sleep=clock.sleep)
    rate.acquire(5)  # the first goes at once, and books 0.5 s
    rate.acquire(100)  # waits for those 0.5 s, books 10 s
    rate.acquire(1)  # waits the 10 s
    assert clock.slept == pytest.approx([0.5, 10.0])
    clock.now += 60  # idle for a minute: no credit builds up beyond "now"
    rate.acquire(10)
    rate.acquire(1)
    assert clock.slept[2:] == pytest.approx([1.0])
    # Each wait is exactly what the items booked before it take at 10 a second.
    assert rate.waited == pytest.approx(11.5)


def test_a_shared_rate_is_split_evenly_and_none_means_no_cap() -> None:
    clock = FakeClock()
    whole = WriteRate(100, clock=clock, sleep=clock.sleep)
    part = whole.share(4)
    assert part.per_second == 25
    part.acquire(25)
    part.acquire(1)
    assert clock.slept == pytest.approx([1.0])
    free = WriteRate(None, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        free.acquire(100)
    assert clock.slept == pytest.approx([1.0]) and free.share(4).per_second is None
    with pytest.raises(ValueError):
        WriteRate(0)


def _part(index: int, attempt: str, started: str, lines: list[RecordLine], **end: Any) -> Manifest:
    header = RunHeader(run_id="R", shard=index, attempt=attempt, started_at=started)
    summary = SummaryLine(finished_at=started, **end) if end else None
    return Manifest("R", f"shard-{index}.{attempt}.jsonl", header, tuple(lines), summary)


def _line(index: int, outcome: str, images: list[tuple[str, bool]], item: bool) -> RecordLine:
    return RecordLine(
        id=f"id{index}",
        index=index,
        outcome=outcome,
        item_written=item,
        images=tuple(ImageLine(k, "h", 1, w) for k, w in images),
    )


def test_parts_merge_into_one_run_each_record_once_with_all_it_wrote() -> None:
    header = Manifest("R", "manifest.jsonl", RunHeader(run_id="R", shards=4), (), None)
    failed_first = _line(0, "failed", [("a.png", True)], False)  # wrote an image, then failed
    skipped_later = _line(0, "skipped", [], False)
    twin_a = _line(1, "migrated", [("b.png", True), ("c.png", False)], True)
    twin_b = _line(1, "migrated", [("b.png", False), ("c.png", True)], True)
    parts = [
        _part(0, "a1", "t1", [failed_first, twin_a], stopped="interrupted"),
        _part(0, "a2", "t2", [skipped_later, twin_b], stopped=None),
        _part(1, "b1", "t1", [], stopped="AccessDenied"),
        _part(1, "b2", "t3", [], stopped="SourceChanged"),
    ]
    started: set[tuple[int, str | None]] = {(0, "a1"), (0, "a2"), (1, "b1"), (1, "b2"), (2, "c1")}

    merged = merge_shards(header, 4, parts, started)

    by_index = {line.index: line for line in merged.records}
    assert len(merged.records) == 2  # each record once
    assert by_index[0].outcome == "skipped" and by_index[0].images == (
        ImageLine("a.png", "h", 1, True),
    )  # the image the failed attempt wrote is still named, for rollback
    assert {i.key: i.written for i in by_index[1].images} == {
        "b.png": True,
        "c.png": True,
    }
    assert [(s.state, s.attempts, s.why) for s in merged.shards] == [
        ("done", 2, None),
        ("failed", 2, "SourceChanged"),  # the latest attempt's reason
        ("running", 1, None),  # started, no part: running, or cut off
        ("missing", 0, None),
    ]
    assert merged.summary is None  # a shard may still be running


def test_a_run_is_finished_only_when_every_shard_is_done() -> None:
    header = Manifest("R", "manifest.jsonl", RunHeader(run_id="R", shards=2), (), None)
    done = [_part(i, f"x{i}", f"t{i}", [], stopped=None) for i in range(2)]
    assert merge_shards(header, 2, done, set()).finished == "t1"
    one = merge_shards(header, 2, done[:1], set())
    assert one.finished is None and one.stopped == "shards 1 missing"


def test_a_cap_keeps_each_transaction_within_a_seconds_worth() -> None:
    pace = Pace(SerialRunner(), NullProgress(), 100, WriteRate(12.5))
    assert pace.batch == 12
    assert Pace(SerialRunner(), NullProgress(), 100, WriteRate(0.5)).batch == 1
    assert Pace(SerialRunner(), NullProgress(), 100).batch == 100
