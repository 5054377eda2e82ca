"""The generated part of the command pages: each command's own `--help`, as click renders it.

The cog blocks in docs/commands/*.md call `help_block`; `make docs` rewrites them
(`cog -r`), and tests/unit/test_docs.py fails when one is stale (`cog --check`), as
sqlite-utils does for its CLI reference. The help is rendered in-process through
click's CliRunner at a fixed width, so the pages do not depend on the terminal that
regenerates them. This is not part of the package: nothing in src/ imports it.
"""

from __future__ import annotations

from click.testing import CliRunner

from khpl_migrate.cli import cli

PROG = "khpl-migrate"
WIDTH = 80  # click's own default width for help text; the pages read the same everywhere


def help_text(command: str) -> str:
    """What `khpl-migrate COMMAND --help` prints ("" for the top level)."""
    args = [*command.split(), "--help"]
    result = CliRunner().invoke(
        cli, args, prog_name=PROG, terminal_width=WIDTH, max_content_width=WIDTH
    )
    if result.exit_code != 0:
        raise RuntimeError(f"{PROG} {' '.join(args)} failed: {result.output}")
    return result.output


def help_block(command: str) -> str:
    """A fenced block with the command line and its help, for a cog block to print."""
    shown = " ".join([PROG, *command.split(), "--help"])
    body = "\n".join(line.rstrip() for line in help_text(command).splitlines())
    return f"```\n$ {shown}\n{body}\n```\n"
