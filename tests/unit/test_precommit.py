"""The pre-commit configuration runs what `make lint` runs, and pre-commit accepts it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / ".pre-commit-config.yaml"


def lint_target() -> tuple[list[str], list[str]]:
    """`make lint`'s prerequisites and its commands, `$(BIN)/` written as `.venv/bin/`."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^lint:(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert found, "the Makefile has no lint target"
    prerequisites = found.group(1).split()
    commands = [
        line.strip().replace("$(BIN)/", ".venv/bin/") for line in found.group(2).splitlines()
    ]
    return prerequisites, commands


def hooks() -> list[dict[str, object]]:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "no hook from elsewhere"
    return list(config["repos"][0]["hooks"])


def test_the_hooks_are_the_lint_targets_checks() -> None:
    prerequisites, commands = lint_target()
    expected = [c for c in commands if "pre-commit validate-config" not in c]
    expected += [f"make --no-print-directory {p}" for p in prerequisites if p != "setup"]
    assert sorted(str(hook["entry"]) for hook in hooks()) == sorted(expected)


def test_the_hooks_run_the_projects_own_tools_on_the_whole_tree() -> None:
    for hook in hooks():
        assert hook["language"] == "system", hook["id"]
        assert hook["pass_filenames"] is False, hook["id"]  # as make lint: the whole tree


def test_pre_commit_accepts_the_configuration() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
