"""`python -m khpl_migrate` runs the same command line as `khpl-migrate`."""

from khpl_migrate.cli import main

main()
