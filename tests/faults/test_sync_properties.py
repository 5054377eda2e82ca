"""A Hypothesis state machine: random interleavings of source edits, app edits, new
records on both sides, deletions on both sides and sync runs, against the real stack.

The model is the table of the issue, applied to plain values: after every sync the
table must hold what the model says, every conflict the model sees must be reported
(and no other), a second sync must write nothing, and verify --deep must agree,
down to whether it passes with --allow-table-edits.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core.threeway import RecordState
from khpl_migrate.setup import local, sample
from khpl_migrate.setup.table import create_table
from khpl_migrate.sync.apply import apply_sync
from khpl_migrate.sync.model import SyncOptions
from khpl_migrate.sync.plan import plan_sync
from khpl_migrate.verify.deep import deep_verify
from tests.helpers import app_sets, migrate, put_source

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
            # The source as the last run that wrote to the record saw it: the baseline
            # of a record whose item the app deleted (its item no longer says, per field).
            self.snap: dict[str, Fields] = {rid: dict(v) for rid, v in fields.items()}
            self.gone: set[str] = set()  # items the app deleted
            self.noted: set[str] = set()  # items the app added a field to
            self.apps: dict[str, Fields] = {}  # the app's own registrations
            self.newcomers = 0

        def upload(self) -> None:
            body = [{**self.records[rid], **self.source[rid]} for rid in self.order]
            put_source(self.store, self.settings, body)

        @rule(at=st.integers(0, 9), name=st.sampled_from(FIELDS), value=VALUES, gone=st.booleans())
        def edit_the_source(self, at: int, name: str, value: str, gone: bool) -> None:
            # `gone`: a record whose item the app deleted, if there is one (an edit that
            # meets a deletion is rare among random indices). By sorted id otherwise, as
            # the app's rules pick: the same `at` meets the same record.
            deleted = sorted(self.gone & set(self.order))
            pick = deleted if gone and deleted else sorted(self.order)
            if pick:
                self.source[pick[at % len(pick)]][name] = value
                self.upload()

        @rule(at=st.integers(0, 9), name=st.sampled_from((*FIELDS, "appNote")), value=VALUES)
        def the_app_edits(self, at: int, name: str, value: str) -> None:
            if self.item:
                rid = sorted(self.item)[at % len(self.item)]
                app_sets(self.store, self.settings, rid, name, value)
                if name in FIELDS:
                    self.item[rid][name] = value
                else:  # a field the source never had: the app's, kept, never a conflict
                    self.noted.add(rid)

        @rule(at=st.integers(0, 9))
        def the_app_deletes(self, at: int) -> None:
            if self.item:
                rid = sorted(self.item)[at % len(self.item)]
                self.store.ddb.delete_item(TableName=self.settings.table, Key={"id": {"S": rid}})
                del self.item[rid]
                self.gone.add(rid)
                self.noted.discard(rid)

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
            edited_gone = {
                e.id for e in result.entries if e.kind is RecordState.TABLE_DELETE_CONFLICT
            }
            assert edited_gone == self.edited_gone(), (edited_gone, self.edited_gone())
            again = plan_sync(self.store, self.settings, options)
            assert again.to_write() == [], [e.id for e in again.to_write()]
            self.deep_agrees(conflicts)

        def teardown(self) -> None:
            # Every example ends with a sync and its checks: Hypothesis draws many short
            # runs, and a run that ended on an edit would otherwise check nothing.
            self.sync(delete=False)

        def edited_gone(self) -> set[str]:
            """Records the app deleted and the source edited since: reported, never lost."""
            return {r for r in self.gone if r in self.order and self.source[r] != self.snap[r]}

        def model_sync(self, delete: bool) -> set[tuple[str, str]]:
            """The issue's table, on plain values: what the table must hold now."""
            conflicts = set()
            for rid in list(self.item):
                if rid not in self.order:  # deleted in the source
                    # Deleted only while the item is its baseline: no app edit, no app field.
                    if delete and self.item[rid] == self.base[rid] and rid not in self.noted:
                        del self.item[rid]
                    continue
                wrote = False
                for name in FIELDS:
                    s, d, b = self.source[rid][name], self.item[rid][name], self.base[rid][name]
                    if s == d:
                        wrote |= s != b  # both agree: the baseline moves (a write)
                        self.base[rid][name] = s
                    elif d == b:
                        wrote = True
                        self.item[rid][name] = self.base[rid][name] = s
                    elif s != b:
                        conflicts.add((rid, name))
                if wrote:
                    self.snap[rid] = dict(self.source[rid])
            for rid in self.order:
                if rid not in self.item and rid not in self.gone:  # new: migrated
                    self.item[rid] = dict(self.source[rid])
                    self.base[rid] = dict(self.source[rid])
                    self.snap[rid] = dict(self.source[rid])
            return conflicts

        def deep_agrees(self, conflicts: set[tuple[str, str]]) -> None:
            _, deep = deep_verify(self.store, self.settings, allow_table_edits=True)
            by_id = {e.id: e for e in deep.entries}
            edited_gone = self.edited_gone()
            for rid in self.order:
                entry = by_id[rid]
                if rid in self.gone:
                    assert entry.status == "-", (rid, entry.details)
                    assert entry.sides == (("both",) if rid in edited_gone else ("table",)), rid
                    continue
                same = self.item[rid] == self.source[rid] and rid not in self.noted
                assert (entry.status == "=") == same, (rid, entry.details)
                assert ("both" in entry.sides) == any(c[0] == rid for c in conflicts), rid
                assert "source" not in entry.sides, (rid, entry.details)  # all carried over
            # Images a sync kept, or of items the app deleted, are not orphans.
            assert deep.orphans == [], deep.orphans
            waiting = any(rid not in self.order for rid in self.item)  # deleted in the source
            assert deep.ok == (not conflicts and not edited_gone and not waiting), deep.lines()

        @invariant()
        def the_table_holds_what_the_model_says(self) -> None:
            table = {str(i["id"]): i for i in self.store.scan(self.settings.table)}
            assert set(table) == set(self.item) | set(self.apps)
            for rid, fields in self.item.items():
                assert {f: str(table[rid][f]) for f in FIELDS} == fields, rid
            for rid, fields in self.apps.items():
                assert {f: table[rid][f] for f in FIELDS} == fields, rid  # never touched

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
