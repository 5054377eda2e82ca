"""The command line: parse flags, call the library, render, map errors to exit codes.

Exit codes (DESIGN.md): 0 done and everything checks out; 1 finished but
something is wrong (failed records, verify found differences); 2 could not
start (bad option, missing config or credentials, unreadable source, missing
table). Library errors (`errors.KhplError`) become a message and its fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from khpl_migrate import __version__, errors, local, sample
from khpl_migrate import policy as policy_mod
from khpl_migrate import settings as settings_mod
from khpl_migrate.apply import apply_plan, result_of_plan
from khpl_migrate.archive import archive_source
from khpl_migrate.aws import Store
from khpl_migrate.backups import list_backups
from khpl_migrate.deep import deep_verify
from khpl_migrate.doctor import doctor
from khpl_migrate.journal import list_runs
from khpl_migrate.plan import build_plan
from khpl_migrate.progress import NullProgress, Progress, RichProgress
from khpl_migrate.report import (
    MaskingFilter,
    emit_json,
    human_console,
    render_archive,
    render_backups,
    render_checks_summary,
    render_deep,
    render_doctor,
    render_error,
    render_plan,
    render_plan_line,
    render_result,
    render_rollback,
    render_runs,
    render_table_result,
    render_verify,
)
from khpl_migrate.review import checklist, run_checks
from khpl_migrate.rollback import apply_rollback, plan_rollback, show_rollback
from khpl_migrate.runner import make_runner
from khpl_migrate.settings import Settings
from khpl_migrate.table import create_table
from khpl_migrate.verify import verify

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_PROBLEMS, EXIT_CANNOT_START = 0, 1, 2


class KhplGroup(click.Group):
    """Turns library errors into a message with its fix, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.KhplError as exc:
            render_error(human_console(), exc.message, exc.fix)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            render_error(
                human_console(),
                "Interrupted",
                "run the same command again; `migrate --apply` resumes where it stopped",
            )
            ctx.exit(130)


def common_options(func: F) -> F:
    """The options every AWS-facing command takes (DESIGN.md, "Commands")."""
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
        click.option(
            "--state-dir",
            type=click.Path(path_type=Path),
            help="local state folder [default: .khpl-migrate]",
        ),
        click.option(
            "--workers", type=click.IntRange(1, 64), help="records processed at once [default: 16]"
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 20),
            help="attempts per AWS request [default: 8]",
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


def _setup(kwargs: dict[str, Any]) -> tuple[Settings, Any, bool, bool]:
    """Settings, the human console, --json, --quiet from a command's options."""
    as_json = kwargs.pop("as_json", False)
    quiet = kwargs.pop("quiet", False)
    verbose = kwargs.pop("verbose", 0)
    _logging(verbose)
    settings = settings_mod.load(**kwargs)
    # --quiet drops the per-record table and the progress bars, never the summary.
    console = human_console()
    if settings.credentials_source == "react-app":
        console.print(
            "[yellow]Warning:[/] using REACT_APP_AWS_ACCESS_KEY_ID/SECRET from the environment. "
            "Create React App builds REACT_APP_* variables into the browser bundle, where anyone "
            "can read them. Prefer an AWS profile (AWS_PROFILE), and rotate this key if it was "
            "ever in a build.",
            highlight=False,
        )
    return settings, console, as_json, quiet


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


@click.group(cls=KhplGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="khpl-migrate")
def cli() -> None:
    """Move KHPL registrations from S3 registrations.json to DynamoDB, losing nothing.

    The usual order: doctor, verify, create-table, migrate (a dry run),
    migrate --apply, verify --deep; rollback undoes one run. Configuration
    comes from flags, the environment and .env (the guide's REACT_APP_* names
    or standard AWS settings). Try it all locally with `khpl-migrate demo`.
    """


@cli.command("create-table")
@common_options
def create_table_cmd(**kwargs: Any) -> None:
    """Create the DynamoDB table if it is missing, and wait until it is ACTIVE.

    On-demand billing, key id (string), deletion protection and point-in-time
    recovery on. An existing table with the right key is left as it is.
    """
    settings, console, as_json, _ = _setup(kwargs)
    sys.exit(run_create_table(settings, console, as_json))


