"""Around the migration, rendered for a person: create-table, doctor and the rehearsal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from khpl_migrate.console import capped, line, size
from khpl_migrate.order import hint
from khpl_migrate.rehearse.estimate import ROUND_TRIP_SECONDS
from khpl_migrate.rehearse.run import Rehearsal, Step
from khpl_migrate.setup.doctor import Finding
from khpl_migrate.setup.table import TableResult

# The guide's steps, as its "Migration Steps" title them (the demo and the rehearsal).
STEP_TITLES = {
    Step.VERIFY: "Step 2: Verify current data",
    Step.CREATE_TABLE: "Step 3: Create DynamoDB table",
    Step.PLAN: "Step 4: Run migration (dry run first)",
    Step.APPLY: "Step 5: Run actual migration",
    Step.DEEP: "Step 6: Verify migration success (deep)",
}


def render_table_result(console: Console, result: TableResult) -> None:
    verb = "Created" if result.created else "Table exists:"
    line(console, f"✅ {verb} {result.table} ({result.status})")
    line(console, "   • Key: id (string), billing: on demand")
    line(console, f"   • Deletion protection: {_onoff(result.deletion_protection)}")
    line(console, f"   • Point-in-time recovery: {_onoff(result.point_in_time_recovery)}")
    if result.note:
        line(console, f"   ℹ️ {result.note}")
    line(console, hint("create-table", "a dry run: nothing is written"))


def _onoff(value: bool | None) -> str:
    return {True: "on", False: "off", None: "not available here"}[value]


def render_doctor(console: Console, findings: Sequence[Finding]) -> None:
    marks = {"ok": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌"}
    line(console, "🩺 khpl-migrate doctor")
    for finding in findings:
        line(console, f"{marks[finding.level]} {finding.topic}: {finding.message}")
        if finding.fix and finding.level != "ok":
            line(console, f"   Fix: {finding.fix}")
    fails = sum(1 for f in findings if f.level == "fail")
    warns = sum(1 for f in findings if f.level == "warn")
    line(console, f"{fails} failing, {warns} warnings")
    if not fails:
        line(console, hint("doctor"))


def duration(seconds: float) -> str:
    """A time as a person reads it: 0.4 s, 42 s, 3 min 20 s, 2 h 5 min."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def render_rehearsal(console: Console, done: Rehearsal) -> None:
    """The rehearsal's report: what the operator can act on before touching AWS."""
    run, estimate = done.run, done.estimate
    line(console)
    origin = "read with one GetObject" if done.source.from_aws else "a local file"
    line(
        console,
        f"🎭 Rehearsal report: {done.source.origin} ({origin}, {size(len(done.source.body))}), "
        "migrated on a local stack; nothing was written to AWS",
    )
    if run is None or estimate is None:
        line(console, "❌ The rehearsal stopped before the run: see the error above")
        return
    line(
        console,
        f"   • Records: {run.total} · migrated {run.migrated} · skipped {run.skipped} · "
        f"failed {len(run.failed)} (on an empty table; records already in yours are skipped)",
    )
    if run.failed:
        line(console, "   ❌ Records that will fail (the real run leaves them out and goes on):")
        capped(console, [f"   #{f.index} {f.id or '(no id)'}: {f.reason}" for f in run.failed])
    if run.warnings:
        line(console, f"   ⚠️ Warnings: {len(run.warnings)} (listed in the plan above)")
    line(console, f"   • Images: {run.images} ({size(run.image_bytes)})")
    largest = done.largest()
    if largest:
        line(console, "   • Largest items (DynamoDB holds up to 400 KB an item):")
        for entry in largest:
            line(
                console,
                f"      {entry.id}: {size(entry.item_size or 0)} "
                f"({entry.images} images, {size(entry.image_bytes)} in S3)",
            )
    steps = ", ".join(f"{step.command} {duration(s)}" for step, s in done.seconds.items())
    line(console, f"   ⏱️ Time here: {duration(sum(done.seconds.values()))} ({steps})")
    guess = "a guess: pass --link DOWN/UP for yours" if estimate.link.guessed else "as given"
    line(
        console,
        f"   📡 The real run, estimated at {estimate.link} ({guess}), "
        f"{ROUND_TRIP_SECONDS * 1000:.0f} ms a request on {estimate.workers} workers:",
    )
    line(
        console,
        f"      • migrate --apply: about {duration(estimate.seconds)} "
        f"(down {size(estimate.download_bytes)}, up {size(estimate.upload_bytes)}, "
        f"about {estimate.requests:,} requests)",
    )
    line(console, f"      • verify --deep afterwards: about {duration(estimate.deep_seconds)}")
    writes = estimate.writes
    line(
        console,
        f"   💰 DynamoDB writes: {writes.units:,} write request units "
        f"({writes.transactional_items} items in transactions at 2 units a KB, "
        f"{writes.plain_items} alone at 1)",
    )
    if estimate.price_guessed:
        where = (
            f"the region {estimate.region} is not in the tool's price table"
            if estimate.region
            else "no region is set"
        )
        whose = f"{estimate.price_region}'s price, as {where}"
    else:
        whose = f"{estimate.price_region}'s price"
    cost = f"${estimate.dollars:.6f}" if estimate.dollars < 0.01 else f"${estimate.dollars:,.2f}"
    line(
        console,
        f"      ≈ {cost} on demand at {whose} (${estimate.usd_per_million:g} per million); "
        "an estimate: see https://aws.amazon.com/dynamodb/pricing/on-demand/",
    )
    if done.ok:
        line(console, "✅ Rehearsal passed: every record that can migrate did, and checks out")
    else:
        line(console, "❌ Rehearsal found problems: fix them in the source, or accept them, first")
