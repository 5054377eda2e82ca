"""doctor reports the bucket's and table's real state, each setting seen both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup.table import create_table
from tests.helpers import put_source, run

pytestmark = pytest.mark.command


def findings(env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]], str]:
    proc = run(["doctor", "--json"], env)
    data = json.loads(proc.stdout)["findings"]
    return proc.returncode, {f["topic"]: f for f in data}, proc.stderr


def test_doctor_sees_versioning_and_public_access_both_ways(
    store: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    bucket = settings.bucket or ""
    put_source(store, settings, sample_records[:1])
    create_table(store, settings)
    before = run(["doctor"], env)
    assert before.returncode == 0, before.stderr
    code, found, _ = findings(env)
    assert found["caller"]["level"] == "ok" and "arn:aws" in found["caller"]["message"]
    assert (
        found["versioning"]["level"] == "warn"
        and "put-bucket-versioning" in found["versioning"]["fix"]
    )
    assert (
        found["public access"]["level"] == "warn"
        and "NOT BLOCKED" in found["public access"]["message"]
    )
    assert found["table"]["level"] == "ok" and found["source"]["level"] == "ok"
    # The permissions are asked about the real table: the region in force, and the account
    # STS names (moto's IAM has no policy simulator, so it is not checked here).
    account = found["caller"]["message"].split(":")[4]
    real_table = f"arn:aws:dynamodb:{settings.region}:{account}:table/{settings.table}"
    assert account.isdigit() and real_table in found["permissions"]["message"]
    assert "⚠️ versioning: versioning is off" in before.stderr and "Fix: aws s3api" in before.stderr

    store.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store.s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    code, found, _ = findings(env)
    assert code == 0
    assert found["versioning"]["level"] == "ok" and found["public access"]["level"] == "ok"


def test_doctor_fails_on_a_missing_table_and_source(store: Store, env: dict[str, str]) -> None:
    code, found, stderr = findings(env)
    assert code == 1
    assert found["table"]["level"] == "fail" and "create-table" in found["table"]["fix"]
    assert found["source"]["level"] == "fail"
    assert "Traceback" not in stderr
