"""docs/design.md is the design as built: its module table is held to the code's imports."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "src" / "khpl_migrate"
DESIGN = ROOT / "docs" / "design.md"
# The capabilities: one package each, never importing each other but for this one
# exception (docs/design.md says why).
CAPABILITIES = ("migrate", "sync", "rollback", "verify", "cutover", "setup")
ALLOWED_BETWEEN = {("cutover", "verify")}
WEB_STACK = ("starlette", "uvicorn", "jinja2")
WEB_FILES = {"review/app.py", "review/guard.py", "review/server.py"}


def unit_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


@functools.cache
def sources() -> tuple[tuple[Path, ast.Module], ...]:
    paths = sorted(PACKAGE.rglob("*.py"))
    return tuple((path, ast.parse(path.read_text(encoding="utf-8"))) for path in paths)


@functools.cache
def units() -> frozenset[str]:
    found = {unit_of(path) for path, _ in sources()}
    return frozenset(found - {"__init__", "__main__"})


def imported(tree: ast.Module) -> Iterator[str]:
    """Every module name the file imports, dotted, at any depth (lazy imports count)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def project_imports(tree: ast.Module, own: str) -> set[str]:
    """The project's units a file imports (`khpl_migrate.X...` or `from khpl_migrate import X`)."""
    out = set()
    for name in imported(tree):
        parts = name.split(".")
        if parts[0] == "khpl_migrate" and len(parts) > 1 and parts[1] in units() | {"cli"}:
            out.add(parts[1])
    return out - {own}


def design_table() -> dict[str, set[str]]:
    """unit -> the project modules its row says it may import."""
    rows = {}
    for line in DESIGN.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `([\w]+)(?:/|\.py)` \|.*\| *([\w, ]*?) *\|$", line)
        if match:
            allowed = {name.strip() for name in match.group(2).split(",") if name.strip()}
            rows[match.group(1)] = allowed
    return rows


def actual() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path, tree in sources():
        unit = unit_of(path)
        graph.setdefault(unit, set()).update(project_imports(tree, unit))
    return graph


def test_every_module_is_in_the_design_table() -> None:
    table = design_table()
    assert units() - set(table) == set(), "add these modules to docs/design.md"
    assert set(table) - units() == set(), "docs/design.md lists modules that do not exist"


@pytest.mark.parametrize("unit", sorted(units()))
def test_each_module_imports_exactly_what_the_design_says(unit: str) -> None:
    graph, table = actual(), design_table()
    assert graph.get(unit, set()) == table[unit], (
        f"{unit}: the code imports {sorted(graph.get(unit, set()))}, "
        f"docs/design.md says {sorted(table[unit])}"
    )


def test_the_layers_hold() -> None:
    """The pure core, then aws, then the kernel, then capabilities that never import
    each other: whatever the table says, this is the architecture."""
    graph = actual()
    assert graph.get("core", set()) == set()
    assert graph.get("aws", set()) <= {"core", "settings"}
    assert graph.get("kernel", set()) <= {"aws", "core", "settings"}
    for unit in CAPABILITIES:
        crossing = {(unit, dep) for dep in graph.get(unit, set()) & set(CAPABILITIES)}
        assert crossing <= ALLOWED_BETWEEN, crossing


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
RENDERERS = "report"  # the guide's report, line for line: long by nature


def test_no_module_is_over_400_lines_and_no_function_over_60_outside_the_renderers() -> None:
    long_modules, long_functions = [], []
    for path, tree in sources():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(PACKAGE)}: {lines}")
        if unit_of(path) == RENDERERS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(PACKAGE)}:{node.name}: {length}")
    assert long_modules == [] and long_functions == [], (long_modules, long_functions)


def test_only_aws_talks_to_aws() -> None:
    for path, tree in sources():
        talks = {n.split(".")[0] for n in imported(tree)} & {"boto3", "botocore"}
        if unit_of(path) != "aws":
            assert not talks, f"{path.relative_to(PACKAGE)} imports {talks}"


def test_only_the_review_server_loads_the_web_stack() -> None:
    for path, tree in sources():
        web = {n.split(".")[0] for n in imported(tree)} & set(WEB_STACK)
        if str(path.relative_to(PACKAGE)) not in WEB_FILES:
            assert not web, f"{path.relative_to(PACKAGE)} imports {web}"


def test_nothing_imports_the_command_line_and_there_is_no_cycle() -> None:
    graph = actual()
    assert [unit for unit, deps in graph.items() if "cli" in deps] == ["__main__"]
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(unit: str, trail: tuple[str, ...]) -> None:
        assert unit not in visiting, f"import cycle: {' -> '.join((*trail, unit))}"
        if unit in done:
            return
        visiting.add(unit)
        for dep in sorted(graph.get(unit, set())):
            visit(dep, (*trail, unit))
        visiting.discard(unit)
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, ())
