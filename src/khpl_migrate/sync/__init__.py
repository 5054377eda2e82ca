"""`khpl-migrate sync`: the source's edits carried over to the table, field by field, three
ways (baseline, source, item). `plan_sync` reads only; `apply_sync` carries the plan out."""

from khpl_migrate.sync.apply import apply_sync, show_sync
from khpl_migrate.sync.model import SyncOptions, SyncPlan, SyncResult
from khpl_migrate.sync.plan import plan_sync

__all__ = ["SyncOptions", "SyncPlan", "SyncResult", "apply_sync", "plan_sync", "show_sync"]
