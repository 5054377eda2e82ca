"""Where output goes: people read stderr through a masking console, programs read stdout.

Human output and progress go to stderr, one JSON object to stdout,
so `khpl-migrate verify --json | jq` works. Everything a person sees passes
`masking.mask_pii` first, log records included.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console

from khpl_migrate.core.masking import mask_pii

LIST_LIMIT = 50  # longer lists end with "... and N more (all of them with --json)"


class MaskingConsole(Console):
    """A rich Console that masks personal numbers in every string it prints."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(mask_pii(o) if isinstance(o, str) else o for o in objects), **kwargs)


class MaskingFilter(logging.Filter):
    """The same masking for log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_pii(record.getMessage()), None
        return True


def human_console(quiet: bool = False) -> Console:
    return MaskingConsole(stderr=True, highlight=False, soft_wrap=True, quiet=quiet)


def emit_json(data: Mapping[str, Any]) -> None:
    """One JSON object on stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=_default) + "\n")
    sys.stdout.flush()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def size(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def line(console: Console, text: str = "") -> None:
    """One line as written: no rich markup, no highlighting."""
    console.print(text, markup=False, highlight=False)


def capped(console: Console, lines: Sequence[str]) -> None:
    """At most LIST_LIMIT lines, then how many more there are (all of them with --json)."""
    for text in lines[:LIST_LIMIT]:
        line(console, f"   {text}")
    more(console, len(lines))


def more(console: Console, count: int) -> None:
    if count > LIST_LIMIT:
        line(console, f"   ... and {count - LIST_LIMIT} more (all of them with --json)")


def render_error(console: Console, message: str, fix: str) -> None:
    from rich.markup import escape

    console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)
    if fix:
        console.print(f"[bold]Fix:[/] {escape(fix)}", highlight=False)
