"""The definitions a sharded run prints for AWS Batch and Kubernetes: valid offline, against
Kubernetes' own Job schema (kubernetes-validate) and CloudFormation's rules (cfn-lint), and
running the same command with the run id and the engine's index in every child."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from cfnlint.api import lint

from khpl_migrate.migrate.launch import K8S_VERSION, Shape, batch, k8s

RUN = "20261130T035453007Z-28e195"
SHAPE = Shape(
    run_id=RUN,
    shards=12,
    image="123456789012.dkr.ecr.ap-south-1.amazonaws.com/khpl-migrate:1.0",
    bucket="khpl-registrations",
    region="ap-south-1",
    workers=8,
    parallelism=4,
)
COMMAND = ["khpl-migrate", "migrate", "--apply", "--run", RUN, "--shard", "auto"]


def test_the_kubernetes_job_is_an_indexed_job_that_validates_strictly() -> None:
    job = json.loads(k8s(SHAPE).manifest)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)  # raises when invalid
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"]) == (12, 4)
    assert spec["backoffLimitPerIndex"] >= 1
    [rule] = spec["podFailurePolicy"]["rules"]  # a wrong setting or a failed record: no retry
    assert rule["action"] == "FailIndex" and rule["onExitCodes"]["values"] == [1, 2]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["image"] == SHAPE.image
    assert container["command"][: len(COMMAND)] == COMMAND
    assert container["command"][container["command"].index("--bucket") + 1] == SHAPE.bucket


def test_a_broken_job_fails_the_same_validation() -> None:
    """The check above can fail: a Job with a misspelt field does."""
    job = json.loads(k8s(SHAPE).manifest)
    job["spec"]["completionsMode"] = job["spec"].pop("completionMode")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_the_batch_template_passes_cfn_lint_and_submits_an_array_of_n() -> None:
    launch = batch(SHAPE)
    assert lint(launch.manifest, regions=["ap-south-1"]) == []
    template = json.loads(launch.manifest)
    definition = template["Resources"]["JobDefinition"]["Properties"]
    assert definition["ContainerProperties"]["Image"] == SHAPE.image
    assert definition["ContainerProperties"]["Command"][: len(COMMAND)] == COMMAND
    assert template["Resources"]["JobQueue"]["Type"] == "AWS::Batch::JobQueue"
    retry = definition["RetryStrategy"]["EvaluateOnExit"]
    assert {"OnExitCode": "2", "Action": "EXIT"} in retry and retry[-1]["Action"] == "RETRY"
    assert "--array-properties size=12" in launch.submit
    assert f"--job-definition {SHAPE.name}" in launch.submit


def test_a_broken_template_fails_cfn_lint() -> None:
    template = json.loads(batch(SHAPE).manifest)
    template["Resources"]["JobDefinition"]["Properties"]["Type"] = "kontainer"
    assert lint(json.dumps(template), regions=["ap-south-1"]) != []


def test_names_suit_both_engines_and_batch_needs_an_array() -> None:
    assert SHAPE.name == "khpl-migrate-20261130t035453007z-28e195"
    with pytest.raises(ValueError, match="2 to 10,000"):
        batch(Shape(run_id=RUN, shards=1, image="x", bucket="b"))