def run_create_table(settings: Settings, console: Any, as_json: bool) -> int:
    result = create_table(Store(settings), settings).to_json()
    if as_json:
        emit_json(result)
    render_table_result(console, result)
    return EXIT_OK


@cli.command("verify")
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
    help="with --deep: write the ids that need attention to FILE (for migrate --only-ids)",
)
@common_options
def verify_cmd(
    deep: bool, report_file: Path | None, failed_ids: Path | None, **kwargs: Any
) -> None:
    """Compare registrations.json with the table: the guide's status report.

    --deep also rebuilds every item from its source record and compares every
    field and every image object (exists, SHA-256, size, Content-Type, decodes).
    Exits 0 when everything checks out, 1 when something does not.
    """
    settings, console, as_json, _ = _setup(kwargs)
    if (report_file or failed_ids) and not deep:
        raise click.UsageError("--report and --failed-ids go with --deep")
    sys.exit(run_verify(settings, console, as_json, deep, report_file, failed_ids))


def run_verify(
    settings: Settings,
    console: Any,
    as_json: bool,
    deep: bool = False,
    report_file: Path | None = None,
    failed_ids: Path | None = None,
) -> int:
    store = Store(settings)
    if not deep:
        report = verify(store, settings)
        data = report.to_json()
    else:
        report, checked = deep_verify(store, settings)
        data = report.to_json()
        lines = checked.lines()
        data["deep"] = checked.to_json()
        if report_file:
            _write_lines(report_file, lines)
        if failed_ids:
            _write_lines(failed_ids, checked.attention_ids())
    if as_json:
        emit_json(data)
    names = dict(report.only_in_s3) | dict(report.only_in_dynamo)
    render_verify(console, data, names)
    if deep:
        render_deep(console, data["deep"], lines)
        for path, what in ((report_file, "reconciliation report"), (failed_ids, "ids to re-run")):
            if path:
                console.print(f"📝 {what}: {path}", highlight=False, markup=False)
        return EXIT_OK if report.complete and checked.ok else EXIT_PROBLEMS
    return EXIT_OK if report.complete else EXIT_PROBLEMS


def _write_lines(path: Path, lines: list[str]) -> None:
    try:
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise errors.ConfigError(
            f"Cannot write {path}: {exc.strerror}", "choose another path"
        ) from None


def _read_ids(path: Path) -> frozenset[str]:
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


@cli.command("migrate")
@click.option("--apply", "apply_", is_flag=True, help="do the real migration without asking")
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
@common_options
def migrate_cmd(
    apply_: bool, only_ids: Path | None, failed_ids: Path | None, mask_aadhaar: bool, **kwargs: Any
) -> None:
    """Migrate every record: a dry run unless --apply.

    The dry run reads and checks the whole source and prints what would happen
    to each record, writing nothing. On a terminal it then asks to proceed.
    --apply backs up the source, uploads the images, writes the items (never
    overwriting) and records the run's manifest.
    """
    settings, console, as_json, quiet = _setup({**kwargs, "mask_aadhaar": mask_aadhaar})
    selected = _read_ids(only_ids) if only_ids else None
    sys.exit(
        run_migrate(
            settings,
            console,
            as_json=as_json,
            quiet=quiet,
            apply=apply_,
            only_ids=selected,
            failed_ids=failed_ids,
        )
    )


def _progress(console: Any, quiet: bool) -> Progress:
    if quiet or not sys.stderr.isatty():
        return NullProgress()
    return RichProgress(console)


