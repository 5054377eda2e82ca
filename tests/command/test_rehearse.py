"""`rehearse` and `local up --source`, as the operator runs them: the rehearsal says what the
real run will do, and it reads the real source with one GetObject and writes nothing there."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup import local, sample
from tests.faults.proxy import FaultProxy
from tests.helpers import exports, objects, put_source, run
from tests.review_server import start_review

pytestmark = pytest.mark.command


def hostile(records: list[dict[str, Any]]) -> bytes:
    """The sample registrations with records the run must fail, each for its own reason."""
    entries: list[Any] = [dict(r) for r in records]
    entries.insert(1, {"name": "No Id", "village": "Kota"})
    entries.insert(3, dict(records[0]) | {"name": "A copy"})  # a duplicate id
    entries.append({"id": "KHPL_badimg", "name": "Broken", "image": "data:image/png;base64,****"})
    entries.append({"id": "KHPL_emptyname", "x": {"": 1}})
    return sample.source_bytes(entries)


def test_the_rehearsal_reports_the_failures_the_real_run_does(
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    source = tmp_path / "registrations.json"
    source.write_bytes(hostile(sample_records))

    rehearsed = run(["rehearse", str(source), "--json"], env)
    assert rehearsed.returncode == 1, rehearsed.stderr  # records fail: exit 1
    report = json.loads(rehearsed.stdout)  # one object on stdout, nothing else
    assert "Traceback" not in rehearsed.stderr

    # The real run of the same bytes, against the test session's stack.
    put_source(store, settings, raw=source.read_bytes())
    assert run(["create-table"], env).returncode == 0
    real = run(["migrate", "--apply", "--json"], env)
    assert real.returncode == 1, real.stderr
    migrated = json.loads(real.stdout)

    assert report["run"].keys() == migrated.keys()  # the same object migrate prints
    assert report["run"]["failed"] == migrated["failed"]
    assert [f["index"] for f in migrated["failed"]] == [1, 3, 8, 9]
    for name in ("total", "migrated", "skipped", "images", "imageBytes", "dryRun"):
        assert report["run"][name] == migrated[name], name
    # The rest of the report, and the estimate.
    assert report["source"] == {
        "origin": str(source),
        "bytes": source.stat().st_size,
        "readFromAws": False,
    }
    assert report["verifyDeep"]["deep"]["identical"] == len(sample_records)
    largest = report["largestItems"]
    assert largest and [i["itemSize"] for i in largest] == sorted(
        (i["itemSize"] for i in largest), reverse=True
    )
    estimate = report["estimate"]
    assert estimate["linkGuessed"] is True and estimate["writeRequestUnits"] > 0
    assert estimate["region"] == "ap-south-1" and estimate["priceGuessed"] is False
    assert set(report["seconds"]) == {
        "verify",
        "create-table",
        "migrate",
        "migrate --apply",
        "verify --deep",
    }
    # The human report on stderr names each failure (index, id, reason) and the estimate.
    err = rehearsed.stderr
    assert "#9 KHPL_emptyname: empty attribute name" in err
    assert "#8 KHPL_badimg: invalid base64" in err
    assert "(a guess: pass --link DOWN/UP for yours)" in err
    assert "write request units" in err and "ap-south-1's price" in err
    # The rehearsal's stack is gone afterwards.
    state = Path(env["KHPL_STATE_DIR"]) / "rehearsal"
    assert local.status(state) is None


def test_rehearsing_from_s3_sends_aws_one_get_object_and_nothing_else(
    stack: local.Stack,
    store: Store,
    settings: Settings,
    env: dict[str, str],
    sample_records: list[dict[str, Any]],
) -> None:
    """The test session's stack plays the real AWS, behind a proxy that counts every
    request: the rehearsal's own stack is another, so the proxy sees only what reaches
    "AWS"."""
    put_source(store, settings, sample_records[:3])
    before = objects(store, settings)
    s3 = FaultProxy(stack.s3.port).start()
    ddb = FaultProxy(stack.dynamodb.port).start()
    try:
        real = {
            **env,
            "AWS_ENDPOINT_URL_S3": s3.url,
            "AWS_ENDPOINT_URL_DYNAMODB": ddb.url,
            "AWS_ENDPOINT_URL_STS": s3.url,
            "AWS_ENDPOINT_URL_IAM": s3.url,
        }
        where = f"s3://{settings.bucket}/{settings.source_key}"
        done = run(["rehearse", where, "--json", "--link", "50/20"], real)
    finally:
        s3.stop()
        ddb.stop()
    assert done.returncode == 0, done.stderr
    assert s3.operations == Counter({"GetObject": 1})
    assert ddb.operations == Counter()
    assert objects(store, settings) == before  # nothing written to the "real" bucket
    assert store.describe_table(settings.table) is None
    report = json.loads(done.stdout)
    assert report["source"]["readFromAws"] is True and report["ok"] is True
    assert report["run"]["migrated"] == 3
    assert report["estimate"]["linkMbps"] == {"down": 50, "up": 20}
    assert f"Reading {where} from AWS: one GetObject, nothing written" in done.stderr


def test_rehearse_keep_leaves_a_stack_the_printed_environment_reaches(
    env: dict[str, str], sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    source = tmp_path / "copy.json"
    source.write_bytes(sample.source_bytes(sample_records[:2]))
    done = run(["rehearse", str(source), "--keep", "--quiet"], env)
    exported = exports(done.stdout)
    try:
        assert done.returncode == 0, done.stderr
        assert exported["REACT_APP_S3_BUCKET_NAME"] == "khpl-rehearsal"
        verified = run(["verify", "--deep"], exported)
        assert verified.returncode == 0, verified.stderr
        assert "• DynamoDB Records: 2" in verified.stderr
    finally:
        down = run(["local", "down", "--state-dir", exported.get("KHPL_STATE_DIR", "")], {})
    assert down.returncode == 0 and "stopped" in down.stderr


def test_rehearse_review_serves_the_page_on_the_rehearsal_then_stops_its_stack(
    env: dict[str, str], sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    source = tmp_path / "copy.json"
    source.write_bytes(sample.source_bytes(sample_records[:2]))
    server = start_review(env, str(source), "--review", "--quiet", command="rehearse")
    try:
        server.log_in()
        page = server.request("GET", "/")
        assert page.status == 200
        rid = str(sample_records[1]["id"])
        assert rid in page.text and "khpl-rehearsal" in page.text
        assert server.request("GET", f"/records/{rid}").status == 200
    finally:
        code = server.stop()
    assert code == 0, "".join(server.stderr)
    assert "Rehearsal passed" in "".join(server.stderr)
    assert local.status(Path(env["KHPL_STATE_DIR"]) / "rehearsal") is None


def test_local_up_source_loads_the_file_as_registrations_json(
    sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    source = tmp_path / "copy.json"
    source.write_bytes(sample.source_bytes(sample_records[:2]))
    state = ["--state-dir", str(tmp_path / "state")]
    up = run(["local", "up", "--source", str(source), *state], {"HOME": str(tmp_path)}, tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        exported = exports(up.stdout)
        assert exported["REACT_APP_S3_BUCKET_NAME"] == "khpl-local"  # none configured
        assert "loaded as s3://khpl-local/registrations.json" in up.stderr
        s3 = boto3.client(
            "s3",
            endpoint_url=exported["AWS_ENDPOINT_URL_S3"],
            region_name=exported["AWS_REGION"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        body = s3.get_object(Bucket="khpl-local", Key="registrations.json")["Body"].read()
        assert body == source.read_bytes()
        # The guide's steps work on it with the printed environment alone.
        verified = run(["verify"], {**exported, "KHPL_STATE_DIR": str(tmp_path / "s")}, tmp_path)
        assert "• S3 Records: 2" in verified.stderr, verified.stderr
    finally:
        run(["local", "down", *state], {}, tmp_path)


def test_local_up_source_uses_the_configured_bucket(
    sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    source = tmp_path / "copy.json"
    source.write_bytes(sample.source_bytes(sample_records[:1]))
    (tmp_path / ".env").write_text("REACT_APP_S3_BUCKET_NAME=league-registrations\n")
    state = ["--state-dir", str(tmp_path / "state")]
    up = run(["local", "up", "--source", str(source), *state], {"HOME": str(tmp_path)}, tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert exports(up.stdout)["REACT_APP_S3_BUCKET_NAME"] == "league-registrations"
    finally:
        run(["local", "down", *state], {}, tmp_path)
