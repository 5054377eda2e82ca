"""The guide's flow: create-table, verify, migrate, and their undo and records.

Each command parses its flags, calls one library function, renders the typed
result (`report.py`) or prints its JSON, and returns an exit code.
"""

from __future__ import annotations

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
    write_lines,
)
from khpl_migrate.cli.sharding import Sharding, run_one_shard, run_prepare
from khpl_migrate.console import emit_json
from khpl_migrate.core.ratelimit import WriteRate
from khpl_migrate.core.shards import MAX_SHARDS
from khpl_migrate.cutover.restore import apply_restore, plan_restore, show_restore
from khpl_migrate.kernel.backups import list_backups
from khpl_migrate.kernel.runner import make_runner
from khpl_migrate.kernel.runs import list_runs
from khpl_migrate.migrate.apply import apply_plan, result_of_plan
from khpl_migrate.migrate.launch import ENGINES, Engine
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.order import hint, next_after
from khpl_migrate.report import (
    render_backups,
    render_deep,
    render_plan,
    render_plan_line,
    render_restore,
    render_result,
    render_rollback,
    render_runs,
    render_table_result,
    render_verify,
)
from khpl_migrate.rollback import apply_rollback, plan_rollback, show_rollback
from khpl_migrate.setup.table import create_table
from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.status import verify


@click.command("create-table")
@common_options
def create_table_cmd(**kwargs: Any) -> None:
    """Create the DynamoDB table if it is missing, and wait until it is ACTIVE.

    On-demand billing, key id (string), deletion protection and point-in-time
    recovery on. An existing table with the right key is left as it is.
    """
    sys.exit(run_create_table(setup(kwargs)))


def run_create_table(run: Invocation) -> int:
    result = create_table(Store(run.settings), run.settings)
    if run.as_json:
        emit_json(result.to_json())
    render_table_result(run.console, result)
    return EXIT_OK


@click.command("verify")
@click.option("--deep", is_flag=True, help="also compare every field and every image byte")
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="with --deep: write the reconciliation report (one line per record) to FILE",
)
@click.option(
    "--failed-ids",
    type=click.Path(dir_okay=False, path_type=Path),
    help="with --deep: write the ids that need attention to FILE (for sync --only-ids)",
)
@click.option(
    "--allow-table-edits",
    is_flag=True,
    help="with --deep: what changed in DynamoDB since the migration (the app's edits, after "
    "the cut-over) is listed but does not fail the check; damage in S3 still does",
)
@common_options
def verify_cmd(
    deep: bool,
    report_file: Path | None,
    failed_ids: Path | None,
    allow_table_edits: bool,
    **kwargs: Any,
) -> None:
    """Compare registrations.json with the table: the guide's status report.

    --deep also rebuilds every item from its source record and compares every
    field and every image object (exists, SHA-256, size, Content-Type, decodes).
    Exits 0 when everything checks out, 1 when something does not.
    """
    run = setup(kwargs)
    if (report_file or failed_ids or allow_table_edits) and not deep:
        raise click.UsageError("--report, --failed-ids and --allow-table-edits go with --deep")
    sys.exit(run_verify(run, deep, report_file, failed_ids, allow_table_edits))


def run_verify(
    run: Invocation,
    deep: bool = False,
    report_file: Path | None = None,
    failed_ids: Path | None = None,
    allow_table_edits: bool = False,
) -> int:
    store = Store(run.settings)
    if not deep:
        report = verify(store, run.settings)
        if run.as_json:
            emit_json(report.to_json())
        render_verify(run.console, report)
        return EXIT_OK if report.complete else EXIT_PROBLEMS
    report, checked = deep_verify(
        store, run.settings, allow_table_edits=allow_table_edits, progress=run.progress()
    )
    if report_file:
        write_lines(report_file, checked.lines())
    if failed_ids:
        write_lines(failed_ids, checked.attention_ids())
    if run.as_json:
        emit_json({**report.to_json(), "deep": checked.to_json()})
    render_verify(run.console, report)
    render_deep(run.console, checked, report)
    for path, what in ((report_file, "reconciliation report"), (failed_ids, "ids to re-run")):
        if path:
            run.console.print(f"📝 {what}: {path}", highlight=False, markup=False)
    return EXIT_OK if checked.passes(report) else EXIT_PROBLEMS


