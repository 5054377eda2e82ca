"""One order of commands: the README's section and --help are held to `order.ORDER`."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from khpl_migrate.cli import cli
from khpl_migrate.order import ORDER, hint, next_after

ROOT = Path(__file__).parents[2]


def readme_order() -> list[str]:
    """The commands of the README's "### The order of commands" block, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### The order of commands\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_gives_the_order_of_order_py() -> None:
    assert readme_order() == [f"khpl-migrate {step.command}" for step in ORDER]


def test_help_gives_the_same_order() -> None:
    shown = CliRunner().invoke(cli, ["--help"]).output
    flat = " ".join(shown.split())  # click wraps the help text at any space
    found = re.search(r"The usual order: (.*?) \(", flat)
    assert found is not None, shown
    assert found.group(1).split(", ") == [step.command for step in ORDER]


def test_doctor_comes_first_and_the_real_run_is_followed_by_the_deep_check() -> None:
    assert ORDER[0].command == "doctor"
    assert next_after("doctor") == "khpl-migrate verify"
    assert next_after("migrate --apply") == "khpl-migrate verify --deep"
    assert hint("create-table", "a dry run") == "💡 Next: khpl-migrate migrate (a dry run)"
