"""Docs that cannot rot: one page per command, generated from its own help, never stale.

Each command has a page in docs/commands/ (a group's subcommands share the group's):
its options are generated from click's own `--help` by cog blocks (docs/cogs.py;
`make docs` regenerates them), the rest is written by hand. docs/design.md is held to
the code by tests/unit/test_design.py.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from cogapp import Cog

from tests.helpers import cli_commands

ROOT = Path(__file__).parents[2]
COMMANDS = ROOT / "docs" / "commands"
INDEX = COMMANDS / "README.md"  # the list of commands, with the top level's help
GENERATED = re.compile(r"<!-- \[\[\[cog\n(.*?)\]\]\] -->\n(.*?)<!-- \[\[\[end\]\]\] -->", re.S)


def page_of(command: list[str]) -> Path:
    """docs/commands/<command>.md; a subcommand is on its group's page."""
    return COMMANDS / f"{command[0]}.md" if command else INDEX


def generated_for(page: Path) -> list[str]:
    """The commands whose help the page's cog blocks render, in order."""
    return re.findall(r'help_block\("([^"]*)"\)', page.read_text(encoding="utf-8"))


def hand_written(page: Path) -> str:
    """The page without its generated parts."""
    return GENERATED.sub("", page.read_text(encoding="utf-8"))


def test_every_command_has_its_page_with_its_help_generated() -> None:
    for command in cli_commands():
        page = page_of(command)
        assert page.is_file(), f"{' '.join(command)} has no page: add {page.relative_to(ROOT)}"
        assert " ".join(command) in generated_for(page), (
            f"{page.relative_to(ROOT)} has no cog block for {' '.join(command)!r}'s --help"
        )


def test_every_command_is_written_about_on_its_page_not_only_generated() -> None:
    for command in cli_commands()[1:]:
        # A heading or a transcript names it ("khpl-migrate local up", or a group's
        # subcommand as `local down` beside it); the generated help does not count.
        text = hand_written(page_of(command))
        assert f"khpl-migrate {' '.join(command)}" in text or (
            len(command) > 1 and f"`{' '.join(command)}`" in text
        ), command


def test_no_page_for_a_command_that_does_not_exist() -> None:
    commands = {" ".join(command) for command in cli_commands()}
    pages = {page.stem for page in COMMANDS.glob("*.md")} - {"README"}
    assert pages == {command[0] for command in cli_commands()[1:]}
    for page in COMMANDS.glob("*.md"):
        assert set(generated_for(page)) <= commands, page


def test_the_list_of_commands_and_the_readme_link_every_page() -> None:
    index = INDEX.read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in COMMANDS.glob("*.md"):
        if page != INDEX:
            assert f"]({page.name})" in index, f"{INDEX.relative_to(ROOT)} misses {page.name}"
            assert f"](docs/commands/{page.name})" in readme, f"the README misses {page.name}"


def test_the_generated_parts_are_up_to_date() -> None:
    """`cog --check`, as `make docs-check` runs it: a command's help changed since its
    page was generated fails here, with the difference; `make docs` regenerates them."""
    cog = Cog()
    out, err = io.StringIO(), io.StringIO()
    cog.set_output(stdout=out, stderr=err)
    pages = [str(page) for page in sorted(COMMANDS.glob("*.md"))]
    status = cog.main(["cog", "--check", "--diff", "-I", str(ROOT / "docs"), *pages])
    said = [
        line for line in (out.getvalue() + err.getvalue()).splitlines() if "Checking" not in line
    ]
    assert status == 0, "stale: run `make docs`\n" + "\n".join(said)
