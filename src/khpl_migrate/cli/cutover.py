"""After the migration: catching up with edits (`sync`), the guide's checklist as a page
(`review`), and archiving the source."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from khpl_migrate.aws import Store
from khpl_migrate.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    MAX_WRITE_RATE_OPTION,
    Invocation,
    common_options,
    interactive,
    read_ids,
    setup,
)
from khpl_migrate.console import emit_json
from khpl_migrate.cutover.archive import archive_source
from khpl_migrate.cutover.freeze import freeze
from khpl_migrate.kernel.runner import make_runner
from khpl_migrate.report import render_archive, render_checks_summary, render_freeze, render_sync
from khpl_migrate.review.checks import checklist, run_checks
from khpl_migrate.sync.apply import apply_sync, show_sync
from khpl_migrate.sync.model import SyncOptions, Take
from khpl_migrate.sync.plan import plan_sync


@click.command("archive-source")
@click.option(
    "--remove-original",
    is_flag=True,
    help="then remove registrations.json, only if verify --deep finds every record identical",
)
@click.option(
    "--allow-table-edits",
    is_flag=True,
    help="with --remove-original: records that differ only by edits made in DynamoDB since "
    "the migration (the app's) do not stop the removal; anything else still does",
)
@click.option("--yes", is_flag=True, help="with --remove-original: do not ask first")
@common_options
def archive_source_cmd(
    remove_original: bool, allow_table_edits: bool, yes: bool, **kwargs: Any
) -> None:
    """Copy registrations.json to archive/registrations-{date}.json, checked.

    The guide's last step. The copy is server-side and proven by SHA-256; an
    archive holding other bytes is never replaced. The original stays unless
    --remove-original, which first runs verify --deep and removes nothing
    unless it passes (with --allow-table-edits, as verify --deep
    --allow-table-edits). A source frozen by freeze-source stays frozen: the
    original is removed and the statement is left in place. Switch the app to
    DynamoDB-only mode before removing the original.
    """
    if allow_table_edits and not remove_original:
        raise click.UsageError("--allow-table-edits goes with --remove-original")
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
        allow_table_edits=allow_table_edits,
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
@click.option(
    "--allow-table-edits",
    is_flag=True,
    help="after the cut-over: the app's edits made in DynamoDB since the migration count as "
    "checked (as verify --deep --allow-table-edits); damage and source changes do not",
)
@common_options
def review_cmd(port: int, open_browser: bool, allow_table_edits: bool, **kwargs: Any) -> None:
    """Serve the post-migration checklist as a web page on 127.0.0.1.

    Runs verify --deep and the backup and run checks, then serves one local
    page: the guide's checklist ticked or crossed with its figures, every
    record with its status, masked fields and image thumbnails, migrated
    images beside the originals from the backup, and the archive and rollback
    actions. Prints the page's address (with this session's token) on stdout;
    with --json, one object with the address and the checklist. Ctrl-C stops it.
    After the cut-over, --allow-table-edits accepts the app's edits made in
    DynamoDB, and the page says how many.
    """
    sys.exit(serve_review(setup(kwargs), port, open_browser, allow_table_edits=allow_table_edits))


def serve_review(
    run: Invocation,
    port: int,
    open_browser: bool,
    *,
    store: Store | None = None,
    url_on_stdout: bool = True,
    allow_table_edits: bool = False,
) -> int:
    """The checks, then the page until Ctrl-C (review's, and rehearse --review's on its
    own stack: `store`; `url_on_stdout` False when stdout already has its JSON)."""
    # The web stack loads only for this command.
    from khpl_migrate.review.app import ReviewState
    from khpl_migrate.review.server import bind, serve

    console, settings = run.console, run.settings
    sock = bind(port)  # first: a taken port fails before the checks take time
    store = store or Store(settings)
    with (
        console.status("Checking every record, image, backup and run…")
        if not run.quiet and sys.stderr.isatty()
        else contextlib.nullcontext()
    ):
        checks = run_checks(
            store,
            settings,
            runner=make_runner(settings.workers),
            allow_table_edits=allow_table_edits,
        )
    lines = checklist(checks)
    render_checks_summary(console, lines, checks.seconds)

    def ready(url: str) -> None:
        console.print(
            f"🌐 Review page (only on this machine; Ctrl-C stops it): {url}",
            highlight=False,
            markup=False,
        )
        if not url_on_stdout:
            return
        if run.as_json:
            emit_json(
                {
                    "url": url,
                    "checklist": [line.to_json() for line in lines],
                    "allowTableEdits": allow_table_edits,
                    "acceptedTableEdits": checks.deep.accepted(),
                }
            )
        else:
            click.echo(url)

    # uvicorn stops on Ctrl-C or SIGTERM, then raises the signal again: a normal stop.
    with contextlib.suppress(KeyboardInterrupt):
        serve(ReviewState(store, settings, checks), sock, open_browser=open_browser, on_ready=ready)
    console.print("Review stopped", highlight=False)
    return EXIT_OK


@click.command("sync")
@click.option("--apply", "apply_", is_flag=True, help="write the changes without asking")
@click.option(
    "--delete",
    is_flag=True,
    help="delete items whose record was deleted in the source (only while unchanged)",
)
@click.option(
    "--max-delete",
    type=click.FloatRange(0, 100),
    default=10.0,
    show_default=True,
    help="refuse every deletion when they would remove more than this % of the table",
)
@click.option(
    "--repair-images",
    is_flag=True,
    help="put back the source's bytes of a damaged image object (only while unchanged)",
)
@click.option(
    "--only-ids",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="sync only the records whose id is in FILE (one id a line)",
)
@click.option(
    "--take",
    type=click.Choice(["source", "table"]),
    help="with --only-ids: settle those records' conflicts with this side's values",
)
@click.option(
    "--mask-aadhaar",
    is_flag=True,
    help="store Aadhaar numbers of records new in the source masked (as migrate does)",
)
@MAX_WRITE_RATE_OPTION
@common_options
def sync_cmd(
    apply_: bool,
    delete: bool,
    max_delete: float,
    repair_images: bool,
    only_ids: Path | None,
    take: Take | None,
    mask_aadhaar: bool,
    max_write_rate: float | None,
    **kwargs: Any,
) -> None:
    """Carry the source's edits over to the table, field by field: a dry run unless --apply.

    For every record it compares the baseline (the record as the tool last wrote
    it), registrations.json now and the item now. A field or image only the
    source changed is carried over; one only DynamoDB changed (the app) is kept;
    one both changed differently is a conflict: nothing is written for it and it
    is reported until both sides agree or --take settles it. Records new in the
    source are migrated; items whose record left the source are deleted only with
    --delete. Exit 0 when source and table are in step, 1 when something is left.
    """
    if take and not only_ids:
        raise click.UsageError("--take settles the conflicts of listed ids: add --only-ids FILE")
    run = setup({**kwargs, "mask_aadhaar": mask_aadhaar})
    options = SyncOptions(
        delete=delete,
        max_delete=max_delete,
        repair_images=repair_images,
        take=take,
        only_ids=read_ids(only_ids) if only_ids else None,
        mask_aadhaar=mask_aadhaar,
        max_write_rate=max_write_rate,
    )
    sys.exit(run_sync(run, options, apply=apply_))


def run_sync(run: Invocation, options: SyncOptions, *, apply: bool) -> int:
    store, settings = Store(run.settings), run.settings
    runner = make_runner(settings.workers)
    plan = plan_sync(store, settings, options, runner=runner, progress=run.progress())
    bucket = plan.source.bucket
    if not apply:
        shown = show_sync(plan)
        ask = interactive(run) and shown.pending
        if not (ask and click.confirm("Proceed?", default=False, err=True)):
            if run.as_json:
                emit_json(shown.to_json())
            render_sync(run.console, shown, bucket)
            return EXIT_OK if shown.ok else EXIT_PROBLEMS
    result = apply_sync(
        store, settings, plan, runner=make_runner(settings.workers), progress=run.progress()
    )
    if run.as_json:
        emit_json(result.to_json())
    render_sync(run.console, result, bucket)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


@click.command("freeze-source")
@click.option("--apply", "apply_", is_flag=True, help="change the bucket policy (default: show)")
@click.option("--undo", is_flag=True, help="remove the statement freeze-source added")
@common_options
def freeze_source_cmd(apply_: bool, undo: bool, **kwargs: Any) -> None:
    """Stop writes to registrations.json: the cut-over's last guard.

    Prints a bucket-policy statement, with its own Sid, that denies
    s3:PutObject and s3:DeleteObject on the source key to everyone; --apply
    adds it to the bucket's policy (nothing else in it changes). Run it after the
    app is switched to DynamoDB-only mode, then sync once more. --undo removes
    exactly that statement again (with --apply).
    """
    run = setup(kwargs)
    result = freeze(Store(run.settings), run.settings, undo=undo, apply=apply_)
    click.echo(json.dumps(result.to_json() if run.as_json else result.statement, indent=2))
    render_freeze(run.console, result)
    sys.exit(EXIT_OK)


COMMANDS = [review_cmd, archive_source_cmd, sync_cmd, freeze_source_cmd]
