"""Around the migration: the preflight (`doctor`), the IAM policy, the local stack, the demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from khpl_migrate import demo, local
from khpl_migrate import policy as policy_mod
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
from khpl_migrate.cli.migration import run_create_table, run_migrate, run_verify
from khpl_migrate.console import emit_json, human_console
from khpl_migrate.doctor import doctor
from khpl_migrate.report import render_doctor


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
@STATE_DIR_OPTION
def local_up(**kwargs: Any) -> None:
    """Start the stack and print the environment to use it (eval "$(khpl-migrate local up)")."""
    console = human_console()
    stack, notes = local.start(state_dir(kwargs.get("state_dir")))
    for note in notes:
        console.print(f"ℹ️ {note}", highlight=False, markup=False)
    console.print(
        f"✅ DynamoDB ({stack.dynamodb.kind}) on {stack.dynamodb.url}, S3 (moto) on {stack.s3.url}",
        highlight=False,
    )
    _exports(stack.env())


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
        steps: list[tuple[str, Callable[[], int]]] = [
            ("Step 2: Verify current data", lambda: run_verify(run)),
            ("Step 3: Create DynamoDB table", lambda: run_create_table(run)),
            (
                "Step 4: Run migration (dry run first)",
                lambda: run_migrate(run, apply=False, ask=False),
            ),
            ("Step 5: Run actual migration", lambda: run_migrate(quiet, apply=True)),
            ("Step 6: Verify migration success (deep)", lambda: run_verify(run, deep=True)),
        ]
        try:
            for title, step in steps:
                console.rule(title)
                code = step()
        finally:
            if keep:
                console.print("The stack keeps running; to use it:", highlight=False)
                _exports(running.env())
    sys.exit(code)


COMMANDS = [doctor_cmd, iam_policy_cmd, local_group, demo_cmd]