def run_migrate(
    settings: Settings,
    console: Any,
    *,
    as_json: bool,
    quiet: bool,
    apply: bool,
    ask: bool = True,
    only_ids: frozenset[str] | None = None,
    failed_ids: Path | None = None,
) -> int:
    store = Store(settings)
    plan = build_plan(store, settings, progress=_progress(console, quiet), only_ids=only_ids)
    if only_ids is not None:
        unknown = len(only_ids - {e.id for e in plan.entries if e.id is not None})
        if unknown:
            console.print(f"⚠️ {unknown} of the ids given are not in the source", highlight=False)
    dry = result_of_plan(plan)
    if not apply:
        render_plan(console, [e.to_json() for e in plan.entries], per_record=not quiet)
        render_result(console, dry.to_json(), plan.source.bucket, None)
        interactive = ask and not as_json and sys.stdin.isatty() and sys.stderr.isatty()
        if interactive and dry.migrated and click.confirm("Proceed?", default=False, err=True):
            apply = True
        else:
            if as_json:
                emit_json(dry.to_json())
            if failed_ids:
                _write_lines(failed_ids, [f.id for f in dry.failed if f.id is not None])
            if dry.migrated:
                console.print(
                    "💡 Nothing was written. To migrate: khpl-migrate migrate --apply",
                    highlight=False,
                )
            return EXIT_OK if dry.ok else EXIT_PROBLEMS
    else:
        render_plan_line(console, dry.to_json())
    result = apply_plan(
        store,
        settings,
        plan,
        runner=make_runner(settings.workers),
        progress=_progress(console, quiet),
    )
    data = result.to_json()
    if failed_ids:
        _write_lines(failed_ids, [f.id for f in result.failed if f.id is not None])
    if as_json:
        emit_json(data)
    render_result(console, data, plan.source.bucket, result.manifest_path)
    console.print("💡 Next: khpl-migrate verify", highlight=False)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


@cli.command("rollback")
@click.option("--run", "run_id", required=True, help="the run to undo (see `khpl-migrate runs`)")
@click.option(
    "--apply", "apply_", is_flag=True, help="delete for real (default: show what would go)"
)
@common_options
def rollback_cmd(run_id: str, apply_: bool, **kwargs: Any) -> None:
    """Undo one run: delete exactly the items and image objects it created.

    Items go only while they still carry the run's id; image objects only while
    their bytes are the ones the run wrote. Everything else stays, with the
    reason. A dry run unless --apply.
    """
    settings, console, as_json, _ = _setup(kwargs)
    store = Store(settings)
    plan = plan_rollback(store, settings, run_id)
    result = apply_rollback(store, plan) if apply_ else show_rollback(plan)
    data = result.to_json()
    if as_json:
        emit_json(data)
    render_rollback(console, data)
    sys.exit(EXIT_OK)


@cli.command("runs")
@common_options
def runs_cmd(**kwargs: Any) -> None:
    """List the migration runs recorded in the bucket, with their counts and manifests."""
    settings, console, as_json, _ = _setup(kwargs)
    bucket = settings.require_bucket()
    store = Store(settings)
    store.check_bucket(bucket)
    runs = [run.to_json() for run in list_runs(store, bucket)]
    if as_json:
        emit_json({"runs": runs})
    render_runs(console, runs)


@cli.command("backups")
@common_options
def backups_cmd(**kwargs: Any) -> None:
    """List the backups of the source, and whether each still matches what it copied."""
    settings, console, as_json, _ = _setup(kwargs)
    backups = [b.to_json() for b in list_backups(Store(settings), settings)]
    if as_json:
        emit_json({"backups": backups})
    render_backups(console, backups)
    bad = any(b["matchesSource"] is False for b in backups)
    sys.exit(EXIT_PROBLEMS if bad else EXIT_OK)


@cli.command("archive-source")
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
    settings, console, as_json, _ = _setup(kwargs)
    if remove_original and not yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()) or as_json:
            raise click.UsageError(
                "--remove-original asks first; pass --yes when nobody can answer"
            )
        question = (
            f"After archiving, remove s3://{settings.bucket}/{settings.source_key}? "
            "The app must be in DynamoDB-only mode"
        )
        if not click.confirm(question, default=False, err=True):
            remove_original = False
    store = Store(settings)
    result = archive_source(
        store, settings, remove_original=remove_original, runner=make_runner(settings.workers)
    )
    if as_json:
        emit_json(result.to_json())
    render_archive(console, result.to_json())
    sys.exit(EXIT_OK)


