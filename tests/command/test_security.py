"""Secrets never shown, everything written encrypted, personal numbers masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup import sample
from khpl_migrate.setup.table import create_table
from tests.helpers import put_source, run

pytestmark = pytest.mark.command
SECRET = "khplFakeSecret9000zzQQ"
KEY_ID = "AKIAKHPLTESTKEYID"


@pytest.mark.usefixtures("seeded")
def test_a_secret_appears_nowhere_at_any_verbosity(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    guide_env = {
        k: v for k, v in env.items() if k not in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    }
    guide_env |= {"REACT_APP_AWS_ACCESS_KEY_ID": KEY_ID, "REACT_APP_AWS_SECRET_ACCESS_KEY": SECRET}
    runs = [
        run(["migrate", "--apply", "-vv", "--json"], guide_env),
        run(["verify", "--deep", "-vv", "--json"], guide_env),
        run(["migrate", "-vv", "--table", "KHPL-No-Such-Table"], guide_env),  # a forced error
        run(["rollback", "--run", "nope", "-vv"], guide_env),  # another
    ]
    assert [p.returncode for p in runs] == [0, 0, 2, 2]
    for proc in runs:
        assert SECRET not in proc.stdout + proc.stderr
        assert proc.stderr.count("REACT_APP_* variables into the browser bundle") == 1
    written = [
        store.get_bytes(settings.bucket or "", o.key) or b""
        for o in store.list_objects(settings.bucket or "", "")
    ]
    local = [p.read_bytes() for p in Path(env["KHPL_STATE_DIR"]).rglob("*") if p.is_file()]
    assert written and local
    assert not any(SECRET.encode() in blob for blob in written + local)


@pytest.mark.parametrize("kms", [None, "alias/khpl-registrations"])
def test_everything_the_tool_writes_is_encrypted(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
    kms: str | None,
) -> None:
    source = put_source(store, settings, sample_records[:2])
    assert run(["create-table"], env).returncode == 0
    proc = run(["migrate", "--apply", *(["--kms-key-id", kms] if kms else [])], env)
    assert proc.returncode == 0, proc.stderr
    bucket = settings.bucket or ""
    keys = [o.key for o in store.list_objects(bucket, "") if o.key != settings.source_key]
    assert len(keys) == 6 + 2  # six images, the backup, the manifest
    for key in keys:
        head = store.s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == ("aws:kms" if kms else "AES256"), key
        assert head.get("SSEKMSKeyId") == kms, key
        grants = store.s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        assert [g["Permission"] for g in grants] == ["FULL_CONTROL"], key  # the owner only: no ACL
    assert store.get_bytes(bucket, settings.source_key) == source


def test_aadhaar_and_phone_numbers_are_masked_in_what_a_person_sees(
    store: Store, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    people = sample.registrations(3)
    people[0]["name"] = "Ravi 98450 12345"  # typed into the wrong field, as people do
    people[1]["name"] = "Aadhaar 2345 6789 0124"  # a valid check digit
    put_source(store, settings, people)
    numbers = (
        [p["phone"] for p in people]
        + [p["aadhaarNumber"] for p in people]
        + ["98450 12345", "2345 6789 0124"]
    )
    outputs = [run(["verify"], env)]
    create_table(store, settings)
    report = tmp_path / "report.txt"
    outputs += [
        run(["migrate"], env),
        run(["migrate", "--apply", "-v"], env),
        run(["verify", "--deep", "--report", str(report)], env),
    ]
    outputs.append(run(["demo", "--records", "3", "--state-dir", str(tmp_path / "demo")], env))
    seen = "\n".join(p.stdout + p.stderr for p in outputs) + report.read_text()
    assert "Ravi XXXXXX2345" in seen and "Aadhaar XXXX XXXX 0124" in seen
    for number in numbers:
        assert number not in seen, number


def test_mask_aadhaar_stores_masked_numbers_and_still_verifies(
    store: Store, settings: Settings, env: dict[str, str]
) -> None:
    people = sample.registrations(3)
    put_source(store, settings, people)
    create_table(store, settings)
    assert run(["migrate", "--apply", "--mask-aadhaar"], env).returncode == 0
    for person in people:
        item = store.get_item(settings.table, person["id"])
        assert item is not None
        assert item["aadhaarNumber"] == f"XXXX XXXX {person['aadhaarNumber'][-4:]}"
        assert item["maskedFields"] == ["aadhaarNumber"]
        assert item["phone"] == person["phone"]  # only what was asked
    deep = run(["verify", "--deep"], env)
    assert deep.returncode == 0, deep.stderr


def test_without_the_flag_the_guides_data_keeps_the_full_number(
    store: Store, settings: Settings, env: dict[str, str]
) -> None:
    people = sample.registrations(1)
    put_source(store, settings, people)
    create_table(store, settings)
    assert run(["migrate", "--apply"], env).returncode == 0
    item = store.get_item(settings.table, people[0]["id"])
    assert item is not None and item["aadhaarNumber"] == people[0]["aadhaarNumber"]
    assert "maskedFields" not in item
