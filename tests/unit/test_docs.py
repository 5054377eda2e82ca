"""Docs that cannot rot: the README and docs/design.md are held to the code."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli_commands

ROOT = Path(__file__).parents[2]


def test_readme_names_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in cli_commands()[1:]:
        assert f"khpl-migrate {' '.join(command)}" in readme, command
