"""The boto3 session and the one client factory every AWS client comes from.

One place sets the retry mode (botocore's standard mode, `--max-attempts`),
the connection pool (one connection per worker, or the pool serialises them),
the timeouts, the endpoint of each service (`AWS_ENDPOINT_URL_*`, how every
command reaches the local stack) and the S3 tweak below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import botocore
import botocore.exceptions
import botocore.utils
from botocore.config import Config

from khpl_migrate.core import errors
from khpl_migrate.settings import Secret, Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

# Bodies under this size are sent without waiting for "100 Continue".
SMALL_BODY = 1024 * 1024


class Clients:
    """One session for one settings object, and the clients made from it (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = make_session(settings)
        self.s3: S3Client = self.client("s3")
        self.ddb: DynamoDBClient = self.client("dynamodb")
        # botocore asks S3 for "100 Continue" before every file-like body: one more
        # round trip per image. For bodies this small, sending them is cheaper.
        # (before-sign runs after botocore's before-call.s3 handler has added it.)
        self.s3.meta.events.register("before-sign.s3.PutObject", _no_expect_for_small_bodies)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str, *, max_attempts: int | None = None) -> Any:
        """A client of `service` at its configured endpoint, with the tool's retry rules."""
        settings = self.settings
        endpoints = {
            "s3": settings.s3_endpoint,
            "dynamodb": settings.dynamodb_endpoint,
            "sts": settings.sts_endpoint,
            "iam": settings.iam_endpoint,
        }
        config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts or settings.max_attempts},
            # Every worker needs its own connection, or the pool serialises them.
            max_pool_connections=max(10, settings.workers * 2),
            connect_timeout=5,
            read_timeout=60,
            user_agent_extra="khpl-migrate",
        )
        return self.session.client(  # type: ignore[call-overload]
            service, endpoint_url=endpoints.get(service), config=config
        )


def make_session(settings: Settings) -> boto3.Session:
    """The session: a profile, explicit keys, or the standard chain; a region is required."""
    try:
        session = boto3.Session(
            profile_name=settings.profile,
            region_name=settings.region,
            aws_access_key_id=_reveal(settings.access_key_id),
            aws_secret_access_key=_reveal(settings.secret_access_key),
            aws_session_token=_reveal(settings.session_token),
        )
    except botocore.exceptions.ProfileNotFound:
        raise errors.CredentialsError(
            f"AWS profile {settings.profile!r} is not configured",
            "check AWS_PROFILE, or run `aws configure --profile NAME`",
        ) from None
    if not session.region_name:
        raise errors.ConfigError(
            "No AWS region is set",
            "pass --region, or set AWS_REGION (or REACT_APP_AWS_REGION in .env)",
        )
    return session


def _no_expect_for_small_bodies(request: Any, **_: Any) -> None:
    if request.headers.get("Expect") == "100-continue":
        length = botocore.utils.determine_content_length(request.body)
        if length is not None and length < SMALL_BODY:
            del request.headers["Expect"]


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret is not None else None


def sdk_versions() -> str:
    """boto3's and botocore's versions, for `--version` (what a bug report needs)."""
    return f"boto3 {boto3.__version__}, botocore {botocore.__version__}"
