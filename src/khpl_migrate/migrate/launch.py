"""What to submit to run a prepared sharded run on an engine. Pure: builds text only.

`migrate --apply --shards N --launch batch|k8s` prints one of these instead of
starting local processes. Each runs the same image and the same command in
every child, `khpl-migrate migrate --apply --run RUN --shard auto`: the child
learns its index from the engine (`shards.BATCH_INDEX`, `shards.K8S_INDEX`) and
everything else from the run's header manifest in the bucket. A child that
fails may be retried by the engine: a shard re-run converges (docs/design.md,
"Sharded runs").
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

Engine = Literal["local", "batch", "k8s"]
ENGINES: tuple[Engine, ...] = ("local", "batch", "k8s")
BATCH_ARRAY = (2, 10_000)  # AWS Batch: an array job has 2 to 10,000 children
K8S_VERSION = "1.33"  # the oldest Kubernetes in which backoffLimitPerIndex is stable


@dataclass(frozen=True)
class Shape:
    """What every child runs: the image, and the command's own settings."""

    run_id: str
    shards: int
    image: str
    bucket: str
    region: str | None = None
    kms_key_id: str | None = None
    workers: int | None = None
    parallelism: int | None = None  # Kubernetes: pods at once (default: all)

    def command(self) -> list[str]:
        args = ["khpl-migrate", "migrate", "--apply", "--run", self.run_id, "--shard", "auto"]
        args += ["--bucket", self.bucket, "--quiet"]
        if self.region:
            args += ["--region", self.region]
        if self.kms_key_id:
            args += ["--kms-key-id", self.kms_key_id]
        if self.workers:
            args += ["--workers", str(self.workers)]
        return args

    @property
    def name(self) -> str:
        """A name both engines accept: lowercase letters, digits and hyphens (DNS-1123)."""
        return "khpl-migrate-" + re.sub(r"[^a-z0-9-]", "-", self.run_id.lower())


@dataclass(frozen=True)
class Launch:
    engine: Engine
    manifest: str  # the definition to submit (stdout; `launch.manifest` in --json)
    submit: str  # the command that submits it

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "manifest": self.manifest, "submit": self.submit}


# The template's parameters: what the operator's account already has.
_BATCH_PARAMETERS = {
    "ComputeEnvironment": {
        "Type": "String",
        "Description": "ARN of an existing AWS Batch compute environment (Fargate)",
    },
    "JobRoleArn": {
        "Type": "String",
        "Description": "the role the shards run as (khpl-migrate iam-policy --command migrate)",
    },
    "ExecutionRoleArn": {
        "Type": "String",
        "Description": "the role ECS pulls the image and writes logs with",
    },
}
_BATCH_QUEUE = {
    "Type": "AWS::Batch::JobQueue",
    "Properties": {
        "JobQueueName": "khpl-migrate",
        "Priority": 1,
        "State": "ENABLED",
        "ComputeEnvironmentOrder": [
            {"Order": 1, "ComputeEnvironment": {"Ref": "ComputeEnvironment"}}
        ],
    },
}
# A retried child converges (every write is conditional), so one that was killed or lost
# its host is retried; exit 1 (records failed, listed) and 2 (a setting is wrong) would
# fail the same way again.
_BATCH_RETRY = {
    "Attempts": 3,
    "EvaluateOnExit": [
        {"OnExitCode": "1", "Action": "EXIT"},
        {"OnExitCode": "2", "Action": "EXIT"},
        {"OnReason": "*", "Action": "RETRY"},
    ],
}


def batch(shape: Shape) -> Launch:
    """A CloudFormation template (job queue and job definition) and the submit-job call."""
    low, high = BATCH_ARRAY
    if not low <= shape.shards <= high:
        raise ValueError(f"an AWS Batch array job has {low} to {high:,} children")
    definition = {
        "Type": "AWS::Batch::JobDefinition",
        "Properties": {
            "JobDefinitionName": shape.name,
            "Type": "container",
            "PlatformCapabilities": ["FARGATE"],
            "RetryStrategy": _BATCH_RETRY,
            "Timeout": {"AttemptDurationSeconds": 24 * 3600},
            "ContainerProperties": {
                "Image": shape.image,
                "Command": shape.command(),
                "JobRoleArn": {"Ref": "JobRoleArn"},
                "ExecutionRoleArn": {"Ref": "ExecutionRoleArn"},
                "ResourceRequirements": [
                    {"Type": "VCPU", "Value": "2"},
                    {"Type": "MEMORY", "Value": "4096"},
                ],
                "NetworkConfiguration": {"AssignPublicIp": "ENABLED"},
            },
        },
    }
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"khpl-migrate: run {shape.run_id} as an AWS Batch array job "
        f"of {shape.shards} shards",
        "Parameters": _BATCH_PARAMETERS,
        "Resources": {"JobQueue": _BATCH_QUEUE, "JobDefinition": definition},
        "Outputs": {
            "JobQueue": {"Value": {"Ref": "JobQueue"}},
            "JobDefinition": {"Value": {"Ref": "JobDefinition"}},
        },
    }
    submit = shlex.join(
        [
            *("aws", "batch", "submit-job", "--job-name", shape.name),
            *("--job-queue", "khpl-migrate", "--job-definition", shape.name),
            *("--array-properties", f"size={shape.shards}"),
        ]
    )
    return Launch("batch", json.dumps(template, indent=2), submit)


def k8s(shape: Shape) -> Launch:
    """An Indexed Job: one pod per shard, each retried alone (backoffLimitPerIndex)."""
    labels = {"app.kubernetes.io/name": "khpl-migrate", "khpl-migrate/run": shape.name[13:]}
    container: dict[str, Any] = {
        "name": "shard",
        "image": shape.image,
        "command": shape.command(),
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    }
    if shape.region:
        container["env"] = [{"name": "AWS_REGION", "value": shape.region}]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": shape.name, "labels": labels},
        "spec": {
            "completions": shape.shards,
            "parallelism": min(shape.parallelism or shape.shards, shape.shards),
            "completionMode": "Indexed",
            # A pod that fails is retried for its own index only; the others go on. Exit 1
            # (records failed, listed) and 2 (a setting is wrong) are not retried.
            "backoffLimitPerIndex": 2,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailIndex",
                        "onExitCodes": {
                            "containerName": "shard",
                            "operator": "In",
                            "values": [1, 2],
                        },
                    }
                ]
            },
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    # AWS credentials from the service account (IRSA or EKS Pod Identity).
                    "serviceAccountName": "khpl-migrate",
                    "containers": [container],
                },
            },
        },
    }
    return Launch("k8s", json.dumps(job, indent=2), "kubectl apply -f job.json")


def launch_for(engine: Engine, shape: Shape) -> Launch:
    if engine == "batch":
        return batch(shape)
    if engine == "k8s":
        return k8s(shape)
    raise ValueError(f"{engine}: started here, nothing to print")
