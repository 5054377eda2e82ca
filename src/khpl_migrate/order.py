"""The order of commands: what the operator runs, and what comes next. Pure.

One definition, so that the README's "The order of commands", the usual order
in `khpl-migrate --help` and every "💡 Next:" hint cannot drift apart
(tests/unit/test_order.py holds the README and the help to it; the command
tests hold each hint).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    command: str  # as typed after `khpl-migrate`
    why: str  # the README's comment on the step


ORDER: tuple[Step, ...] = (
    Step("doctor", "first: configuration, credentials, permissions, reading only"),
    Step("verify", "what is in S3 and in DynamoDB now"),
    Step("create-table", "once; safe to repeat"),
    Step("migrate", "dry run: the plan, nothing written"),
    Step("migrate --apply", "the real run"),
    Step("verify --deep", 'expect "Deep check passed"'),
    Step("sync", 'while the app still writes registrations.json (see "The cut-over")'),
    Step("review", "the guide's checklist, ticked by real checks, in a browser"),
    Step("freeze-source", "once the app runs on DynamoDB only; then a last sync"),
    Step("archive-source", "the guide's last step"),
)


def next_after(command: str) -> str:
    """The command that follows `command` in the order, as the operator types it."""
    commands = [step.command for step in ORDER]
    index = commands.index(command)  # a ValueError is a bug: every caller names a step
    if index + 1 == len(commands):
        raise ValueError(f"{command} is the last step")
    return f"khpl-migrate {commands[index + 1]}"


def usual_order() -> str:
    """The order as --help gives it: 'doctor, verify, ..., archive-source'."""
    return ", ".join(step.command for step in ORDER)


def hint(command: str, note: str = "") -> str:
    """The "💡 Next:" line a command prints when it ends well: the step after it."""
    return f"💡 Next: {next_after(command)}{f' ({note})' if note else ''}"
