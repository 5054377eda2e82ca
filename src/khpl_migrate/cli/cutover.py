"""After the migration: the guide's checklist as a page (`review`), and archiving the source."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from khpl_migrate.archive import archive_source
from khpl_migrate.aws import Store
from khpl_migrate.cli.common import EXIT_OK, common_options, interactive, setup
from khpl_migrate.console import emit_json
from khpl_migrate.report import render_archive, render_checks_summary
from khpl_migrate.review.checks import checklist, run_checks
from khpl_migrate.runner import make_runner


@click.command("archive-source")
@click.option(
    "--remove-original",
    is_flag=True,
    help="then remove registrations.json, only if verify --deep finds every record identical",
)
@click.option("--yes", is_flag=True, help="with --remove-original: do not ask first")
@common_options
def archive_source_cmd(remove_original: bool, yes: bool, **kwargs: Any) -> None:
    """Copy registrations.json to archive/registrations-{date}.json, checked.

    The guide's last step. The copy is server-side and proven by SHA-256; an
    archive holding other bytes is never replaced. The original stays unless
    --remove-original, which first runs verify --deep and removes nothing
    unless every record is identical. Switch the app to DynamoDB-only mode
    before removing the original.
    """
    run = setup(kwargs)
    settings = run.settings
    if remove_original and not yes:
        if not interactive(run):
            raise click.UsageError(
                "--remove-original asks first; pass --yes when nobody can answer"
            )
        question = (
            f"After archiving, remove s3://{settings.bucket}/{settings.source_key}? "
            "The app must be in DynamoDB-only mode"
        )
        if not click.confirm(question, default=False, err=True):
            remove_original = False
    result = archive_source(
        Store(settings),
        settings,
        remove_original=remove_original,
        runner=make_runner(settings.workers),
    )
    if run.as_json:
        emit_json(result.to_json())
    render_archive(run.console, result)
    sys.exit(EXIT_OK)


@click.command("review")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="port on 127.0.0.1  [default: a free one]",
)
@click.option("--open", "open_browser", is_flag=True, help="open the page in the web browser")
@common_options
def review_cmd(port: int, open_browser: bool, **kwargs: Any) -> None:
    """Serve the post-migration checklist as a web page on 127.0.0.1.

    Runs verify --deep and the backup and run checks, then serves one local
    page: the guide's checklist ticked or crossed with its figures, every
    record with its status, masked fields and image thumbnails, migrated
    images beside the originals from the backup, and the archive and rollback
    actions. Prints the page's address (with this session's token) on stdout;
    with --json, one object with the address and the checklist. Ctrl-C stops it.
    """
    # The web stack loads only for this command.
    from khpl_migrate.review.app import ReviewState
    from khpl_migrate.review.server import bind, serve

    run = setup(kwargs)
    console, settings = run.console, run.settings
    sock = bind(port)  # first: a taken port fails before the checks take time
    store = Store(settings)
    with (
        console.status("Checking every record, image, backup and run…")
        if not run.quiet and sys.stderr.isatty()
        else contextlib.nullcontext()
    ):
        checks = run_checks(store, settings, runner=make_runner(settings.workers))
    lines = checklist(checks)
    render_checks_summary(console, lines, checks.seconds)

    def ready(url: str) -> None:
        console.print(
            f"🌐 Review page (only on this machine; Ctrl-C stops it): {url}",
            highlight=False,
            markup=False,
        )
        if run.as_json:
            emit_json({"url": url, "checklist": [line.to_json() for line in lines]})
        else:
            click.echo(url)

    # uvicorn stops on Ctrl-C or SIGTERM, then raises the signal again: a normal stop.
    with contextlib.suppress(KeyboardInterrupt):
        serve(ReviewState(store, settings, checks), sock, open_browser=open_browser, on_ready=ready)
    console.print("Review stopped", highlight=False)
    sys.exit(EXIT_OK)


COMMANDS = [review_cmd, archive_source_cmd]
