"""The command as the operator runs it: a subprocess, exit codes, stdout vs stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from tests.helpers import (
    assert_clean_error,
    cli_commands,
    command_env,
    items,
    objects,
    put_source,
    run,
)

pytestmark = pytest.mark.command


# -- the happy path, as commands ---------------------------------------------------


def test_the_guides_commands_in_order(
    seeded_source: Store, settings: Settings, env: dict[str, str]
) -> None:
    before = run(["verify"], env)
    assert before.returncode == 1
    assert "• S3 Records: 6" in before.stderr and "• DynamoDB Records: 0" in before.stderr
    assert "⚠️ Migration needed - some records only exist in S3" in before.stderr
    assert before.stdout == ""

    assert run(["create-table"], env).returncode == 0
    dry = run(["migrate"], env)
    assert dry.returncode == 0, dry.stderr
    assert "Dry run (nothing was written)" in dry.stderr and "create" in dry.stderr
    assert "khpl-migrate migrate --apply" in dry.stderr
    assert items(seeded_source, settings) == {}

    real = run(["migrate", "--apply"], env)
    assert real.returncode == 0, real.stderr
    assert "Migrated: 6 (18 images" in real.stderr

    after = run(["verify"], env)
    assert after.returncode == 0, after.stderr
    for line in (
        "• S3 Records: 6",
        "• DynamoDB Records: 6",
        "• Records in both S3 and DynamoDB: 6",
        "• Records marked as migrated: 6",
        "• Records only in S3: 0",
        "• Records only in DynamoDB: 0",
        "📸 Total images: 18",
        "✅ Migration appears complete - all S3 records found in DynamoDB",
    ):
        assert line in after.stderr, line


def test_migrate_dry_run_is_accepted_and_is_the_default(
    seeded: Store, settings: Settings, env: dict[str, str]
) -> None:
    """`--dry-run` says what the default does, instead of click suggesting `--run`."""
    before = objects(seeded, settings)
    dry = run(["migrate", "--dry-run", "--json"], env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["dryRun"] is True
    assert "Dry run (nothing was written)" in dry.stderr
    assert items(seeded, settings) == {} and objects(seeded, settings) == before
    shown = run(["migrate", "--help"], env).stdout
    assert "--dry-run" in shown and "(the default)" in shown


def test_json_output_is_one_object_on_stdout(
    seeded: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    dry = json.loads(run(["migrate", "--json"], env).stdout)
    assert dry["dryRun"] is True and dry["total"] == 6 and dry["migrated"] == 6
    assert dry["backupKey"] is None and dry["failed"] == []

    proc = run(["migrate", "--apply", "--json"], env)
    real = json.loads(proc.stdout)
    assert set(real) >= {
        "runId",
        "dryRun",
        "total",
        "migrated",
        "skipped",
        "failed",
        "backupKey",
        "manifestKey",
    }
    assert (real["dryRun"], real["total"], real["migrated"], real["skipped"]) == (False, 6, 6, 0)
    assert real["manifestKey"] == f"migration-runs/{real['runId']}/manifest.jsonl"
    assert real["backupKey"] in objects(seeded, settings)

    report = json.loads(run(["verify", "--json"], env).stdout)
    assert report["complete"] is True
    assert (
        report["s3Records"],
        report["dynamoRecords"],
        report["inBoth"],
        report["markedMigrated"],
    ) == (6, 6, 6, 6)
    assert report["onlyInS3"] == [] and report["onlyInDynamo"] == []
    assert list(report["byMigrationDate"].values()) == [{"records": 6, "images": 18}]


def test_failed_records_exit_1_and_are_listed(
    seeded: Store, settings: Settings, env: dict[str, str], sample_records: list[dict[str, Any]]
) -> None:
    put_source(
        seeded,
        settings,
        [sample_records[0], {"id": "KHPL_bad", "image": "data:image/png;base64,!!"}],
    )
    proc = run(["migrate", "--apply", "--json"], env)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["migrated"] == 1
    assert data["failed"] == [{"index": 1, "id": "KHPL_bad", "reason": data["failed"][0]["reason"]}]
    assert "invalid base64" in data["failed"][0]["reason"]
    assert "index 1 (KHPL_bad): invalid base64" in proc.stderr


def test_verify_lists_records_only_in_dynamodb(
    seeded: Store, settings: Settings, env: dict[str, str]
) -> None:
    seeded.put_item_if_absent(settings.table, {"id": "KHPL_app_only", "name": "New Player"})
    proc = run(["verify", "--json"], env)
    data = json.loads(proc.stdout)
    assert data["onlyInDynamo"] == ["KHPL_app_only"] and len(data["onlyInS3"]) == 6
    assert "New Player (KHPL_app_only)" in proc.stderr


def test_the_guides_env_file_works_unchanged(
    seeded: Store, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    """REACT_APP_* names from .env, with the endpoints coming from the environment."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / ".env").write_text(
        "REACT_APP_AWS_REGION=ap-south-1\n"
        "REACT_APP_AWS_ACCESS_KEY_ID=localkey\n"
        "REACT_APP_AWS_SECRET_ACCESS_KEY=localsecretvalue123\n"
        f"REACT_APP_S3_BUCKET_NAME={settings.bucket}\n"
        f"REACT_APP_DYNAMODB_TABLE_NAME={settings.table}\n"
        "REACT_APP_DYNAMODB_ENABLED=true\n"
    )
    only_endpoints = {
        k: v
        for k, v in env.items()
        if k.startswith("AWS_ENDPOINT_URL")
        or k.startswith("AWS_CONFIG")
        or k.startswith("AWS_SHARED")
        or k == "KHPL_STATE_DIR"
    }
    proc = run(["verify", "--json"], only_endpoints, cwd=workdir)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["s3Records"] == 6
    assert "REACT_APP_* variables into the browser bundle" in proc.stderr
    assert f"REACT_APP_AWS_ACCESS_KEY_ID/SECRET from the .env file {workdir / '.env'}" in (
        " ".join(proc.stderr.split())
    )
    assert "localsecretvalue123" not in proc.stderr + proc.stdout
    keys = {"REACT_APP_AWS_ACCESS_KEY_ID": "localkey", "REACT_APP_AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    in_env = run(["verify"], {**only_endpoints, **keys, "AWS_REGION": "ap-south-1"}, cwd=tmp_path)
    assert "REACT_APP_AWS_ACCESS_KEY_ID/SECRET from the environment." in in_env.stderr


# -- errors: a message with its fix, exit 2, no traceback ----------------------------


def test_no_bucket_configured(env: dict[str, str]) -> None:
    without = {k: v for k, v in env.items() if k != "REACT_APP_S3_BUCKET_NAME"}
    assert_clean_error(run(["verify"], without), "No S3 bucket is set", "REACT_APP_S3_BUCKET_NAME")


def test_a_bad_attempts_setting_is_named(env: dict[str, str]) -> None:
    for bad in ("abc", "0"):
        proc = run(["verify"], {**env, "KHPL_MAX_ATTEMPTS": bad})
        assert_clean_error(proc, f"KHPL_MAX_ATTEMPTS is '{bad}'", "1-20")


def test_missing_bucket(env: dict[str, str]) -> None:
    assert_clean_error(
        run(["migrate", "--bucket", "khpl-no-such-bucket"], env),
        "Bucket khpl-no-such-bucket does not exist",
        "--bucket",
    )


def test_missing_source(store: Store, env: dict[str, str]) -> None:
    assert_clean_error(run(["verify"], env), "registrations.json does not exist", "--source-key")


def test_missing_table(seeded_source: Store, env: dict[str, str]) -> None:
    assert_clean_error(run(["migrate"], env), "does not exist", "khpl-migrate create-table")


def test_bad_input_truncated_json_writes_nothing(
    seeded: Store, settings: Settings, env: dict[str, str]
) -> None:
    put_source(seeded, settings, raw=b'[{"id": "KHPL_1", "name": "A"}, {"id": "KHPL_2", "na')
    before = objects(seeded, settings)
    assert_clean_error(
        run(["migrate", "--apply"], env), "not valid JSON near byte", "nothing was written"
    )
    assert objects(seeded, settings) == before and items(seeded, settings) == {}


def test_bad_input_top_level_object_names_records_path(
    seeded: Store, settings: Settings, env: dict[str, str]
) -> None:
    put_source(seeded, settings, raw=b'{"registrations": [{"id": "KHPL_1"}], "version": 2}')
    assert_clean_error(
        run(["migrate"], env), "holds an object at its top level", "--records-path", "registrations"
    )
    ok = run(["migrate", "--records-path", "registrations", "--json"], env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["migrated"] == 1


def test_missing_credentials(env: dict[str, str]) -> None:
    without = {
        k: v for k, v in env.items() if k not in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    }
    without["AWS_EC2_METADATA_DISABLED"] = "true"
    assert_clean_error(run(["verify"], without), "No AWS credentials found", "AWS_PROFILE")


def test_unreachable_endpoint(env: dict[str, str]) -> None:
    dead = {**env, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "KHPL_MAX_ATTEMPTS": "1"}
    assert_clean_error(run(["verify"], dead), "Could not reach", "AWS_ENDPOINT_URL_S3")


def test_no_region(env: dict[str, str]) -> None:
    without = {k: v for k, v in env.items() if k not in {"AWS_REGION", "AWS_DEFAULT_REGION"}}
    assert_clean_error(run(["verify"], without), "No AWS region is set", "--region")


def test_table_with_another_key_schema(
    store: Store, settings: Settings, env: dict[str, str]
) -> None:
    store.ddb.create_table(
        TableName=settings.table,
        KeySchema=[{"AttributeName": "registrationId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "registrationId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert_clean_error(run(["create-table"], env), "registrationId", "--table")


def test_a_bad_option_is_exit_2(env: dict[str, str]) -> None:
    proc = run(["migrate", "--workers", "0"], env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--workers" in proc.stderr


# -- docs that cannot rot -----------------------------------------------------------


COMMANDS = cli_commands()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command: list[str]) -> None:
    proc = run([*command, "--help"], {})
    assert proc.returncode == 0
    usage, _, rest = proc.stdout.partition("\n\n")
    assert usage.startswith("Usage: khpl-migrate")
    assert len(rest.strip().splitlines()[0]) > 20, proc.stdout  # a real first line of help


def test_a_standard_aws_profile_works(
    seeded_source: Store, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "aws-config").write_text("[profile khpl]\nregion = ap-south-1\n")
    (tmp_path / "aws-credentials").write_text(
        "[khpl]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret123\n"
    )
    profile_env = {
        k: v for k, v in env.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_REGION"))
    }
    profile_env |= {
        "AWS_PROFILE": "khpl",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
    }
    proc = run(["verify", "--json", "-vv"], profile_env)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["s3Records"] == 6
    assert "REACT_APP" not in proc.stderr  # no warning: the profile is the preferred way
    assert "profilesecret123" not in proc.stderr + proc.stdout


def test_a_missing_profile_is_a_clear_error(env: dict[str, str]) -> None:
    assert_clean_error(
        run(["verify"], {**env, "AWS_PROFILE": "nope"}), "profile 'nope' is not configured"
    )


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F"), ("zsh", "#compdef khpl-migrate"), ("fish", "complete")],
)
def test_shell_completion_scripts_come_from_click(
    env: dict[str, str], shell: str, marker: str
) -> None:
    """The README's completion lines work: each shell's script, and a real completion."""
    script = subprocess.run(
        [sys.executable, "-m", "khpl_migrate"],
        env=command_env({**env, "_KHPL_MIGRATE_COMPLETE": f"{shell}_source"}),
        capture_output=True,
        text=True,
    )
    assert script.returncode == 0 and marker in script.stdout, script.stdout[:300]
    completed = subprocess.run(
        [sys.executable, "-m", "khpl_migrate"],
        env=command_env(
            {
                **env,
                "_KHPL_MIGRATE_COMPLETE": "bash_complete",
                "COMP_WORDS": "khpl-migrate mig",
                "COMP_CWORD": "1",
            }
        ),
        capture_output=True,
        text=True,
    )
    assert completed.stdout.split() == ["plain,migrate"]


def test_version_names_the_parts_a_bug_report_needs(env: dict[str, str]) -> None:
    done = run(["--version"], env)
    assert done.returncode == 0
    assert re.fullmatch(
        r"khpl-migrate \S+ \(boto3 \S+, botocore \S+, ijson \S+ with the \w+ backend, "
        r"Python \S+\)\n",
        done.stdout,
    ), done.stdout
