"""`khpl-migrate migrate`: the dry run (a plan, reading only), the apply pass, and a run as
N shards. `build_plan` then `apply_plan` is the guide's migration."""

from khpl_migrate.migrate.apply import RunResult, apply_plan
from khpl_migrate.migrate.plan import Action, Plan, PlanEntry, build_plan

__all__ = ["Action", "Plan", "PlanEntry", "RunResult", "apply_plan", "build_plan"]
