"""khpl-migrate: move KHPL registrations from one S3 JSON file to DynamoDB, losing nothing.

The package is a library with a thin command line (`cli.py`). Start with
`plan.build_plan` and `apply.apply_plan`; `verify.verify` checks the result.
"""

__version__ = "0.1.0"
