"""A Hypothesis state machine: the live app does whatever a web app can do to the shared
table and image prefix, and the operator runs sync, --take, --repair-images, rollback and
verify --deep in any order. Whatever the app wrote last must survive all of it.

The app's side: set or remove any top-level attribute (strings, sets, numbers of up to
38 digits spelled differently), edit inside a list, add keys inside an image reference,
point a reference at its own upload, PUT new bytes over a key the tool wrote (with and
without the tool's run tag copied), write its own items naming other records' objects,
delete items. It also writes, when a sync is run with `race`, between the tool's read
and its UpdateItem (the fault proxy's hook), on the very attribute the tool is writing.

Invariants after every step: each value the app wrote last is still there (unless the
operator took the source for that id); each item the app deleted stays deleted; the
app's own items and objects are untouched; every object any item names exists, with the
bytes its reference names or the app's own; and after the operator settles conflicts a
second sync has nothing left to write. Exceptions are failures: no traceback is allowed.
`make soak` runs it far longer (see docs/operations.md).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store, to_attribute_values
from khpl_migrate.core.layout import IMAGE_PREFIX
from khpl_migrate.core.ownership import strings_in
from khpl_migrate.core.threeway import CONFLICTS, RecordState
from khpl_migrate.core.units import digest, is_tool_key, references
from khpl_migrate.kernel.runs import list_runs
from khpl_migrate.rollback import apply_rollback, plan_rollback
from khpl_migrate.setup import local, sample
from khpl_migrate.setup.table import create_table
from khpl_migrate.sync.apply import apply_sync
from khpl_migrate.sync.model import SyncOptions
from khpl_migrate.sync.plan import plan_sync
from khpl_migrate.verify.deep import deep_verify
from tests.faults.proxy import ProxyPair, Request, Rule
from tests.helpers import migrate, put_source

pytestmark = pytest.mark.faults
REFS = "imageUploadResults"
FIELDS = ("village", "paymentStatus", "jerseySize")
NAMES = ("userPhoto", "aadhaar", "paymentScreenshot")
D38 = "1234567890123456789012345678901234567"
VALUES = st.one_of(
    st.sampled_from(["one", "two"]),
    st.sampled_from(
        [Decimal("1.10"), Decimal("1.1"), Decimal("1e0"), Decimal(D38 + "8"), Decimal(D38 + "9")]
    ),
    st.just(frozenset({"a", "b"})),
)
ABSENT = object()
# What ends a record's protection: the operator took the source for it.
SETTLED = (RecordState.DELETE_CONFLICT, RecordState.TABLE_DELETE_CONFLICT, RecordState.APP_CONFLICT)


def _at(item: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(item, dict) or part not in item:
            return ABSENT
        item = item[part]
    return item


class AppDataMachine(RuleBasedStateMachine):
    # Set by the test: the stack's environment and the fault proxies' factory.
    env: dict[str, str]
    faulty: ProxyPair

    def __init__(self) -> None:
        super().__init__()
        token = uuid.uuid4().hex[:10]
        names = {
            "REACT_APP_S3_BUCKET_NAME": f"khpl-app-{token}",
            "REACT_APP_DYNAMODB_TABLE_NAME": f"KHPL-App-{token}",
        }
        self.settings = settings_mod.load(env={**self.env, **names}, workers=4)
        self.app = Store(self.settings)  # the live app, straight to the stack
        self.bucket = self.settings.require_bucket()
        self.app.create_bucket(self.bucket)
        self.race_rule = Rule("hook", operation="UpdateItem", rate=1.0, on_request=self.race)
        _, _, through = type(self).faulty([], [self.race_rule])
        self.tool_settings = settings_mod.load(env={**through, **names}, workers=4)
        self.tool = Store(self.tool_settings)  # the operator's runs, through the proxy
        self.records = {r["id"]: r for r in sample.registrations(3, seed=7)}
        self.order = list(self.records)
        put_source(self.app, self.settings, list(self.records.values()))
        create_table(self.app, self.settings)
        assert migrate(self.app, self.settings).ok
        self.protected: dict[str, dict[tuple[str, ...], Any]] = {}
        self.deleted: set[str] = set()  # items the app deleted
        self.own_items: dict[str, dict[str, Any]] = {}
        self.own_objects: dict[str, bytes] = {}
        self.armed = False
        self.count = 0

    # -- the app ---------------------------------------------------------------

    def pick(self, at: int) -> str | None:
        """A registration the app has (an UpdateItem on a missing id would create one)."""
        there = {str(i["id"]) for i in self.app.scan(self.settings.table, ("id",))}
        live = sorted(there & set(self.records))
        return live[at % len(live)] if live else None

    def item(self, rid: str) -> dict[str, Any] | None:
        return self.app.get_item(self.settings.table, rid)

    def wrote(self, rid: str, path: tuple[str, ...], value: Any) -> None:
        mine = self.protected.setdefault(rid, {})
        for known in [p for p in mine if p[: len(path)] == path and p != path]:
            del mine[known]  # a whole value written over the parts inside it
        mine[path] = value

    def update(self, rid: str, expression: str, names: dict[str, str], values: Any) -> None:
        extra: dict[str, Any] = {}
        if values:
            extra["ExpressionAttributeValues"] = to_attribute_values(values)
        if names:
            extra["ExpressionAttributeNames"] = names
        self.app.ddb.update_item(
            TableName=self.settings.table,
            Key={"id": {"S": rid}},
            UpdateExpression=expression,
            **extra,
        )

    @rule(at=st.integers(0, 9), name=st.sampled_from((*FIELDS, "appNote")), value=VALUES)
    def the_app_sets(self, at: int, name: str, value: Any) -> None:
        rid = self.pick(at)
        if rid is not None:
            self.update(rid, "SET #f = :v", {"#f": name}, {":v": value})
            self.wrote(rid, (name,), value)

    @rule(at=st.integers(0, 9), name=st.sampled_from(FIELDS))
    def the_app_removes(self, at: int, name: str) -> None:
        rid = self.pick(at)
        if rid is not None:
            self.update(rid, "REMOVE #f", {"#f": name}, None)
            self.wrote(rid, (name,), ABSENT)

    @rule(at=st.integers(0, 9))
    def the_app_edits_inside_a_list(self, at: int) -> None:
        rid = self.pick(at)
        if rid is None:
            return
        item = self.item(rid) or {}
        if isinstance(item.get("appList"), list) and item["appList"]:
            self.update(rid, "REMOVE appList[0]", {}, None)
            self.wrote(rid, ("appList",), item["appList"][1:])
        else:
            self.update(rid, "SET appList = :v", {}, {":v": ["x", "y", "z"]})
            self.wrote(rid, ("appList",), ["x", "y", "z"])

    @rule(at=st.integers(0, 9), name=st.sampled_from(NAMES))
    def the_app_adds_a_key_to_a_reference(self, at: int, name: str) -> None:
        rid = self.pick(at)
        if rid is None or name not in references(self.item(rid) or {}):
            return
        self.count += 1
        value = f"admin-{self.count}"
        self.update(rid, f"SET {REFS}.#n.verifiedBy = :v", {"#n": name}, {":v": value})
        self.wrote(rid, (REFS, name, "verifiedBy"), value)

    @rule(at=st.integers(0, 9), name=st.sampled_from(NAMES))
    def the_app_points_a_reference_at_its_own_upload(self, at: int, name: str) -> None:
        rid = self.pick(at)
        if rid is None or name not in references(self.item(rid) or {}):
            return
        self.count += 1
        key, body = f"{IMAGE_PREFIX}{rid}/app-{self.count}.jpeg", f"app {self.count}".encode()
        self.app.put_object(self.bucket, key, body, "image/jpeg")
        self.own_objects[key] = body
        self.update(
            rid,
            f"SET {REFS}.#n.s3Key = :k, {REFS}.#n.size = :s",
            {"#n": name},
            {":k": key, ":s": len(body)},
        )
        self.wrote(rid, (REFS, name, "s3Key"), key)

    @rule(at=st.integers(0, 9), name=st.sampled_from(NAMES), tagged=st.booleans())
    def the_app_replaces_a_photo_in_place(self, at: int, name: str, tagged: bool) -> None:
        rid = self.pick(at)
        ref = references(self.item(rid) or {}).get(name) if rid else None
        if rid is None or ref is None or not is_tool_key(rid, name, ref):
            return
        self.count += 1
        key, body = str(ref["s3Key"]), f"new photo {self.count}".encode()
        head = self.app.head_object(self.bucket, key)
        # With the tool's run tag copied (a careless copy), or without it.
        meta = {"khpl-run": head.run_id} if tagged and head and head.run_id else {}
        self.app.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="image/jpeg", Metadata=meta
        )
        self.own_objects[key] = body
        self.wrote(rid, (REFS, name, "s3Key"), key)

    @rule(at=st.integers(0, 9), name=st.sampled_from(NAMES))
    def the_app_registers_its_own(self, at: int, name: str) -> None:
        rid = self.pick(at)
        ref = references(self.item(rid) or {}).get(name) if rid else None
        if ref is None:
            return
        own = {"id": f"KHPL_app_{len(self.own_items)}", "team": [{"photo": ref["s3Key"]}]}
        self.app.put_item_if_absent(self.settings.table, own)
        self.own_items[own["id"]] = own

    @rule(at=st.integers(0, 9))
    def the_app_deletes(self, at: int) -> None:
        rid = self.pick(at)
        if rid is not None and self.item(rid) is not None:
            self.app.ddb.delete_item(TableName=self.settings.table, Key={"id": {"S": rid}})
            self.deleted.add(rid)
            self.protected.pop(rid, None)

    def race(self, request: Request) -> None:
        """Between the tool's read and its UpdateItem, the app writes the very attribute
        the tool is about to set."""
        if not self.armed:
            return
        body = json.loads(request.body or b"{}")
        rid = body.get("Key", {}).get("id", {}).get("S")
        setting = [n for n in body.get("ExpressionAttributeNames", {}).values() if n in FIELDS]
        if rid not in self.records or not setting:
            return
        self.armed = False
        self.count += 1
        value = f"raced-{self.count}"
        self.update(rid, "SET #f = :v", {"#f": setting[0]}, {":v": value})
        self.wrote(rid, (setting[0],), value)

    # -- the source and the operator --------------------------------------------

    def upload(self) -> None:
        body = [self.records[rid] for rid in self.order]
        put_source(self.app, self.settings, body)

    @rule(at=st.integers(0, 9), name=st.sampled_from(FIELDS), value=st.sampled_from(["s1", "s2"]))
    def the_source_edits(self, at: int, name: str, value: str) -> None:
        rid = sorted(self.order)[at % len(self.order)] if self.order else None
        if rid is not None:
            self.records[rid][name] = value
            self.upload()

    @rule(at=st.integers(0, 9), name=st.sampled_from(("image", "aadhaarCopy")))
    def the_source_replaces_a_photo(self, at: int, name: str) -> None:
        rid = sorted(self.order)[at % len(self.order)] if self.order else None
        if rid is not None:
            self.count += 1
            self.records[rid][name] = sample.registrations(1, seed=100 + self.count)[0][name]
            self.upload()

    @rule(at=st.integers(0, 9), name=st.sampled_from(FIELDS), value=st.sampled_from(["s1", "s2"]))
    def the_source_edits_and_a_sync_races_the_app(self, at: int, name: str, value: str) -> None:
        """The race the conditions exist for, made likely: a source edit to carry, and
        the app writing the same attribute between the tool's read and its write."""
        self.the_source_edits(at, name, value)
        self.sync(delete=False, repair=False, race=True)

    @rule(delete=st.booleans(), repair=st.booleans(), race=st.booleans())
    def sync(self, delete: bool, repair: bool, race: bool) -> None:
        options = SyncOptions(delete=delete, max_delete=100.0, repair_images=repair)
        self.armed = race
        try:
            apply_sync(
                self.tool, self.tool_settings, plan_sync(self.tool, self.tool_settings, options)
            )
        finally:
            self.armed = False

    @rule(side=st.sampled_from(["source", "table"]))
    def the_operator_settles(self, side: str) -> None:
        self.sync(delete=False, repair=False, race=False)  # everything else carried first
        plan = plan_sync(self.tool, self.tool_settings, SyncOptions())
        ids = frozenset(
            e.id
            for e in plan.entries
            if any(s in CONFLICTS for s in e.sides.values()) or e.kind in SETTLED
        )
        if not ids:
            return
        options = SyncOptions(take=side, only_ids=ids)  # type: ignore[arg-type]
        apply_sync(self.tool, self.tool_settings, plan_sync(self.tool, self.tool_settings, options))
        if side == "source":
            for rid in ids:  # the operator chose the source's values over the app's
                self.protected.pop(rid, None)
                self.deleted.discard(rid)
        again = plan_sync(self.tool, self.tool_settings, SyncOptions())
        assert again.to_write() == [], [(e.id, e.kind, e.sides) for e in again.to_write()]

    @rule(at=st.integers(0, 9))
    def the_operator_rolls_back(self, at: int) -> None:
        runs = list_runs(self.tool, self.bucket, self.tool_settings.state_dir)
        if runs:
            run = runs[at % len(runs)]
            apply_rollback(self.tool, plan_rollback(self.tool, self.tool_settings, run.run_id))

    @rule()
    def the_operator_verifies(self) -> None:
        deep_verify(self.tool, self.tool_settings, allow_table_edits=True)

    # -- what must hold ------------------------------------------------------------

    @invariant()
    def what_the_app_wrote_last_is_there(self) -> None:
        table = {str(i["id"]): i for i in self.app.scan(self.settings.table)}
        for rid, paths in self.protected.items():
            assert rid in table, f"{rid}: an item the app edited is gone"
            for path, value in paths.items():
                now = _at(table[rid], path)
                if value is ABSENT:
                    assert now is ABSENT, (rid, path)
                else:
                    assert now is not ABSENT and digest(now) == digest(value), (rid, path)
        for rid in self.deleted:
            assert rid not in table, f"{rid}: the app deleted it; it came back"
        for rid, own in self.own_items.items():
            assert table.get(rid) == own, rid
        for key, body in self.own_objects.items():
            assert self.app.get_bytes(self.bucket, key) == body, key

    @invariant()
    def every_object_an_item_names_is_there(self) -> None:
        for item in self.app.scan(self.settings.table):
            for key in {k for k in strings_in(item) if k.startswith(IMAGE_PREFIX)}:
                body = self.app.get_bytes(self.bucket, key)
                assert body is not None, (item["id"], key)
            for ref in references(item).values():
                key = str(ref["s3Key"])
                if key not in self.own_objects and ref.get("sha256"):
                    body = self.app.get_bytes(self.bucket, key) or b""
                    assert hashlib.sha256(body).hexdigest() == ref["sha256"], key


def test_whatever_the_app_wrote_last_survives(
    stack: local.Stack, env: dict[str, str], faulty: ProxyPair
) -> None:
    AppDataMachine.env, AppDataMachine.faulty = env, faulty
    slow = hypothesis_settings().max_examples >= 60
    run_state_machine_as_test(
        AppDataMachine,
        settings=hypothesis_settings(
            max_examples=hypothesis_settings().max_examples,
            stateful_step_count=30 if slow else 12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
