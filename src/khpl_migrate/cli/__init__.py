"""The command line: parse flags, call the library, render, map errors to exit codes.

`common.py` holds what every command shares (options, set-up, exit codes);
the commands are grouped by when the operator runs them: `migration.py` (the
guide's flow), `cutover.py` (after the migration), `environment.py` (around
it: doctor, IAM policy, local stack, demo).
"""

from __future__ import annotations

import platform
import signal
from typing import Any

import click

from khpl_migrate import __version__
from khpl_migrate.aws import sdk_versions
from khpl_migrate.cli import cutover, environment, migration
from khpl_migrate.cli.common import KhplGroup
from khpl_migrate.kernel.source import PARSER
from khpl_migrate.order import usual_order


def versions() -> str:
    """What a bug report needs: this version, and those of the parts that do the work."""
    return f"%(prog)s %(version)s ({sdk_versions()}, {PARSER}, Python {platform.python_version()})"


# The usual order comes from `order.py`, as every "Next:" hint does.
HELP = f"""Move KHPL registrations from S3 registrations.json to DynamoDB, losing nothing.

The usual order: {usual_order()} (migrate alone is the dry run); rollback
undoes one run. Configuration comes from flags, the environment and .env (the
guide's REACT_APP_* names or standard AWS settings). Try it all locally with
`khpl-migrate demo`.
"""


@click.group(cls=KhplGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="khpl-migrate", message=versions())
def cli() -> None:
    pass


for command in (*migration.COMMANDS, *cutover.COMMANDS, *environment.COMMANDS):
    cli.add_command(command)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as cleanly as Ctrl-C


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="khpl-migrate")
