"""Settings: flags over environment over .env; the guide's names; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.core import errors
from khpl_migrate.settings import Secret

GUIDE_ENV = {
    "REACT_APP_AWS_REGION": "ap-south-1",
    "REACT_APP_AWS_ACCESS_KEY_ID": "AKIAGUIDEKEY",
    "REACT_APP_AWS_SECRET_ACCESS_KEY": "guide-secret-value",
    "REACT_APP_S3_BUCKET_NAME": "khpl-bucket",
    "REACT_APP_DYNAMODB_TABLE_NAME": "KHPL-Registrations",
    "REACT_APP_DYNAMODB_ENABLED": "true",
}


def test_the_guides_names_are_read_unchanged() -> None:
    s = settings_mod.load(env=GUIDE_ENV)
    assert (s.bucket, s.table, s.region) == ("khpl-bucket", "KHPL-Registrations", "ap-south-1")
    assert s.access_key_id == Secret("AKIAGUIDEKEY")
    assert s.credentials_source == "react-app"


def test_standard_aws_settings_win_over_the_guides() -> None:
    env = {**GUIDE_ENV, "AWS_REGION": "eu-west-1", "AWS_PROFILE": "khpl"}
    s = settings_mod.load(env=env)
    assert s.region == "eu-west-1"
    assert s.profile == "khpl" and s.access_key_id is None  # the profile's own keys are used
    assert s.credentials_source == "aws-chain"


def test_flags_win_over_the_environment() -> None:
    s = settings_mod.load(
        env=GUIDE_ENV, bucket="flag-bucket", table="Flag-Table", region="us-east-1"
    )
    assert (s.bucket, s.table, s.region) == ("flag-bucket", "Flag-Table", "us-east-1")


def test_the_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("REACT_APP_S3_BUCKET_NAME=from-dotenv\nREACT_APP_AWS_REGION=ap-south-1\n")
    merged = settings_mod.read_env({"REACT_APP_S3_BUCKET_NAME": "from-env"}, dotenv)
    s = settings_mod.load(env=merged)
    assert s.bucket == "from-env" and s.region == "ap-south-1"


def test_endpoints_come_from_the_standard_variables() -> None:
    s = settings_mod.load(
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_S3": "http://localhost:2"}
    )
    assert s.s3_endpoint == "http://localhost:2" and s.dynamodb_endpoint == "http://127.0.0.1:1"
    assert s.s3_is_local and s.dynamodb_is_local
    assert not settings_mod.load(
        env={"AWS_ENDPOINT_URL": "https://dynamodb.example.com"}
    ).dynamodb_is_local


def test_secrets_never_show_in_repr() -> None:
    s = settings_mod.load(env=GUIDE_ENV)
    shown = repr(s) + str(s)
    assert "guide-secret-value" not in shown and "AKIAGUIDEKEY" not in shown
    assert s.secret_access_key is not None and s.secret_access_key.reveal() == "guide-secret-value"


def test_attempts_come_from_the_environment_checked_like_the_flag() -> None:
    assert settings_mod.load(env={}).max_attempts == 8
    assert settings_mod.load(env={"KHPL_MAX_ATTEMPTS": "3"}).max_attempts == 3
    assert settings_mod.load(env={"KHPL_MAX_ATTEMPTS": "3"}, max_attempts=5).max_attempts == 5
    for bad in ("abc", "0", "21", "2.5"):
        with pytest.raises(errors.ConfigError, match="KHPL_MAX_ATTEMPTS"):
            settings_mod.load(env={"KHPL_MAX_ATTEMPTS": bad})


def test_the_guides_keys_say_where_they_came_from(tmp_path: Path) -> None:
    """The REACT_APP_* warning names the .env file that holds the keys, or the environment."""
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "REACT_APP_AWS_ACCESS_KEY_ID=AKIADOTENV\nREACT_APP_AWS_SECRET_ACCESS_KEY=dotenv-secret\n"
    )
    from_file = settings_mod.load(env=settings_mod.read_env({}, dotenv))
    assert from_file.credentials_source == "react-app"
    assert from_file.credentials_origin == f"the .env file {dotenv.resolve()}"
    from_env = settings_mod.load(env=settings_mod.read_env(GUIDE_ENV, tmp_path / "none"))
    assert from_env.credentials_origin == "the environment"
    both = settings_mod.read_env({"REACT_APP_AWS_ACCESS_KEY_ID": "AKIAENV"}, dotenv)
    assert settings_mod.load(env=both).credentials_origin == (
        f"the environment and the .env file {dotenv.resolve()}"
    )