@cli.command("review")
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
    from khpl_migrate import web  # the web stack loads only for this command

    settings, console, as_json, quiet = _setup(kwargs)
    sock = web.bind(port)  # first: a taken port fails before the checks take time
    store = Store(settings)
    with (
        console.status("Checking every record, image, backup and run…")
        if not quiet and sys.stderr.isatty()
        else contextlib.nullcontext()
    ):
        checks = run_checks(store, settings, runner=make_runner(settings.workers))
    lines = checklist(checks)
    render_checks_summary(console, lines, checks.seconds)
    state = web.Review(store, settings, checks)

    def ready(url: str) -> None:
        console.print(
            f"🌐 Review page (only on this machine; Ctrl-C stops it): {url}",
            highlight=False,
            markup=False,
        )
        if as_json:
            emit_json({"url": url, "checklist": [line.to_json() for line in lines]})
        else:
            click.echo(url)

    # uvicorn stops on Ctrl-C or SIGTERM, then raises the signal again: a normal stop.
    with contextlib.suppress(KeyboardInterrupt):
        web.serve(state, sock, open_browser=open_browser, on_ready=ready)
    console.print("Review stopped", highlight=False)
    sys.exit(EXIT_OK)


@cli.command("doctor")
@click.option(
    "--command",
    "command",
    type=click.Choice(list(policy_mod.COMMANDS)),
    default="migrate",
    show_default=True,
    help="the command whose permissions to check",
)
@common_options
def doctor_cmd(command: str, **kwargs: Any) -> None:
    """Check the setup before a real run: caller, bucket, table, permissions.

    Read-only. Says who AWS thinks you are, whether the bucket and table exist,
    versioning, public access, encryption, point-in-time recovery, and whether
    the permissions the command needs are granted. Exit 1 on any failure.
    """
    settings, console, as_json, _ = _setup(kwargs)
    findings = doctor(Store(settings), settings, command)
    if as_json:
        emit_json({"findings": [f.to_json() for f in findings]})
    render_doctor(console, [f.to_json() for f in findings])
    sys.exit(EXIT_PROBLEMS if any(f.level == "fail" for f in findings) else EXIT_OK)


@cli.command("iam-policy")
@click.option(
    "--command",
    "commands",
    type=click.Choice([*policy_mod.COMMANDS, "all"]),
    multiple=True,
    default=["all"],
    show_default=True,
    help="the commands the policy is for (repeat the option for several)",
)
@common_options
def iam_policy_cmd(commands: tuple[str, ...], **kwargs: Any) -> None:
    """Print the least-privilege IAM policy for the configured bucket and table.

    Exactly the actions the chosen commands call, scoped to the table's ARN and
    to the key prefixes the tool uses. Attach it to the operator's user or role.
    """
    settings, console, _, _ = _setup(kwargs)
    chosen = list(policy_mod.COMMANDS) if "all" in commands else list(commands)
    bucket = settings.bucket or "YOUR-BUCKET-NAME"
    if not settings.bucket:
        console.print(
            "⚠️ No bucket set (--bucket): the policy says YOUR-BUCKET-NAME", highlight=False
        )
    document = policy_mod.policy(chosen, bucket, settings.table, settings.source_key)
    click.echo(json.dumps(document, indent=2))


@cli.group("local")
def local_group() -> None:
    """Start, stop or check the local stack (DynamoDB Local + moto S3) on loopback."""


def _state_dir(state_dir: Path | None) -> Path:
    return settings_mod.load(state_dir=state_dir).state_dir


_state_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="local state folder [default: .khpl-migrate]",
)


@local_group.command("up")
@_state_option
def local_up(state_dir: Path | None) -> None:
    """Start the stack and print the environment to use it (eval "$(khpl-migrate local up)")."""
    console = human_console()
    stack, notes = local.start(_state_dir(state_dir))
    for note in notes:
        console.print(f"ℹ️ {note}", highlight=False, markup=False)
    console.print(
        f"✅ DynamoDB ({stack.dynamodb.kind}) on {stack.dynamodb.url}, S3 (moto) on {stack.s3.url}",
        highlight=False,
    )
    for name, value in stack.env().items():
        click.echo(f"export {name}={value}")


