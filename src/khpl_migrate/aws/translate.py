"""AWS's errors, translated into errors a person can act on (`errors.py`).

botocore raises one `ClientError` for everything with a code inside; the tool
needs to know "wrong credentials", "no permission", "unreachable", "no such
bucket" and say the fix for each. `translate` is the one place that knows the
codes; everything in `aws/` runs its calls inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import botocore.exceptions

from khpl_migrate.core import errors

CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
    }
)
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "403"})
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})

ClientError = botocore.exceptions.ClientError


def code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def message(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


@contextmanager
def translate(what: str, *, bucket: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into errors that name the cause and the fix.

    `what` completes "while trying to ...": the operation in the operator's words.
    """
    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise errors.CredentialsError(
            "No AWS credentials found",
            "set AWS_PROFILE (preferred), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or the guide's REACT_APP_AWS_ACCESS_KEY_ID/REACT_APP_AWS_SECRET_ACCESS_KEY "
            "in .env",
        ) from None
    except (
        botocore.exceptions.PartialCredentialsError,
        botocore.exceptions.TokenRetrievalError,
        botocore.exceptions.SSOTokenLoadError,
    ) as exc:
        raise errors.CredentialsError(
            f"AWS credentials are incomplete or expired ({type(exc).__name__})",
            "check both the access key id and the secret, or run `aws sso login`",
        ) from None
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ConnectionClosedError,
    ) as exc:
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
        raise errors.EndpointError(
            f"Could not reach {endpoint} while trying to {what}",
            "check the network and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_DYNAMODB; "
            "for the local stack run `khpl-migrate local up`",
        ) from None
    except botocore.exceptions.ClientError as exc:
        found = code(exc)
        if found in CREDENTIAL_CODES:
            raise errors.CredentialsError(
                f"AWS refused the credentials ({found}) while trying to {what}",
                "check the access key and secret, or that the session has not expired",
            ) from None
        if found in DENIED_CODES:
            raise errors.AccessDenied(
                f"Access denied while trying to {what}",
                "grant the permissions listed in the README (IAM policy) to this user/role",
            ) from None
        if found == "NoSuchBucket" or (bucket and found == "404" and what.startswith("open")):
            raise errors.bucket_missing(bucket) from None
        raise errors.AwsError(
            f"AWS error {found or status(exc)} while trying to {what}",
            message(exc) or "see the AWS console",
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise errors.AwsError(f"Could not {what}", type(exc).__name__) from None
