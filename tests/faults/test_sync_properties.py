"""A Hypothesis state machine: random interleavings of source edits, app edits, new
records on both sides, deletions in the source and sync runs, against the real stack.

The model is the table of the issue, applied to plain values: after every sync the
table must hold what the model says, every conflict the model sees must be reported
(and no other), a second sync must write nothing, and verify --deep must agree.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from khpl_migrate import local, sample
from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.deep import deep_verify
from khpl_migrate.sync import SyncOptions
from khpl_migrate.sync_apply import apply_sync
from khpl_migrate.sync_plan import plan_sync
from khpl_migrate.table import create_table
from tests.helpers import migrate, put_source

pytestmark = pytest.mark.faults
FIELDS = ("village", "paymentStatus")
VALUES = st.sampled_from(["one", "two"])  # few values: sides meet, agree and conflict
Fields = dict[str, str]


def test_sync_keeps_every_edit_or_reports_it(stack: local.Stack, env: dict[str, str]) -> None:
    class SyncMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            token = uuid.uuid4().hex[:10]
            names = {
                "REACT_APP_S3_BUCKET_NAME": f"khpl-sm-{token}",
                "REACT_APP_DYNAMODB_TABLE_NAME": f"KHPL-SM-{token}",
            }
            self.settings = settings_mod.load(env={**env, **names}, workers=4)
            self.store = Store(self.settings)
            self.store.create_bucket(self.settings.require_bucket())
            self.records = {r["id"]: r for r in sample.registrations(3, seed=5)}
            self.order = list(self.records)
            put_source(self.store, self.settings, list(self.records.values()))
            create_table(self.store, self.settings)
            assert migrate(self.store, self.settings).ok
            fields = {rid: {f: str(r[f]) for f in FIELDS} for rid, r in self.records.items()}
            self.source: dict[str, Fields] = {rid: dict(v) for rid, v in fields.items()}
            self.item: dict[str, Fields] = {rid: dict(v) for rid, v in fields.items()}
            self.base: dict[str, Fields] = {rid: dict(v) for rid, v in fields.items()}
            self.apps: dict[str, Fields] = {}  # the app's own registrations
            self.newcomers = 0

        def upload(self) -> None:
            body = [{**self.records[rid], **self.source[rid]} for rid in self.order]
            put_source(self.store, self.settings, body)

        @rule(at=st.integers(0, 9), name=st.sampled_from(FIELDS), value=VALUES)
        def edit_the_source(self, at: int, name: str, value: str) -> None:
            if self.order:
                self.source[self.order[at % len(self.order)]][name] = value
                self.upload()

        @rule(at=st.integers(0, 9), name=st.sampled_from(FIELDS), value=VALUES)
        def the_app_edits(self, at: int, name: str, value: str) -> None:
            if self.item:
                rid = sorted(self.item)[at % len(self.item)]
                self._app_sets(rid, name, value)
                self.item[rid][name] = value

        @rule(value=VALUES)
        def the_app_registers(self, value: str) -> None:
            rid = f"KHPL_app_{len(self.apps)}"
            self.apps[rid] = {f: value for f in FIELDS}
            self.store.put_item_if_absent(self.settings.table, {"id": rid, **self.apps[rid]})

        @rule(at=st.integers(0, 9))
        def deleted_in_the_source(self, at: int) -> None:
            if self.order:
                self.order.pop(at % len(self.order))
                self.upload()

        @rule()
        def new_in_the_source(self) -> None:
            self.newcomers += 1
            record = sample.registrations(1, seed=1000 + self.newcomers)[0]
            record["id"] = f"KHPL_new_{self.newcomers}"
            self.records[record["id"]] = record
            self.source[record["id"]] = {f: str(record[f]) for f in FIELDS}
            self.order.append(record["id"])
            self.upload()

        @rule(delete=st.booleans())
        def sync(self, delete: bool) -> None:
            options = SyncOptions(delete=delete, max_delete=100)
            plan = plan_sync(self.store, self.settings, options)
            result = apply_sync(self.store, self.settings, plan)
            conflicts = self.model_sync(delete)
            reported = {(e.id, unit[1]) for e in result.entries for unit in e.conflicts}
            assert reported == conflicts, (reported, conflicts)
            again = plan_sync(self.store, self.settings, options)
            assert again.to_write() == [], [e.id for e in again.to_write()]
            self.deep_agrees(conflicts)

        def model_sync(self, delete: bool) -> set[tuple[str, str]]:
            """The issue's table, on plain values: what the table must hold now."""
            conflicts = set()
            for rid in list(self.item):
                if rid not in self.order:  # deleted in the source
                    if delete and self.item[rid] == self.base[rid]:
                        del self.item[rid]
                    continue
                for name in FIELDS:
                    s, d, b = self.source[rid][name], self.item[rid][name], self.base[rid][name]
                    if s == d:
                        self.base[rid][name] = s
                    elif d == b:
                        self.item[rid][name] = self.base[rid][name] = s
                    elif s != b:
                        conflicts.add((rid, name))
            for rid in self.order:
                if rid not in self.item:  # new in the source: migrated
                    self.item[rid] = dict(self.source[rid])
                    self.base[rid] = dict(self.source[rid])
            return conflicts

        def deep_agrees(self, conflicts: set[tuple[str, str]]) -> None:
            _, deep = deep_verify(self.store, self.settings)
            by_id = {e.id: e for e in deep.entries}
            for rid in self.order:
                if rid not in self.item:
                    continue
                entry = by_id[rid]
                same = self.item[rid] == self.source[rid]
                assert (entry.status == "=") == same, (rid, entry.details)
                assert ("both" in entry.sides) == any(c[0] == rid for c in conflicts), rid
                assert "source" not in entry.sides, (rid, entry.details)  # all carried over

        @invariant()
        def the_table_holds_what_the_model_says(self) -> None:
            table = {str(i["id"]): i for i in self.store.scan(self.settings.table)}
            assert set(table) == set(self.item) | set(self.apps)
            for rid, fields in self.item.items():
                assert {f: str(table[rid][f]) for f in FIELDS} == fields, rid
            for rid, fields in self.apps.items():
                assert {f: table[rid][f] for f in FIELDS} == fields, rid  # never touched

        def _app_sets(self, rid: str, name: str, value: str) -> None:
            self.store.ddb.update_item(
                TableName=self.settings.table,
                Key={"id": {"S": rid}},
                UpdateExpression="SET #f = :v",
                ExpressionAttributeNames={"#f": name},
                ExpressionAttributeValues={":v": {"S": value}},
            )

    run_state_machine_as_test(
        SyncMachine,
        settings=hypothesis_settings(
            # More examples than the fault suite's default: each is a few real syncs, a
            # second or two, and a lost edit hides in a longer interleaving.
            max_examples=max(25, hypothesis_settings().max_examples),
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
