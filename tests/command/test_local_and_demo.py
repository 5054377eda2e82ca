"""`local up/status/down` and `demo`, as a new user runs them."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import boto3
import pytest

from tests.helpers import exports, run

pytestmark = pytest.mark.command


def test_local_up_status_down(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    env = {"HOME": str(tmp_path)}
    up = run(["local", "up", *state], env)
    try:
        assert up.returncode == 0, up.stderr
        exported = exports(up.stdout)
        assert set(exported) >= {"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_REGION"}
        assert exported["AWS_ENDPOINT_URL_S3"].startswith("http://127.0.0.1:")
        if os.environ.get("CI"):
            assert "DynamoDB (dynamodb-local)" in up.stderr
        # The printed environment really reaches both services.
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=exported["AWS_ENDPOINT_URL_DYNAMODB"],
            region_name=exported["AWS_REGION"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        assert "TableNames" in ddb.list_tables()
        urllib.request.urlopen(exported["AWS_ENDPOINT_URL_S3"], timeout=5).close()

        status = run(["local", "status", *state], env)
        assert status.returncode == 0 and "Running" in status.stderr
        again = run(["local", "up", *state], env)
        assert "already running" in again.stderr and again.stdout == up.stdout
    finally:
        down = run(["local", "down", *state], env)
    assert down.returncode == 0 and "stopped" in down.stderr
    after = run(["local", "status", *state], env)
    assert after.returncode == 1 and "not running" in after.stderr


def test_demo_migrates_and_verifies_sample_registrations(tmp_path: Path) -> None:
    proc = run(
        ["demo", "--records", "4", "--state-dir", str(tmp_path / "state")], {"HOME": str(tmp_path)}
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stderr
    steps = [
        "Step 2: Verify current data",
        "Step 3: Create DynamoDB table",
        "Step 4: Run migration (dry run first)",
        "Step 5: Run actual migration",
        "Step 6: Verify migration success (deep)",
    ]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "• DynamoDB Records: 0" in out[: positions[1]]
    final = out[positions[-1] :]
    assert "• DynamoDB Records: 4" in final and "📸 Total images: 12" in final
    assert "✅ Migration appears complete - all S3 records found in DynamoDB" in final
    assert "• Identical (=): 4" in final and "• Images checked: 12" in final
    assert final.rstrip().endswith(
        "✅ Deep check passed - every field and image matches the source\n"
        "💡 Next: khpl-migrate sync"  # the order's step after the deep check (order.py)
    )
    # The demo's stack is gone afterwards.
    assert (
        run(["local", "status", "--state-dir", str(tmp_path / "state" / "demo")], {}).returncode
        == 1
    )
