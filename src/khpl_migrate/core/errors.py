"""The errors a person can act on.

Every error that stops a command before it could do its job is a `KhplError`:
its message names the cause and its `fix` says what to do. The command line
prints both and exits 2; no traceback reaches the user for these.
"""

from __future__ import annotations


class RecordError(ValueError):
    """One record cannot be migrated; the message is the reason the report shows.

    Not a KhplError: the record fails alone and the run goes on.
    """


class KhplError(Exception):
    """A foreseeable problem that stops a command; carries the fix."""

    exit_code = 2

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}: {self.fix}" if self.fix else self.message


class ConfigError(KhplError):
    """A required setting is missing or invalid."""


class CredentialsError(KhplError):
    """No usable AWS credentials, or AWS refused them."""


class EndpointError(KhplError):
    """An AWS endpoint (or the local stack) could not be reached."""


class AccessDenied(KhplError):
    """AWS refused an operation for lack of permission."""


class BucketMissing(KhplError):
    """The S3 bucket does not exist."""


class TableMissing(KhplError):
    """The DynamoDB table does not exist."""


class TableSchemaMismatch(KhplError):
    """The table exists with a key schema other than `id` (S)."""


class SourceMissing(KhplError):
    """The source object (registrations.json) does not exist."""


class SourceInvalid(KhplError):
    """The source is not complete, valid JSON with an array of records."""

    def __init__(
        self,
        message: str,
        fix: str = "",
        *,
        bucket: str = "",
        key: str = "",
        restorable: bool = False,
    ) -> None:
        super().__init__(message, fix)
        # Where the broken object is, and whether a backup is the fix (not --records-path):
        # the command line then names the last checked backup.
        self.bucket, self.key, self.restorable = bucket, key, restorable


# A source that a backup can mend: what every such error's fix says, whatever else it adds.
RESTORE_FIX = (
    "`khpl-migrate backups` lists the backups; "
    "`khpl-migrate restore-source --backup KEY` puts one back (a dry run first)"
)


class RestoreRefused(KhplError):
    """restore-source will not put this backup back (missing, damaged, not the source's)."""


class FirstMigration(KhplError):
    """sync was asked to work on a table no run of the tool has written."""


class SourceChanged(KhplError):
    """The source object changed while a run was reading it."""


class BackupFailed(KhplError):
    """The backup copy of the source could not be made or did not check out."""


class AwsError(KhplError):
    """Any other error from AWS that stops the command."""


class LocalStackError(KhplError):
    """The local stack could not be started or reached."""


class Interrupted(KhplError):
    """Ctrl-C or SIGTERM stopped a run cleanly; running again resumes it."""

    exit_code = 130


class RetriesExhausted(AwsError):
    """AWS kept refusing part of a request after every attempt; carries the last cause."""

    def __init__(self, message: str, fix: str = "", *, last_cause: str = "") -> None:
        super().__init__(message, fix)
        self.last_cause = last_cause


def table_missing(table: str) -> TableMissing:
    return TableMissing(f"Table {table} does not exist", "run `khpl-migrate create-table`")


def bucket_missing(bucket: str | None) -> BucketMissing:
    return BucketMissing(
        f"Bucket {bucket} does not exist", "check --bucket or REACT_APP_S3_BUCKET_NAME"
    )


def bucket_not_set() -> ConfigError:
    return ConfigError(
        "No S3 bucket is set",
        "pass --bucket, or set REACT_APP_S3_BUCKET_NAME in the environment or .env",
    )


# These stop a whole run: the next record would fail the same way.
FATAL = (
    CredentialsError,
    EndpointError,
    AccessDenied,
    BucketMissing,
    TableMissing,
    SourceChanged,
    RetriesExhausted,
)


def reason_of(exc: BaseException) -> str:
    """A failure as the report shows it: our own errors by their message."""
    if isinstance(exc, KhplError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
