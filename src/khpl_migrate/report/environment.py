"""Around the migration, rendered for a person: create-table and doctor."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from khpl_migrate.console import line
from khpl_migrate.doctor import Finding
from khpl_migrate.order import hint
from khpl_migrate.table import TableResult


def render_table_result(console: Console, result: TableResult) -> None:
    verb = "Created" if result.created else "Table exists:"
    line(console, f"✅ {verb} {result.table} ({result.status})")
    line(console, "   • Key: id (string), billing: on demand")
    line(console, f"   • Deletion protection: {_onoff(result.deletion_protection)}")
    line(console, f"   • Point-in-time recovery: {_onoff(result.point_in_time_recovery)}")
    if result.note:
        line(console, f"   ℹ️ {result.note}")
    line(console, hint("create-table", "a dry run: nothing is written"))


def _onoff(value: bool | None) -> str:
    return {True: "on", False: "off", None: "not available here"}[value]


def render_doctor(console: Console, findings: Sequence[Finding]) -> None:
    marks = {"ok": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌"}
    line(console, "🩺 khpl-migrate doctor")
    for finding in findings:
        line(console, f"{marks[finding.level]} {finding.topic}: {finding.message}")
        if finding.fix and finding.level != "ok":
            line(console, f"   Fix: {finding.fix}")
    fails = sum(1 for f in findings if f.level == "fail")
    warns = sum(1 for f in findings if f.level == "warn")
    line(console, f"{fails} failing, {warns} warnings")
    if not fails:
        line(console, hint("doctor"))
