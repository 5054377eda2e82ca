"""A sharded run, rendered for a person: prepared, launched, one shard, all shards."""

from __future__ import annotations

from rich.console import Console

from khpl_migrate.console import line
from khpl_migrate.migrate.launch import Launch
from khpl_migrate.migrate.sharded import LocalShards, Prepared, ShardRun
from khpl_migrate.report.migration import render_result


def render_prepared(console: Console, prepared: Prepared) -> None:
    line(
        console,
        f"🧩 Run {prepared.run_id} prepared: {prepared.shards} shards, each reading the "
        f"snapshot s3://{prepared.bucket}/{prepared.backup_key}",
    )
    line(console, f"   • Header manifest: s3://{prepared.bucket}/{prepared.manifest_key}")


def render_launch(console: Console, prepared: Prepared, launch: Launch) -> None:
    """What to do with the definition printed on stdout."""
    if launch.engine == "batch":
        line(console, "💡 Save the CloudFormation template above as batch.json, then:")
        line(
            console,
            "   aws cloudformation deploy --stack-name khpl-migrate --template-file batch.json \\",
        )
        line(
            console,
            "     --parameter-overrides ComputeEnvironment=ARN JobRoleArn=ARN ExecutionRoleArn=ARN",
        )
        line(console, f"   {launch.submit}")
    else:
        line(console, "💡 Save the Indexed Job above as job.json, then:")
        line(console, f"   {launch.submit}")
    line(console, "💡 Watch it: khpl-migrate runs. Re-run one shard alone:")
    line(console, f"   khpl-migrate migrate --apply --run {prepared.run_id} --shard I")


def render_shard(console: Console, shard: ShardRun, bucket: str) -> None:
    run_id = shard.result.run_id
    render_result(
        console,
        shard.result,
        bucket,
        again=f"khpl-migrate migrate --apply --run {run_id} --shard {shard.index}",
        records=f"Records in shard {shard.index} of {shard.shards}",
    )


def render_local_shards(console: Console, run: LocalShards) -> None:
    prepared = run.prepared
    again = f"khpl-migrate migrate --apply --run {prepared.run_id} --shard I"
    render_result(console, run.result, prepared.bucket, again=again)
    states = run.manifest.shards
    done = sum(1 for s in states if s.state == "done")
    line(console, f"   • Shards done: {done} of {len(states)}")
    for state, tail in zip(states, run.errors, strict=False):
        if state.state != "done":
            why = tail or state.why or "no manifest part"
            line(console, f"❌ Shard {state.index}: {state.state} ({why})")
            line(
                console,
                f"💡 Re-run it alone: khpl-migrate migrate --apply --run {prepared.run_id} "
                f"--shard {state.index}",
            )
