"""What every command shares: its options, its set-up, its exit codes, its error mapping.

Exit codes (docs/design.md): 0 done and everything checks out; 1 finished but
something is wrong (failed records, verify found differences); 2 could not
start (bad option, missing config or credentials, unreadable source, missing
table); 130 stopped by Ctrl-C or SIGTERM. Library errors (`errors.KhplError`)
become a message and its fix, never a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.cli.bars import LineProgress, RichProgress
from khpl_migrate.console import MaskingFilter, human_console, render_error
from khpl_migrate.core import errors
from khpl_migrate.cutover.restore import with_last_backup
from khpl_migrate.kernel.progress import Progress
from khpl_migrate.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_PROBLEMS, EXIT_CANNOT_START, EXIT_INTERRUPTED = 0, 1, 2, 130


class KhplGroup(click.Group):
    """Turns library errors into a message with its fix, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.KhplError as exc:
            if isinstance(exc, errors.Interrupted):
                # The run has stopped and recorded itself: one more Ctrl-C must not cut
                # its last lines, the counts, in half.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            exc = _with_backup_hint(ctx, exc)
            render_error(human_console(), exc.message, exc.fix)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            render_error(
                human_console(),
                "Interrupted",
                "run the same command again; `migrate --apply` resumes where it stopped",
            )
            ctx.exit(EXIT_INTERRUPTED)


SETTINGS_META = "khpl.settings"  # the command's settings, for the error hint below


def _with_backup_hint(ctx: click.Context, exc: errors.KhplError) -> errors.KhplError:
    """A broken source's fix names the last checked backup, whichever command met it."""
    settings = ctx.meta.get(SETTINGS_META)
    if not isinstance(exc, errors.SourceInvalid) or not isinstance(settings, Settings):
        return exc
    try:
        return with_last_backup(Store(settings), settings, exc)
    except errors.KhplError:  # the hint is a help: never hide the error it helps with
        return exc


# migrate and sync: a live table keeps the rest of its capacity for the app.
MAX_WRITE_RATE_OPTION = click.option(
    "--max-write-rate",
    type=click.FloatRange(min=0, min_open=True),
    help="items written a second, for the whole run (a sharded run splits it evenly), so "
    "that the app keeps the rest of the table's capacity",
)

STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="local state folder [env: KHPL_STATE_DIR; default: .khpl-migrate]",
)


def common_options(func: F) -> F:
    """The options every AWS-facing command takes (docs/design.md, "Commands")."""
    options = [
        click.option(
            "--bucket", help="S3 bucket holding registrations.json [env: REACT_APP_S3_BUCKET_NAME]"
        ),
        click.option(
            "--table",
            help="DynamoDB table [env: REACT_APP_DYNAMODB_TABLE_NAME; default KHPL-Registrations]",
        ),
        click.option("--region", help="AWS region [env: AWS_REGION, REACT_APP_AWS_REGION]"),
        click.option("--source-key", help="key of the source object [default: registrations.json]"),
        click.option(
            "--records-path", help="dotted path to the array when the file's top level is an object"
        ),
        STATE_DIR_OPTION,
        click.option(
            "--workers", type=click.IntRange(1, 64), help="records processed at once [default: 16]"
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 20),
            help="attempts per AWS request [env: KHPL_MAX_ATTEMPTS; default: 8]",
        ),
        click.option(
            "--kms-key-id",
            help="encrypt what the tool writes with this KMS key (SSE-KMS) "
            "[env: KHPL_KMS_KEY_ID; default: SSE-S3]",
        ),
        click.option("--json", "as_json", is_flag=True, help="print one JSON object on stdout"),
        click.option("--quiet", "-q", is_flag=True, help="only the summary"),
        click.option("-v", "--verbose", count=True, help="log what happens (-vv for more)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass(frozen=True)
class Invocation:
    """One command's settings, its console (stderr), and how it was asked to answer."""

    settings: Settings
    console: Console
    as_json: bool
    quiet: bool  # drops the per-record table and the progress bars, never the summary

    def progress(self) -> Progress:
        """Bars on a terminal; no bars when quiet or when stderr is not a terminal, only
        the lines that must be said at once (Ctrl-C's acknowledgement)."""
        if self.quiet or not sys.stderr.isatty():
            return LineProgress(self.console)
        return RichProgress(self.console)


def setup(kwargs: dict[str, Any]) -> Invocation:
    """The invocation from a command's common options (the rest stay in `kwargs`)."""
    as_json = kwargs.pop("as_json", False)
    quiet = kwargs.pop("quiet", False)
    _logging(kwargs.pop("verbose", 0))
    settings = settings_mod.load(**kwargs)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[SETTINGS_META] = settings
    console = human_console()
    if settings.credentials_source == "react-app":
        console.print(
            "[yellow]Warning:[/] using REACT_APP_AWS_ACCESS_KEY_ID/SECRET from "
            f"{escape(settings.credentials_origin)}. "
            "Create React App builds REACT_APP_* variables into the browser bundle, where anyone "
            "can read them. Prefer an AWS profile (AWS_PROFILE), and rotate this key if it was "
            "ever in a build.",
            highlight=False,
        )
    return Invocation(settings, console, as_json, quiet)


def _logging(verbose: int) -> None:
    if not verbose:
        return
    from rich.logging import RichHandler

    handler = RichHandler(console=human_console(), show_path=False, markup=False)
    handler.addFilter(MaskingFilter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s")
    logging.getLogger("khpl_migrate").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    # botocore's own debug log prints request headers (signatures): it stays at WARNING.
    logging.getLogger("botocore").setLevel(logging.WARNING)


def state_dir(flag: Path | None) -> Path:
    """--state-dir, else KHPL_STATE_DIR (environment or .env), else .khpl-migrate."""
    return settings_mod.load(state_dir=flag).state_dir


def interactive(invocation: Invocation) -> bool:
    """Someone at a terminal who can answer a question (never with --json)."""
    return not invocation.as_json and sys.stdin.isatty() and sys.stderr.isatty()


def write_lines(path: Path, lines: list[str]) -> None:
    try:
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise errors.ConfigError(
            f"Cannot write {path}: {exc.strerror}", "choose another path"
        ) from None


def read_ids(path: Path) -> frozenset[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.ConfigError(f"Cannot read {path}: {exc.strerror}", "check the path") from None
    ids = frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if not ids:
        raise errors.ConfigError(f"{path} lists no ids", "put one registration id on each line")
    return ids
