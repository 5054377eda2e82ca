"""Before a run: `create-table`, `doctor`, `iam-policy`, the local stack, the demo."""

from khpl_migrate.setup.table import create_table

__all__ = ["create_table"]
