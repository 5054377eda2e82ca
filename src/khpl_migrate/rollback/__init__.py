"""`khpl-migrate rollback`: undo one run from its manifest, touching nothing that is not
exactly what the run left. `plan_rollback` reads only; `show_rollback` or `apply_rollback`."""

from khpl_migrate.rollback.apply import RollbackResult, apply_rollback, show_rollback
from khpl_migrate.rollback.plan import RollbackPlan, plan_rollback

__all__ = ["RollbackPlan", "RollbackResult", "apply_rollback", "plan_rollback", "show_rollback"]