@click.command("migrate")
@click.option(
    "--apply/--dry-run",
    "apply_",
    default=False,
    help="--apply: do the real migration without asking; --dry-run (the default): only show "
    "the plan, writing nothing",
)
@click.option(
    "--only-ids",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="migrate only the records whose id is in FILE (one id a line)",
)
@click.option(
    "--failed-ids",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the ids of the records that failed to FILE (for --only-ids)",
)
@click.option(
    "--mask-aadhaar",
    is_flag=True,
    help="store Aadhaar numbers masked (XXXX XXXX 1234) instead of in full",
)
@click.option(
    "--shards",
    type=click.IntRange(1, MAX_SHARDS),
    help="with --apply: one run as N shards (one plan, one snapshot), launched by --launch",
)
@click.option(
    "--launch",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="with --shards: start N local processes, or print an AWS Batch array job (batch) "
    "or a Kubernetes Indexed Job (k8s) on stdout",
)
@click.option("--image", help="with --launch batch|k8s: the container image to run")
@click.option(
    "--parallelism", type=click.IntRange(1), help="with --launch k8s: pods at once [default: N]"
)
@click.option("--run", "run_id", help="with --shard: the sharded run to work on")
@click.option(
    "--shard",
    help="with --run: the shard to run, an index, or auto (from AWS_BATCH_JOB_ARRAY_INDEX "
    "or JOB_COMPLETION_INDEX)",
)
@MAX_WRITE_RATE_OPTION
@common_options
def migrate_cmd(
    apply_: bool,
    only_ids: Path | None,
    failed_ids: Path | None,
    mask_aadhaar: bool,
    shards: int | None,
    launch: Engine,
    image: str | None,
    parallelism: int | None,
    run_id: str | None,
    shard: str | None,
    max_write_rate: float | None,
    **kwargs: Any,
) -> None:
    """Migrate every record: a dry run (--dry-run, the default) unless --apply.

    The dry run reads and checks the whole source and prints what would happen
    to each record, writing nothing. On a terminal it then asks to proceed.
    --apply backs up the source, uploads the images, writes the items (never
    overwriting) and records the run's manifest. --shards N splits the run
    among N processes, here or on AWS Batch or Kubernetes.
    """
    sharding = Sharding(shards, launch, image, parallelism, run_id, shard, max_write_rate)
    sharding.check(
        apply=apply_,
        only_ids=only_ids is not None,
        mask_aadhaar=mask_aadhaar,
        failed_ids=failed_ids is not None,
    )
    run = setup({**kwargs, "mask_aadhaar": mask_aadhaar})
    if run_id is not None:
        sys.exit(run_one_shard(run, sharding))
    selected = read_ids(only_ids) if only_ids else None
    sys.exit(
        run_migrate(run, apply=apply_, only_ids=selected, failed_ids=failed_ids, sharding=sharding)
    )


def run_migrate(
    run: Invocation,
    *,
    apply: bool,
    ask: bool = True,
    only_ids: frozenset[str] | None = None,
    failed_ids: Path | None = None,
    sharding: Sharding | None = None,
) -> int:
    console, store = run.console, Store(run.settings)
    sharding = sharding or Sharding()
    plan = build_plan(store, run.settings, progress=run.progress(), only_ids=only_ids)
    if only_ids is not None:
        unknown = len(only_ids - {e.id for e in plan.entries if e.id is not None})
        if unknown:
            console.print(f"⚠️ {unknown} of the ids given are not in the source", highlight=False)
    dry = result_of_plan(plan)
    if not apply:
        render_plan(console, plan.entries, per_record=not run.quiet)
        render_result(console, dry, plan.source.bucket)
        proceed = ask and interactive(run) and dry.migrated
        if not (proceed and click.confirm("Proceed?", default=False, err=True)):
            if run.as_json:
                emit_json(dry.to_json())
            if failed_ids:
                write_lines(failed_ids, [f.id for f in dry.failed if f.id is not None])
            if dry.migrated:
                shards = f" --shards {sharding.shards}" if sharding.shards else ""
                console.print(
                    f"💡 Nothing was written. To migrate: {next_after('migrate')}{shards}",
                    highlight=False,
                )
            return EXIT_OK if dry.ok else EXIT_PROBLEMS
    else:
        render_plan_line(console, dry)
    if sharding.shards and dry.migrated:
        return run_prepare(run, plan, sharding)
    runner = make_runner(run.settings.workers)
    rate = WriteRate(sharding.max_write_rate)
    result = apply_plan(
        store, run.settings, plan, runner=runner, progress=run.progress(), rate=rate
    )
    if failed_ids:
        write_lines(failed_ids, [f.id for f in result.failed if f.id is not None])
    if run.as_json:
        emit_json(result.to_json())
    render_result(console, result, plan.source.bucket)
    console.print(hint("migrate --apply"), highlight=False)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


