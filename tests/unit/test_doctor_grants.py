"""doctor asks IAM about the real resources: the table's ARN in the region in force and
the caller's account, so a policy scoped to them (what `iam-policy` advises) passes."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest

from khpl_migrate import settings as settings_mod
from khpl_migrate.setup import policy
from khpl_migrate.setup.doctor import simulated_grants

SCOPED_TABLE = "arn:aws:dynamodb:ap-south-1:123456789012:table/KHPL-Registrations"


def scoped_policy(command: str, table_arn: str) -> dict[str, Any]:
    """iam-policy's document for `command`, its table narrowed to one region and account."""
    document = policy.policy([command], "khpl-bucket", "KHPL-Registrations", "registrations.json")
    for statement in document["Statement"]:
        statement["Resource"] = statement["Resource"].replace(
            "arn:aws:dynamodb:*:*:table/KHPL-Registrations", table_arn
        )
    return document


def allows(document: dict[str, Any], action: str, arn: str) -> bool:
    return any(
        action in s["Action"] and fnmatchcase(arn, s["Resource"]) for s in document["Statement"]
    )


@pytest.mark.parametrize("command", policy.COMMANDS)
def test_a_policy_scoped_to_the_real_table_passes_doctors_simulation(command: str) -> None:
    settings = settings_mod.load(env={"REACT_APP_S3_BUCKET_NAME": "khpl-bucket"})
    asked = simulated_grants(command, settings, "ap-south-1", "123456789012")
    scoped = scoped_policy(command, SCOPED_TABLE)
    assert asked and all(allows(scoped, action, arn) for action, arn in asked), asked
    # The region and the account are really checked: the same policy elsewhere does not pass.
    elsewhere = scoped_policy(command, SCOPED_TABLE.replace("ap-south-1", "eu-west-1"))
    on_table = [(a, arn) for a, arn in asked if arn.startswith("arn:aws:dynamodb")]
    assert all(not allows(elsewhere, action, arn) for action, arn in on_table)
