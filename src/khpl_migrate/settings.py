"""One frozen settings object from flags, the environment and a `.env` file.

Precedence is flags, then the process environment, then `.env` in the working
directory (docs/design.md). The guide's `REACT_APP_*` names are read unchanged; the
standard AWS names (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL_*`) work too
and win over them. Secrets are held in `Secret`, whose repr never shows them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values

from khpl_migrate.core import errors

DEFAULT_TABLE = "KHPL-Registrations"
DEFAULT_SOURCE_KEY = "registrations.json"
DEFAULT_STATE_DIR = ".khpl-migrate"


class Secret:
    """A string that is never shown by repr, str or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to reach AWS and find the data."""

    bucket: str | None = None
    table: str = DEFAULT_TABLE
    region: str | None = None
    source_key: str = DEFAULT_SOURCE_KEY
    records_path: str | None = None
    profile: str | None = None
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    # Where the keys came from: "react-app" when only the guide's names were set.
    credentials_source: str = "aws-chain"
    # With "react-app": "the .env file /path/.env" or "the environment" (or both).
    credentials_origin: str = ""
    s3_endpoint: str | None = None
    dynamodb_endpoint: str | None = None
    sts_endpoint: str | None = None
    iam_endpoint: str | None = None
    state_dir: Path = field(default_factory=lambda: Path(DEFAULT_STATE_DIR))
    workers: int = 16
    kms_key_id: str | None = None  # SSE-KMS for what the tool writes; None: SSE-S3
    mask_aadhaar: bool = False  # store Aadhaar numbers masked (migrate --mask-aadhaar)
    max_attempts: int = 8

    def require_bucket(self) -> str:
        """The bucket, for the commands that cannot work without one."""
        if not self.bucket:
            raise errors.bucket_not_set()
        return self.bucket

    @property
    def dynamodb_is_local(self) -> bool:
        return _is_loopback(self.dynamodb_endpoint)

    @property
    def s3_is_local(self) -> bool:
        return _is_loopback(self.s3_endpoint)


def _is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Environment(dict[str, str]):
    """The environment as the tool sees it, remembering which names a `.env` file set:
    a warning about keys must say where they are, so the operator can remove them."""

    def __init__(
        self,
        values: Mapping[str, str],
        dotenv: Path | None = None,
        from_dotenv: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(values)
        self.dotenv = dotenv
        self.from_dotenv = from_dotenv

    def origin(self, name: str) -> str:
        if self.dotenv is not None and name in self.from_dotenv:
            return f"the .env file {self.dotenv}"
        return "the environment"


def read_env(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Environment:
    """The environment as the tool sees it: `.env` values under the real environment."""
    merged: dict[str, str] = {}
    path = dotenv if dotenv is not None else Path.cwd() / ".env"
    if path.is_file():
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    real = os.environ if environ is None else environ
    from_dotenv = frozenset(name for name in merged if name not in real)
    merged.update(real)
    return Environment(merged, path.resolve() if from_dotenv else None, from_dotenv)


def origin_of(env: Mapping[str, str], *names: str) -> str:
    """Where the first of `names` that is set came from: a `.env` file or the environment."""
    places = []
    for name in names:
        if env.get(name):
            place = env.origin(name) if isinstance(env, Environment) else "the environment"
            if place not in places:
                places.append(place)
    return " and ".join(places) or "the environment"


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def load(
    *,
    bucket: str | None = None,
    table: str | None = None,
    region: str | None = None,
    source_key: str | None = None,
    records_path: str | None = None,
    state_dir: Path | None = None,
    workers: int | None = None,
    max_attempts: int | None = None,
    kms_key_id: str | None = None,
    mask_aadhaar: bool = False,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings: the flags given here, then `env` (default: environment + .env)."""
    env = read_env() if env is None else env
    profile = _first(env, "AWS_PROFILE")
    standard_keys = _first(env, "AWS_ACCESS_KEY_ID")
    react_key = _first(env, "REACT_APP_AWS_ACCESS_KEY_ID")
    access_key = secret_key = token = None
    source, origin = "aws-chain", ""
    if standard_keys and not profile:
        access_key = Secret(standard_keys)
        secret_key = _secret(_first(env, "AWS_SECRET_ACCESS_KEY"))
        token = _secret(_first(env, "AWS_SESSION_TOKEN"))
    elif react_key and not profile:
        # The guide's names: still honoured, but the standard chain is preferred.
        access_key = Secret(react_key)
        secret_key = _secret(_first(env, "REACT_APP_AWS_SECRET_ACCESS_KEY"))
        source = "react-app"
        origin = origin_of(env, "REACT_APP_AWS_ACCESS_KEY_ID", "REACT_APP_AWS_SECRET_ACCESS_KEY")
    common = _first(env, "AWS_ENDPOINT_URL")
    return Settings(
        bucket=bucket or _first(env, "REACT_APP_S3_BUCKET_NAME", "KHPL_S3_BUCKET"),
        table=table or _first(env, "REACT_APP_DYNAMODB_TABLE_NAME") or DEFAULT_TABLE,
        region=region or _first(env, "AWS_REGION", "AWS_DEFAULT_REGION", "REACT_APP_AWS_REGION"),
        source_key=source_key or DEFAULT_SOURCE_KEY,
        records_path=records_path,
        profile=profile,
        access_key_id=access_key,
        secret_access_key=secret_key,
        session_token=token,
        credentials_source=source,
        credentials_origin=origin,
        s3_endpoint=_first(env, "AWS_ENDPOINT_URL_S3") or common,
        dynamodb_endpoint=_first(env, "AWS_ENDPOINT_URL_DYNAMODB") or common,
        sts_endpoint=_first(env, "AWS_ENDPOINT_URL_STS") or common,
        iam_endpoint=_first(env, "AWS_ENDPOINT_URL_IAM") or common,
        state_dir=state_dir or Path(_first(env, "KHPL_STATE_DIR") or DEFAULT_STATE_DIR),
        workers=workers if workers is not None else 16,
        max_attempts=max_attempts if max_attempts is not None else _attempts(env),
        kms_key_id=kms_key_id or _first(env, "KHPL_KMS_KEY_ID"),
        mask_aadhaar=mask_aadhaar,
    )


MAX_ATTEMPTS = range(1, 21)  # the --max-attempts flag's range


def _attempts(env: Mapping[str, str]) -> int:
    """KHPL_MAX_ATTEMPTS, checked as the flag is: a whole number from 1 to 20."""
    text = _first(env, "KHPL_MAX_ATTEMPTS")
    if text is None:
        return 8
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value not in MAX_ATTEMPTS:
        raise errors.ConfigError(
            f"KHPL_MAX_ATTEMPTS is {text!r}, not a whole number from 1 to 20",
            "set KHPL_MAX_ATTEMPTS to 1-20 (8 is the default), or pass --max-attempts",
        )
    return value


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None
