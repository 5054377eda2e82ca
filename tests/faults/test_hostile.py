"""A corpus of hostile sources, each with its expected outcome.

Whole-source problems are refused before any write, saying why and where;
record-level problems fail that record with a reason and the run goes on. The
source object is byte-for-byte unchanged after every case.
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.transform import dumps
from khpl_migrate.kernel.runner import SerialRunner
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.helpers import items, objects, put_source

pytestmark = pytest.mark.faults


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def b64url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"n": value}
    return value


GOOD = {"id": "KHPL_good", "name": "Asha", "image": b64url("image/png", png())}


@dataclass
class Case:
    name: str
    raw: bytes
    refused: str | None = None  # a fragment of the refusal message
    outcomes: dict[int, tuple[str, str]] = field(
        default_factory=dict
    )  # index -> (outcome, fragment)
    records_path: str | None = None
    warnings: int = 0


def records(*entries: Any) -> bytes:
    return dumps(list(entries)).encode()


CASES = [
    Case("empty file", b"", refused="is empty"),
    Case("empty array", b"[]"),
    Case("whitespace only", b"   \n", refused="not valid JSON"),
    Case(
        "truncated",
        records(GOOD, GOOD | {"id": "KHPL_2"})[:-30],
        refused="not valid JSON near byte",
    ),
    Case("trailing garbage", records(GOOD) + b" {}", refused="not valid JSON"),
    Case("top-level object", b'{"registrations": []}', refused="--records-path"),
    Case(
        "top-level object with --records-path",
        b'{"v": 2, "registrations": ' + records(GOOD) + b"}",
        outcomes={0: ("migrated", "")},
        records_path="registrations",
    ),
    Case(
        "--records-path to a missing key",
        b'{"other": []}',
        refused="has nothing",
        records_path="registrations",
    ),
    Case("top-level string", b'"registrations"', refused="holds a string"),
    Case("UTF-8 byte-order mark", b"\xef\xbb\xbf" + records(GOOD), outcomes={0: ("migrated", "")}),
    Case(
        "invalid UTF-8", b'[{"id": "KHPL_x", "name": "\xff\xfe"}]', refused="invalid bytes in UTF8"
    ),
    Case("NaN", b'[{"id": "KHPL_x", "fee": NaN}]', refused="not valid JSON"),
    Case("Infinity", b'[{"id": "KHPL_x", "fee": Infinity}]', refused="not valid JSON"),
    Case(
        "duplicate keys in one object",
        b'[{"id": "KHPL_d", "name": "A", "name": "B"}]',
        outcomes={0: ("failed", "appears twice")},
    ),
    Case(
        "duplicate ids",
        records(GOOD, GOOD | {"name": "Other"}),
        outcomes={0: ("migrated", ""), 1: ("failed", "duplicate id")},
    ),
    Case("numeric id", records({"id": 42}), outcomes={0: ("failed", "not a string")}),
    Case("empty id", records({"id": ""}), outcomes={0: ("failed", "empty")}),
    Case("id with a slash", records({"id": "KHPL/../x"}), outcomes={0: ("failed", "unsafe")}),
    Case("id '..'", records({"id": ".."}), outcomes={0: ("failed", "unsafe")}),
    Case(
        "id with a control character",
        records({"id": "KHPL_\u0007"}),
        outcomes={0: ("failed", "unsafe")},
    ),
    Case(
        "100 levels of nesting",
        records({"id": "KHPL_deep", "d": nested(100)}),
        outcomes={0: ("failed", "32 levels")},
    ),
    Case(
        "a 10 MB string field",
        records({"id": "KHPL_big", "notes": "x" * 10_000_000}),
        outcomes={0: ("failed", "409,600")},
    ),
    Case(
        "empty data URL",
        records({"id": "KHPL_e", "image": "data:image/png;base64,"}),
        outcomes={0: ("failed", "empty data URL")},
    ),
    Case(
        "data URL without base64 (percent-encoded)",
        records({"id": "KHPL_p", "note": "data:text/plain,hi%20there"}),
        outcomes={0: ("migrated", "")},
    ),
    Case(
        "PNG bytes labelled JPEG",
        records({"id": "KHPL_m", "image": b64url("image/jpeg", png())}),
        outcomes={0: ("migrated", "")},
        warnings=1,
    ),
    Case(
        "an image over 10 MB",
        records(
            {"id": "KHPL_huge", "image": b64url("application/octet-stream", os.urandom(10_500_000))}
        ),
        outcomes={0: ("migrated", "")},
    ),
    Case(
        "over 400 KB after extraction",
        records({"id": "KHPL_o", "image": b64url("image/png", png()), "notes": "y" * 420_000}),
        outcomes={0: ("failed", "409,600")},
    ),
    Case(
        "empty attribute name",
        records({"id": "KHPL_n", "": 1}),
        outcomes={0: ("failed", "empty attribute name")},
    ),
    Case(
        "empty nested attribute name",
        records({"id": "KHPL_n2", "m": {"": 1}}),
        outcomes={0: ("failed", "empty attribute name")},
    ),
    Case(
        "entries that are not objects",
        records("text", [1, 2], None, 7, GOOD),
        outcomes={i: ("failed", "not a registration object") for i in range(4)}
        | {4: ("migrated", "")},
    ),
    Case("no id", records({"name": "nobody"}), outcomes={0: ("failed", "no id")}),
    Case(
        "a field the migration writes",
        records({"id": "KHPL_r", "migratedFrom": "elsewhere"}),
        outcomes={0: ("failed", "which the migration writes")},
    ),
    Case(
        "39-digit number",
        b'[{"id": "KHPL_num", "n": 123456789012345678901234567890123456789}]',
        outcomes={0: ("failed", "38")},
    ),
    Case(
        "invalid base64",
        records({"id": "KHPL_b", "image": "data:image/png;base64,****"}),
        outcomes={0: ("failed", "invalid base64")},
    ),
    Case(
        "exact numbers",
        b'[{"id": "KHPL_x", "fee": 499.50, "big": 123456789012345678901234567890}]',
        outcomes={0: ("migrated", "")},
    ),
]


@pytest.fixture
def hostile_settings(env: dict[str, str]) -> Settings:
    return settings_mod.load(env=env, workers=1)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_source(case: Case, hostile_settings: Settings) -> None:
    settings = Settings(**{**hostile_settings.__dict__, "records_path": case.records_path})
    store = Store(settings)
    store.create_bucket(settings.bucket or "")
    put_source(store, settings, raw=case.raw)
    create_table(store, settings)
    before = objects(store, settings)

    if case.refused:
        with pytest.raises(errors.SourceInvalid) as refused:
            plan = build_plan(store, settings)
            apply_plan(store, settings, plan, runner=SerialRunner())
        assert case.refused in str(refused.value)
        assert "Traceback" not in str(refused.value)
        assert objects(store, settings) == before and items(store, settings) == {}
    else:
        result = apply_plan(store, settings, build_plan(store, settings), runner=SerialRunner())
        assert result.migrated + result.skipped + len(result.failed) == result.total
        failures = {f.index: f.reason for f in result.failed}
        migrated = set(items(store, settings))
        for index, (outcome, fragment) in case.outcomes.items():
            if outcome == "failed":
                assert fragment in failures[index], (index, failures)
            else:
                assert index not in failures, failures
        assert len(migrated) == sum(1 for o, _ in case.outcomes.values() if o == "migrated")
        assert len(result.warnings) == case.warnings
    assert (
        store.get_bytes(settings.bucket or "", settings.source_key) == case.raw
    )  # source untouched


def test_the_corpus_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


def test_a_refusal_says_where_in_the_file(hostile_settings: Settings) -> None:
    store = Store(hostile_settings)
    store.create_bucket(hostile_settings.bucket or "")
    raw = records(GOOD) + b" {}"
    put_source(store, hostile_settings, raw=raw)
    create_table(store, hostile_settings)
    with pytest.raises(errors.SourceInvalid) as refused:
        build_plan(store, hostile_settings)
    assert f"of {len(raw):,}" in str(refused.value) and "trailing garbage" in str(refused.value)
    assert json.loads(json.dumps(str(refused.value)))  # one printable line
