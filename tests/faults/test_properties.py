"""Random sources under random fault schedules: after a run and one re-run, every
valid record is migrated exactly and every invalid one is reported."""

from __future__ import annotations

import base64
import contextlib
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.core.dataurls import looks_like_data_url
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.setup import local
from khpl_migrate.setup.table import create_table
from tests.faults.proxy import FaultProxy, Rule
from tests.helpers import put_source, restored

pytestmark = pytest.mark.faults

text = st.text(max_size=12).filter(lambda s: not looks_like_data_url(s))
valid = st.builds(
    lambda name, fee, data, mime: {
        "name": name,
        "fee": fee,
        "image": f"data:{mime};base64,{base64.b64encode(data).decode()}",
    },
    text,
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=10**6),
    st.binary(min_size=1, max_size=200),
    st.sampled_from(["image/jpeg", "image/png", "application/pdf"]),
)
invalid = st.sampled_from(
    [
        {"name": "no id"},
        {"id": "KHPL/bad", "name": "slash"},
        {"id": "", "name": "empty"},
        {"image": "data:image/png;base64,@@@", "name": "bad base64"},
        "not an object",
    ]
)
schedules = st.fixed_dictionaries(
    {
        kind: st.floats(0, 0.12)
        for kind in ("throttle", "internal", "reset_request", "reset_response")
    }
)


# Examples come from the profile: 6 by default, more with `pytest --slow` (tests/conftest.py).
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(
        st.one_of(valid.map(lambda r: ("valid", r)), invalid.map(lambda r: ("invalid", r))),
        min_size=1,
        max_size=12,
    ),
    schedule=schedules,
    seed=st.integers(0, 1000),
)
def test_valid_records_migrate_exactly_and_invalid_ones_are_reported(
    stack: local.Stack,
    env: dict[str, str],
    entries: list[tuple[str, Any]],
    schedule: dict[str, float],
    seed: int,
) -> None:
    token = uuid.uuid4().hex[:10]
    names = {
        "REACT_APP_S3_BUCKET_NAME": f"khpl-prop-{token}",
        "REACT_APP_DYNAMODB_TABLE_NAME": f"KHPL-Prop-{token}",
    }
    records, expected_valid, expected_invalid = [], {}, []
    for index, (kind, body) in enumerate(entries):
        if kind == "valid":
            record = {"id": f"KHPL_{index}_{token}", **body}
            expected_valid[record["id"]] = record
        else:
            record = body if not isinstance(body, dict) or "id" in body else dict(body)
            if isinstance(record, dict) and "image" in record:
                record = {"id": f"KHPL_bad_{index}_{token}", **record}
            expected_invalid.append(index)
        records.append(record)
    clean = settings_mod.load(env={**env, **names})
    store = Store(clean)
    store.create_bucket(clean.bucket or "")
    put_source(store, clean, records)
    create_table(store, clean)

    rules = [Rule(kind, rate=rate) for kind, rate in schedule.items()]  # type: ignore[arg-type]
    s3 = FaultProxy(stack.s3.port, rules, seed).start()
    ddb = FaultProxy(
        stack.dynamodb.port, [Rule(k, rate=r) for k, r in schedule.items()], seed + 1
    ).start()  # type: ignore[arg-type]
    try:
        faulted = settings_mod.load(
            env={
                **env,
                **names,
                "AWS_ENDPOINT_URL_S3": s3.url,
                "AWS_ENDPOINT_URL_DYNAMODB": ddb.url,
            },
            max_attempts=15,
            workers=4,
        )
        # A run may stop on a fault (retries exhausted): the re-run must finish it.
        with contextlib.suppress(errors.KhplError):
            apply_plan(Store(faulted), faulted, build_plan(Store(faulted), faulted))
    finally:
        s3.stop()
        ddb.stop()
    again = apply_plan(store, clean, build_plan(store, clean))

    assert sorted(f.index for f in again.failed) == expected_invalid
    for rid, record in expected_valid.items():
        item = store.get_item(clean.table, rid)
        assert item is not None, rid
        assert restored(store, clean, item) == record
