"""The run's clock: its id and migrationDate, and every timestamp the tool writes.

The guide writes `migrationDate` as ISO 8601 UTC with milliseconds; the run id
starts with the same instant (sortable) and ends with a random tail, so two
runs started in the same millisecond (two shards' prepares, say) never share one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from khpl_migrate.core.transform import RunStamp


def now_iso() -> str:
    """ISO 8601 UTC with milliseconds, as the guide writes migrationDate."""
    return iso_ms(datetime.now(UTC))


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_stamp(
    started: datetime | None = None, *, mask_aadhaar: bool = False
) -> tuple[RunStamp, datetime]:
    """A run id and migrationDate: the run's start, ISO 8601 UTC with milliseconds."""
    started = started or datetime.now(UTC)
    run_id = f"{started:%Y%m%dT%H%M%S}{started.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"
    stamp = RunStamp(run_id=run_id, migration_date=iso_ms(started), mask_aadhaar=mask_aadhaar)
    return stamp, started
