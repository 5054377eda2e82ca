"""khpl-migrate: move KHPL registrations from one S3 JSON file to DynamoDB, losing nothing.

The package is a library with a thin command line (`cli/`); docs/design.md maps
its packages. Each capability's package names its public API: start with
`khpl_migrate.migrate.build_plan` and `apply_plan`; `khpl_migrate.verify.verify`
and `deep_verify` check the result; `khpl_migrate.sync` and
`khpl_migrate.rollback` do the rest. `khpl_migrate.aws.Store` is the one door
to AWS, `khpl_migrate.settings.load` the configuration.
"""

__version__ = "0.1.0"