@local_group.command("down")
@_state_option
def local_down(state_dir: Path | None) -> None:
    """Stop the stack started by `local up` (its data is in memory and goes with it)."""
    stopped = local.stop(_state_dir(state_dir))
    human_console().print(
        "✅ Local stack stopped" if stopped else "The local stack was not running"
    )


@local_group.command("status")
@_state_option
def local_status(state_dir: Path | None) -> None:
    """Say whether the stack is running; exit 1 when it is not."""
    stack = local.status(_state_dir(state_dir))
    if stack is None:
        human_console().print(
            "The local stack is not running: start it with `khpl-migrate local up`"
        )
        sys.exit(EXIT_PROBLEMS)
    human_console().print(
        f"Running: DynamoDB ({stack.dynamodb.kind}) {stack.dynamodb.url}, S3 (moto) {stack.s3.url}",
        highlight=False,
    )
    for name, value in stack.env().items():
        click.echo(f"export {name}={value}")


DEMO_BUCKET = "khpl-demo-registrations"


@cli.command("demo")
@click.option("--records", type=click.IntRange(1, 100_000), default=25, show_default=True)
@click.option(
    "--keep", is_flag=True, help="leave the stack running afterwards and print its environment"
)
@_state_option
def demo_cmd(records: int, keep: bool, state_dir: Path | None) -> None:
    """The guide's whole job on a local stack with sample registrations.

    Starts DynamoDB Local and moto, seeds a bucket with sample registrations
    (each with a JPEG photo, a PNG Aadhaar copy and a JPEG payment screenshot),
    then runs verify, create-table, the dry run, migrate --apply and
    verify --deep.
    """
    console = human_console()
    base = _state_dir(state_dir)
    demo_dir = base / "demo"
    local.stop(demo_dir)
    stack, notes = local.start(demo_dir)
    for note in notes:
        console.print(f"ℹ️ {note}", highlight=False, markup=False)
    code = EXIT_PROBLEMS
    try:
        env = {**stack.env(), "REACT_APP_S3_BUCKET_NAME": DEMO_BUCKET}
        settings = settings_mod.load(env=env, state_dir=base)
        store = Store(settings)
        store.create_bucket(DEMO_BUCKET)
        body = sample.source_bytes(sample.registrations(records))
        store.put_object(DEMO_BUCKET, settings.source_key, body, "application/json")
        console.rule("Local stack")
        console.print(
            f"DynamoDB ({stack.dynamodb.kind}) {stack.dynamodb.url} · S3 (moto) {stack.s3.url} · "
            f"s3://{DEMO_BUCKET}/{settings.source_key}: "
            f"{records} registrations, {len(body):,} bytes",
            highlight=False,
        )
        steps: list[tuple[str, Callable[[], int]]] = [
            ("Step 2: Verify current data", lambda: run_verify(settings, console, False)),
            ("Step 3: Create DynamoDB table", lambda: run_create_table(settings, console, False)),
            (
                "Step 4: Run migration (dry run first)",
                lambda: run_migrate(
                    settings, console, as_json=False, quiet=False, apply=False, ask=False
                ),
            ),
            (
                "Step 5: Run actual migration",
                lambda: run_migrate(settings, console, as_json=False, quiet=True, apply=True),
            ),
            (
                "Step 6: Verify migration success (deep)",
                lambda: run_verify(settings, console, False, deep=True),
            ),
        ]
        for title, step in steps:
            console.rule(title)
            code = step()
    finally:
        if keep:
            console.print("The stack keeps running; to use it:", highlight=False)
            for name, value in stack.env().items():
                click.echo(f"export {name}={value}")
            click.echo(f"export REACT_APP_S3_BUCKET_NAME={DEMO_BUCKET}")
        else:
            local.stop(demo_dir)
    sys.exit(code)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as cleanly as Ctrl-C


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="khpl-migrate")
