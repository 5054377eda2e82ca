"""Around the migration: the preflight (`doctor`), the IAM policy, the local stack, the demo,
and the rehearsal on a copy of the operator's own source."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    STATE_DIR_OPTION,
    Invocation,
    common_options,
    setup,
    state_dir,
)
from khpl_migrate.cli.cutover import serve_review
from khpl_migrate.cli.migration import run_create_table, run_migrate, run_verify
from khpl_migrate.console import emit_json, human_console, size
from khpl_migrate.core import errors
from khpl_migrate.rehearse import run as rehearse_mod
from khpl_migrate.rehearse.estimate import DEFAULT_LINK, Link
from khpl_migrate.rehearse.run import Rehearsal, Step
from khpl_migrate.report import (
    render_deep,
    render_doctor,
    render_plan,
    render_rehearsal,
    render_result,
    render_table_result,
    render_verify,
)
from khpl_migrate.report.environment import STEP_TITLES
from khpl_migrate.setup import demo, local
from khpl_migrate.setup import policy as policy_mod
from khpl_migrate.setup.doctor import doctor


@click.command("doctor")
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
    run = setup(kwargs)
    findings = doctor(Store(run.settings), run.settings, command)
    if run.as_json:
        emit_json({"findings": [f.to_json() for f in findings]})
    render_doctor(run.console, findings)
    sys.exit(EXIT_PROBLEMS if any(f.level == "fail" for f in findings) else EXIT_OK)


@click.command("iam-policy")
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
    settings = setup(kwargs).settings
    chosen = list(policy_mod.COMMANDS) if "all" in commands else list(commands)
    if not settings.bucket:
        human_console().print(
            "⚠️ No bucket set (--bucket): the policy says YOUR-BUCKET-NAME", highlight=False
        )
    bucket = settings.bucket or "YOUR-BUCKET-NAME"
    document = policy_mod.policy(chosen, bucket, settings.table, settings.source_key)
    click.echo(json.dumps(document, indent=2))


@click.group("local")
def local_group() -> None:
    """Start, stop or check the local stack (DynamoDB Local + moto S3) on loopback."""


def _exports(env: dict[str, str]) -> None:
    """The environment on stdout, so `eval "$(khpl-migrate local up)"` sets up a shell."""
    for name, value in env.items():
        click.echo(f"export {name}={value}")


@local_group.command("up")
@click.option(
    "--source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="load FILE into the stack as registrations.json, in the bucket REACT_APP_S3_BUCKET_NAME "
    f"names (environment or .env) or {rehearse_mod.LOCAL_BUCKET}",
)
@STATE_DIR_OPTION
def local_up(source: Path | None, **kwargs: Any) -> None:
    """Start the stack and print the environment to use it (eval "$(khpl-migrate local up)").

    With --source FILE, the bucket is created and FILE loaded as registrations.json,
    ready for the guide's steps (verify, create-table, migrate...).
    """
    console = human_console()
    stack, notes = local.start(state_dir(kwargs.get("state_dir")))
    for note in notes:
        console.print(f"ℹ️ {note}", highlight=False, markup=False)
    console.print(
        f"✅ DynamoDB ({stack.dynamodb.kind}) on {stack.dynamodb.url}, S3 (moto) on {stack.s3.url}",
        highlight=False,
    )
    env = stack.env()
    if source is not None:
        bucket = settings_mod.load().bucket or rehearse_mod.LOCAL_BUCKET
        loaded = rehearse_mod.load_file(stack, bucket, source)
        console.print(
            f"✅ {source} loaded as s3://{bucket}/{settings_mod.DEFAULT_SOURCE_KEY} "
            f"({size(loaded)})",
            highlight=False,
            markup=False,
        )
        env = {**env, "REACT_APP_S3_BUCKET_NAME": bucket}
    _exports(env)


@local_group.command("down")
@STATE_DIR_OPTION
def local_down(**kwargs: Any) -> None:
    """Stop the stack started by `local up` (its data is in memory and goes with it)."""
    stopped = local.stop(state_dir(kwargs.get("state_dir")))
    human_console().print(
        "✅ Local stack stopped" if stopped else "The local stack was not running"
    )


@local_group.command("status")
@STATE_DIR_OPTION
def local_status(**kwargs: Any) -> None:
    """Say whether the stack is running; exit 1 when it is not."""
    stack = local.status(state_dir(kwargs.get("state_dir")))
    if stack is None:
        human_console().print(
            "The local stack is not running: start it with `khpl-migrate local up`"
        )
        sys.exit(EXIT_PROBLEMS)
    human_console().print(
        f"Running: DynamoDB ({stack.dynamodb.kind}) {stack.dynamodb.url}, S3 (moto) {stack.s3.url}",
        highlight=False,
    )
    _exports(stack.env())


@click.command("demo")
@click.option("--records", type=click.IntRange(1, 100_000), default=25, show_default=True)
@click.option(
    "--keep", is_flag=True, help="leave the stack running afterwards and print its environment"
)
@STATE_DIR_OPTION
def demo_cmd(records: int, keep: bool, **kwargs: Any) -> None:
    """The guide's whole job on a local stack with sample registrations.

    Starts DynamoDB Local and moto, seeds a bucket with sample registrations
    (each with a JPEG photo, a PNG Aadhaar copy and a JPEG payment screenshot),
    then runs verify, create-table, the dry run, migrate --apply and
    verify --deep.
    """
    console = human_console()
    code = EXIT_PROBLEMS
    with demo.running(state_dir(kwargs.get("state_dir")), records, keep=keep) as running:
        for note in running.notes:
            console.print(f"ℹ️ {note}", highlight=False, markup=False)
        stack, settings = running.stack, running.settings
        console.rule("Local stack")
        console.print(
            f"DynamoDB ({stack.dynamodb.kind}) {stack.dynamodb.url} · S3 (moto) {stack.s3.url} · "
            f"s3://{demo.DEMO_BUCKET}/{settings.source_key}: "
            f"{records} registrations, {running.source_bytes:,} bytes",
            highlight=False,
        )
        run = Invocation(settings, console, as_json=False, quiet=False)
        quiet = Invocation(settings, console, as_json=False, quiet=True)
        steps: list[tuple[Step, Callable[[], int]]] = [
            (Step.VERIFY, lambda: run_verify(run)),
            (Step.CREATE_TABLE, lambda: run_create_table(run)),
            (Step.PLAN, lambda: run_migrate(run, apply=False, ask=False)),
            (Step.APPLY, lambda: run_migrate(quiet, apply=True)),
            (Step.DEEP, lambda: run_verify(run, deep=True)),
        ]
        try:
            for which, step in steps:
                console.rule(STEP_TITLES[which])
                code = step()
        finally:
            if keep:
                console.print("The stack keeps running; to use it:", highlight=False)
                _exports(running.env())
    sys.exit(code)


def _link(ctx: click.Context, param: click.Parameter, value: str | None) -> Link:
    if value is None:
        return DEFAULT_LINK
    try:
        return Link.parse(value)
    except errors.ConfigError as exc:
        raise click.BadParameter(f"{exc.message}; {exc.fix}") from None


class _Shown:
    """Each step of the rehearsal shown as it runs, with the renderers of its command."""

    def __init__(self, run: Invocation) -> None:
        self.run = run

    def begin(self, step: Step) -> None:
        self.run.console.rule(STEP_TITLES[step])

    def end(self, step: Step, done: Rehearsal) -> None:
        console = self.run.console
        bucket = rehearse_mod.REHEARSAL_BUCKET
        if step is Step.VERIFY and done.before:
            render_verify(console, done.before)
        elif step is Step.CREATE_TABLE and done.table:
            render_table_result(console, done.table)
        elif step is Step.PLAN and done.plan and done.dry:
            render_plan(console, done.plan.entries, per_record=not self.run.quiet)
            render_result(console, done.dry, bucket)
        elif step is Step.APPLY and done.run:
            render_result(console, done.run, bucket)
        elif step is Step.DEEP and done.after and done.deep:
            render_verify(console, done.after)
            render_deep(console, done.deep)


@click.command("rehearse")
@click.argument("source", required=False)
@click.option(
    "--link",
    metavar="DOWN/UP",
    callback=_link,
    help="your connection to AWS in megabits a second, for the estimate "
    f"[default: {DEFAULT_LINK.down_mbps:g}/{DEFAULT_LINK.up_mbps:g}, "
    "a guess]",
)
@click.option(
    "--keep", is_flag=True, help="leave the rehearsal's stack running and print its environment"
)
@click.option(
    "--review", is_flag=True, help="then serve the review page on the result until Ctrl-C"
)
@common_options
def rehearse_cmd(source: str | None, link: Link, keep: bool, review: bool, **kwargs: Any) -> None:
    """A dress rehearsal on a copy of your own data, before anything touches AWS.

    SOURCE is a copy of registrations.json (a file) or s3://BUCKET/KEY, read from
    AWS with exactly one GetObject and nothing else: read-only [default: the
    configured bucket's registrations.json]. The copy goes into a fresh local
    stack of the rehearsal's own (DynamoDB Local and moto on loopback ports) and
    the guide's steps run on it: verify, create-table, the dry run, migrate
    --apply, verify --deep. The report lists the records that will fail and why,
    the images, the largest items, the time here, and the real run's time (at
    --link) and DynamoDB write cost, estimated. The stack stops at the end unless
    --keep. Needs the [local] extra. Exit 1 when a record fails or a check does.
    """
    run = setup(kwargs)
    settings, console = run.settings, run.console
    where = source or f"s3://{settings.require_bucket()}/{settings.source_key}"
    if where.startswith("s3://"):
        console.print(f"Reading {where} from AWS: one GetObject, nothing written", highlight=False)
    with rehearse_mod.staged(where, settings, settings.state_dir, keep=keep) as stage:
        for note in stage.notes:
            console.print(f"ℹ️ {note}", highlight=False, markup=False)
        stack = stage.stack
        console.rule("Rehearsal stack (local: nothing here is AWS)")
        console.print(
            f"DynamoDB ({stack.dynamodb.kind}) {stack.dynamodb.url} · S3 (moto) {stack.s3.url} · "
            f"s3://{rehearse_mod.REHEARSAL_BUCKET}/{stage.settings.source_key}: "
            f"a copy of {stage.source.origin}, {len(stage.source.body):,} bytes",
            highlight=False,
            markup=False,
        )
        shown = Invocation(stage.settings, console, as_json=False, quiet=run.quiet)
        try:
            done = rehearse_mod.rehearse(
                stage,
                link=link,
                region=settings.region,
                watch=_Shown(shown),
                progress=shown.progress,
            )
            if run.as_json:
                emit_json(done.to_json())
            render_rehearsal(console, done)
            if review:
                store = Store(stage.settings, traced=False)
                serve_review(shown, 0, False, store=store, url_on_stdout=not run.as_json)
        finally:
            if keep:
                console.print("The rehearsal's stack keeps running; to use it:", highlight=False)
                if run.as_json:  # stdout holds the JSON object alone
                    for name, value in stage.env().items():
                        console.print(f"export {name}={value}", highlight=False, markup=False)
                else:
                    _exports(stage.env())
                console.print(
                    f"Stop it with: khpl-migrate local down --state-dir {stage.settings.state_dir}",
                    highlight=False,
                    markup=False,
                )
    sys.exit(EXIT_OK if done.ok else EXIT_PROBLEMS)


COMMANDS = [doctor_cmd, iam_policy_cmd, local_group, demo_cmd, rehearse_cmd]
