"""The human renderings of the library's results, on stderr (JSON is each result's `to_json`).

Every renderer takes the library's typed result, so a renamed field is a type
error, not a blank in the report. `migration.py` renders the guide's flow (its
verify report line for line, because the operator compares it with the guide),
`runs.py` what the runs left (runs, rollbacks, backups), `cutover.py` what comes
after, `environment.py` what comes around it.
"""

from khpl_migrate.report.cutover import (
    render_archive,
    render_checks_summary,
    render_freeze,
    render_sync,
)
from khpl_migrate.report.environment import render_doctor, render_rehearsal, render_table_result
from khpl_migrate.report.migration import (
    render_deep,
    render_plan,
    render_plan_line,
    render_result,
    render_verify,
)
from khpl_migrate.report.runs import render_backups, render_restore, render_rollback, render_runs

__all__ = [
    "render_archive",
    "render_backups",
    "render_checks_summary",
    "render_deep",
    "render_doctor",
    "render_freeze",
    "render_plan",
    "render_plan_line",
    "render_rehearsal",
    "render_restore",
    "render_result",
    "render_rollback",
    "render_runs",
    "render_sync",
    "render_table_result",
    "render_verify",
]