@click.command("rollback")
@click.option("--run", "run_id", required=True, help="the run to undo (see `khpl-migrate runs`)")
@click.option(
    "--apply", "apply_", is_flag=True, help="delete for real (default: show what would go)"
)
@common_options
def rollback_cmd(run_id: str, apply_: bool, **kwargs: Any) -> None:
    """Undo one run, a migration or a sync, on the table and bucket it wrote.

    A migration's items and image objects are deleted; a sync's changes are put
    back field by field (and the items it deleted put back). An item goes only
    while it is exactly what the run left (every field and image as the run
    wrote it); a field only while it holds what the run wrote; an image object
    only while it holds the run's tag and bytes and no item names it. Everything
    else is the app's and stays, with the reason. A dry run unless --apply; a
    killed rollback is finished by running it again; a run already rolled back
    is said to be, and nothing is written. The run's manifest names its table
    and bucket: a --table or --bucket that differs is refused.
    """
    table_given = kwargs.get("table")  # before setup: only a --table the operator typed
    run = setup(kwargs)
    store = Store(run.settings)
    plan = plan_rollback(store, run.settings, run_id, table_given=table_given)
    result = apply_rollback(store, plan) if apply_ else show_rollback(plan)
    if run.as_json:
        emit_json(result.to_json())
    render_rollback(run.console, result)
    sys.exit(EXIT_OK)


@click.command("runs")
@common_options
def runs_cmd(**kwargs: Any) -> None:
    """List the migration runs recorded in the bucket, with their counts and manifests."""
    run = setup(kwargs)
    bucket = run.settings.require_bucket()
    store = Store(run.settings)
    store.check_bucket(bucket)
    runs = list_runs(store, bucket, run.settings.state_dir)
    if run.as_json:
        emit_json({"runs": [manifest.to_json() for manifest in runs]})
    render_runs(run.console, runs)


@click.command("backups")
@common_options
def backups_cmd(**kwargs: Any) -> None:
    """List the backups of the source, and whether each still matches what it copied."""
    run = setup(kwargs)
    backups = list_backups(Store(run.settings), run.settings)
    if run.as_json:
        emit_json({"backups": [b.to_json() for b in backups]})
    render_backups(run.console, backups)
    sys.exit(EXIT_PROBLEMS if any(b.matches_source is False for b in backups) else EXIT_OK)


@click.command("restore-source")
@click.option(
    "--backup", "backup_key", required=True, help="the backup to put back (see `backups`)"
)
@click.option("--apply", "apply_", is_flag=True, help="write it (default: show what would be done)")
@click.option(
    "--expect-etag",
    help="with --apply: the source's ETag the dry run showed (none: there was no source); "
    "the write happens only while the source is still that version",
)
@common_options
def restore_source_cmd(
    backup_key: str, apply_: bool, expect_etag: str | None, **kwargs: Any
) -> None:
    """Put a backup back as the source (registrations.json): a recovery step.

    For a source that is broken (not valid JSON, empty). The dry run checks the
    backup (it still hashes to what its run read, and parses) and shows the
    source as it is now, with its ETag and version id. --apply --expect-etag
    ETAG writes the backup's bytes only while the source is still that version
    (S3's If-Match), so a newer write by the app is never overwritten.
    """
    if apply_ and not expect_etag:
        raise click.UsageError(
            "--apply needs --expect-etag: run without --apply first and pass the ETag it shows"
        )
    run = setup(kwargs)
    store = Store(run.settings)
    plan = plan_restore(store, run.settings, backup_key)
    result = apply_restore(store, plan, expect_etag or "") if apply_ else show_restore(plan)
    if run.as_json:
        emit_json(result.to_json())
    render_restore(run.console, result)
    sys.exit(EXIT_OK)


COMMANDS = [
    create_table_cmd,
    verify_cmd,
    migrate_cmd,
    rollback_cmd,
    runs_cmd,
    backups_cmd,
    restore_source_cmd,
]
