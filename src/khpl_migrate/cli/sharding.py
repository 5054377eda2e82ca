"""`migrate --apply --shards N` and `migrate --apply --run RUN --shard I|auto`.

The flags are checked here (what goes with what); the work is `sharded.py`'s,
the definitions to submit `launch.py`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import click

from khpl_migrate.aws import Store
from khpl_migrate.cli.common import EXIT_OK, EXIT_PROBLEMS, Invocation
from khpl_migrate.console import emit_json, line
from khpl_migrate.kernel.runner import make_runner
from khpl_migrate.migrate.launch import Engine, Shape, launch_for
from khpl_migrate.migrate.plan import Plan
from khpl_migrate.migrate.sharded import prepare_shards, run_local, run_shard
from khpl_migrate.order import hint
from khpl_migrate.report.shards import (
    render_launch,
    render_local_shards,
    render_prepared,
    render_shard,
)


@dataclass(frozen=True)
class Sharding:
    """The sharding flags of `migrate`, checked."""

    shards: int | None = None
    launch: Engine = "local"
    image: str | None = None
    parallelism: int | None = None
    run_id: str | None = None
    shard: str | None = None
    max_write_rate: float | None = None

    def check(self, *, apply: bool, only_ids: bool, mask_aadhaar: bool, failed_ids: bool) -> None:
        """Usage errors (exit 2) for flags that do not go together."""
        if failed_ids and (self.shards or self.run_id):
            raise click.UsageError(
                "--failed-ids is for a run of one process (a sharded run lists its failed "
                "records in its report and in its shards' manifest parts)"
            )
        if self.parallelism is not None and self.launch == "batch":
            raise click.UsageError("--parallelism is for --launch k8s (Batch schedules by itself)")
        if (self.run_id is None) != (self.shard is None):
            raise click.UsageError("--run and --shard go together: --run RUN_ID --shard I|auto")
        if self.run_id is not None:
            if not apply:
                raise click.UsageError("--run/--shard run a shard for real: add --apply")
            if self.shards or only_ids or mask_aadhaar:
                raise click.UsageError(
                    "--shards, --only-ids and --mask-aadhaar were fixed when the run was "
                    "prepared: a shard takes only --run and --shard"
                )
        if self.shards is None and (
            self.launch != "local" or self.image or self.parallelism is not None
        ):
            raise click.UsageError("--launch, --image and --parallelism go with --shards N")
        if self.shards is not None and only_ids:
            raise click.UsageError("--only-ids is for a run of one process: drop --shards")
        if self.launch == "local" and (self.image or self.parallelism is not None):
            raise click.UsageError("--image and --parallelism go with --launch batch or k8s")
        if self.launch != "local" and not self.image:
            raise click.UsageError(
                f"--launch {self.launch} needs --image: a container image with khpl-migrate "
                "installed (the same version as here)"
            )
        if self.launch == "batch" and self.shards is not None and self.shards < 2:
            raise click.UsageError("an AWS Batch array job has 2 to 10,000 children: --shards 2+")


def run_one_shard(run: Invocation, sharding: Sharding) -> int:
    """One shard of a prepared run, in this process."""
    assert sharding.run_id is not None and sharding.shard is not None
    store = Store(run.settings)
    shard = run_shard(
        store,
        run.settings,
        sharding.run_id,
        sharding.shard,
        os.environ,
        runner=make_runner(run.settings.workers),
        progress=run.progress(),
        max_write_rate=sharding.max_write_rate,
    )
    if run.as_json:
        emit_json(shard.to_json())
    render_shard(run.console, shard, run.settings.require_bucket())
    return EXIT_OK if shard.result.ok else EXIT_PROBLEMS


def run_prepare(run: Invocation, plan: Plan, sharding: Sharding) -> int:
    """Prepare the run, then start its shards here or print what to submit."""
    assert sharding.shards is not None
    store = Store(run.settings)
    prepared = prepare_shards(store, run.settings, plan, sharding.shards, sharding.max_write_rate)
    render_prepared(run.console, prepared)
    if sharding.launch == "local":
        done = run_local(
            store, run.settings, prepared, announce=lambda text: line(run.console, f"   • {text}")
        )
        if run.as_json:
            emit_json(done.to_json())
        render_local_shards(run.console, done)
        if done.ok:
            line(run.console, hint("migrate --apply"))
        return EXIT_OK if done.ok else EXIT_PROBLEMS
    assert sharding.image is not None
    shape = Shape(
        run_id=prepared.run_id,
        shards=prepared.shards,
        image=sharding.image,
        bucket=prepared.bucket,
        region=run.settings.region,
        kms_key_id=run.settings.kms_key_id,
        workers=run.settings.workers,
        parallelism=sharding.parallelism,
    )
    launch = launch_for(sharding.launch, shape)
    if run.as_json:
        emit_json({**prepared.to_json(), "launch": launch.to_json()})
    else:
        click.echo(launch.manifest)
    render_launch(run.console, prepared, launch)
    return EXIT_OK
