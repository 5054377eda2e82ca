"""`make bench`: how fast and how lean `migrate --apply` is, against the guide's loop.

speed:  N registrations (about 300 KB of base64 images each) behind a proxy that
        adds a fixed delay to every request/response exchange (20 ms, a client
        talking to an AWS region). Times (a) the guide's sequential loop and
        (b) `khpl-migrate migrate --apply`, each on a fresh bucket and table, in
        the same run; prints wall time, records/s, MB/s, client CPU and peak RSS.
memory: peak RSS of (b) on a ~250 MB and a ~1 GB source (no delay), to show
        memory does not grow with the source.
deep:   `verify --deep` on 1,000 migrated records (bench/deep_verify.py).
review: how soon `review` serves a 300-record source, and its pages (bench/review.py).
sync:   1,000 records: `sync --apply` after edits on either side, then `rollback
        --apply` of the sync and of the migration (bench/sync.py).
shards: 1,000 records as one process and as 1, 2 and 4 local shard processes
        (bench/shards.py).
wire:   100 records with S3 on a shaped broadband link (50 Mbps down, 20 up, 20 ms
        per exchange): the guide's loop, migrate --apply, a sync of 10% edits and 1-8
        shards against the link's bound (bench/wire.py, issue 21).

Each contender runs as its own process; its CPU time and peak RSS come from the
kernel (wait4), not from sampling. Targets are checked and the exit code is 1
when one is missed. Figures also go to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clients import client, fresh  # noqa: E402
from data import write_source  # noqa: E402
from proxy import DelayProxy  # noqa: E402

from khpl_migrate.setup import local  # noqa: E402

MB = 1024 * 1024


@dataclass
class Measure:
    name: str
    records: int
    source_mb: float
    wall_s: float
    cpu_s: float
    peak_rss_mb: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.wall_s

    @property
    def mb_per_s(self) -> float:
        return self.source_mb / self.wall_s

    @property
    def cpu_ms_per_record(self) -> float:
        return 1000 * self.cpu_s / self.records


def measure(
    name: str, argv: list[str], env: dict[str, str], records: int, source_mb: float
) -> Measure:
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(
            f"{name} failed (exit {code}):\n{out.decode()[-2000:]}\n{err.decode()[-2000:]}"
        )
    return Measure(
        name, records, source_mb, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    )


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.stack, _ = local.start(workdir / "stack")
        self.env = {**os.environ, **self.stack.env()}
        self.s3 = client("s3", self.stack.s3.url)
        self.ddb = client("dynamodb", self.stack.dynamodb.url)

    def close(self) -> None:
        local.stop(self.workdir / "stack")

    def prepare(self, name: str, source: Path) -> tuple[str, str]:
        """A fresh bucket holding `source` as registrations.json, and a fresh table."""
        return fresh(self.s3, self.ddb, f"bench-{name}", f"Bench-{name}", source)

    def count(self, table: str) -> int:
        pages = self.ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
        return sum(page["Count"] for page in pages)

    def tool(self, bucket: str, table: str, workers: int | None = None) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "khpl_migrate",
            "migrate",
            "--apply",
            "--quiet",
            "--bucket",
            bucket,
            "--table",
            table,
            "--state-dir",
            str(self.workdir / "state"),
        ]
        return argv + (["--workers", str(workers)] if workers else [])


def speed(
    bench: Bench, records: int, delay_ms: float, workers: int | None = None
) -> tuple[Measure, Measure, int]:
    source = bench.workdir / "speed.json"
    size_mb = write_source(source, records, seed=7) / MB
    ddb_proxy = DelayProxy(int(bench.stack.dynamodb.port), delay_ms / 1000).start()
    s3_proxy = DelayProxy(int(bench.stack.s3.port), delay_ms / 1000).start()
    env = {
        **bench.env,
        "AWS_ENDPOINT_URL_DYNAMODB": ddb_proxy.url,
        "AWS_ENDPOINT_URL_S3": s3_proxy.url,
    }
    try:
        bucket_a, table_a = bench.prepare("guide", source)
        bucket_b, table_b = bench.prepare("tool", source)
        guide = measure(
            "guide loop (a)",
            [sys.executable, str(HERE / "guide_loop.py"), bucket_a, table_a],
            env,
            records,
            size_mb,
        )
        exchanges_a = ddb_proxy.exchanges + s3_proxy.exchanges
        tool = measure(
            "khpl-migrate (b)", bench.tool(bucket_b, table_b, workers), env, records, size_mb
        )
        exchanges_b = ddb_proxy.exchanges + s3_proxy.exchanges - exchanges_a
    finally:
        ddb_proxy.stop()
        s3_proxy.stop()
    for table in (table_a, table_b):
        assert bench.count(table) == records, f"{table} does not hold {records} items"
    print(f"   exchanges through the proxy: guide loop {exchanges_a}, khpl-migrate {exchanges_b}")
    return guide, tool, exchanges_b


def memory(bench: Bench, target_mb: int) -> Measure:
    source = bench.workdir / f"memory-{target_mb}.json"
    per_record = 0.31 * MB  # a record of bench/data.py, measured: ~310 KB of JSON
    count = max(1, int(target_mb * MB / per_record))
    size_mb = write_source(source, count, seed=target_mb, pool=32) / MB
    bucket, table = bench.prepare(f"mem{target_mb}", source)
    source.unlink()
    result = measure(
        f"khpl-migrate, {size_mb:.0f} MB source",
        bench.tool(bucket, table),
        bench.env,
        count,
        size_mb,
    )
    assert bench.count(table) == count, f"{table} does not hold {count} items"
    return result


def table(rows: list[Measure]) -> None:
    heads = ("wall s", 8), ("rec/s", 8), ("MB/s", 7), ("CPU s", 7), ("CPU ms/rec", 10)
    print(f"   {'':28} " + " ".join(f"{h:>{w}}" for h, w in heads) + f" {'peak RSS MB':>11}")
    for m in rows:
        print(
            f"   {m.name:28} {m.wall_s:8.2f} {m.records_per_s:8.1f} {m.mb_per_s:7.2f} "
            f"{m.cpu_s:7.2f} {m.cpu_ms_per_record:10.2f} {m.peak_rss_mb:11.1f}"
        )


# Issue 21's goals. Today's code does not meet them, so they are printed, not checked:
# they become targets (a miss goes to `failures`) when issue 21's one-pass runs land.
WIRE_GOAL = 1.15  # wall / link bound, for migrate --apply and for the 10% sync
SHARD_READ_GOAL = 1.1  # bytes all shards read from S3 / the snapshot


def _goal(value: float, goal: float) -> str:
    return f"goal (issue 21): {goal:g}x — " + ("met" if value <= goal else "not yet met")


def print_wire(wire: Any) -> None:
    link, bound, mb = wire["link"], wire["bound"], 1e6
    print(
        f"wire: {wire['records']} records ({wire['sourceBytes'] / mb:.1f} MB source, "
        f"{wire['imageBytes'] / mb:.1f} MB of images), S3 on a {link['downMbps']:g} Mbps down / "
        f"{link['upMbps']:g} Mbps up link, {link['delayMs']:g} ms per exchange "
        f"(DynamoDB: {link['dynamodb']})"
    )
    print(
        f"   link bound: source down {bound['downSeconds']:.2f} s, images up "
        f"{bound['upSeconds']:.2f} s -> {bound['seconds']:.2f} s"
    )

    def line(label: str, run: Any, goal: float | None = None) -> None:
        gets, size = run["getBytes"], wire["sourceBytes"]
        print(
            f"   {label:38} {run['seconds']:6.2f} s, {run['ratio']:4.2f}x its bound "
            f"({run['bound']['seconds']:.2f} s), {run['s3BytesDown'] / mb:5.1f} MB down "
            f"(GETs: source {gets['source'] / size:.2f}x, backup {gets['backup'] / size:.2f}x), "
            f"{run['s3BytesUp'] / mb:4.1f} MB up"
            + (f"; {_goal(run['ratio'], goal)}" if goal else "")
        )

    line("guide loop (a)", wire["guide"])
    line("migrate --apply (b)", wire["migrate"], WIRE_GOAL)
    sync = wire["sync"]
    edits = f"{sync['editedRecords']} edited, {sync['replacedPhotos']} photos"
    line(f"sync --apply, {edits} (c)", sync, WIRE_GOAL)
    for n, run in wire["shards"].items():
        line(f"migrate --apply --shards {n} (d)", run)
        print(
            f"   {'':38} all its processes read {run['readOverSnapshot']:.2f}x the snapshot "
            f"from S3; " + _goal(run["readOverSnapshot"], SHARD_READ_GOAL)
        )


def _sub_bench(script: str, records: int) -> Any:
    """Run one of the other benchmarks in its own process; its JSON line back."""
    out = subprocess.run(
        [sys.executable, str(HERE / script), "--records", str(records)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument(
        "--memory-mb", default="250,1024", help="source sizes for the memory mode ('' to skip)"
    )
    parser.add_argument("--skip-deep", action="store_true")
    parser.add_argument("--skip-review", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--skip-shards", action="store_true")
    parser.add_argument("--skip-wire", action="store_true")
    parser.add_argument("--workers", type=int, help="khpl-migrate's --workers (default: its own)")
    args = parser.parse_args()
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
    }
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="khpl-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            print(
                f"speed: {args.records} records, {args.delay_ms:g} ms per exchange, "
                f"DynamoDB: {bench.stack.dynamodb.kind}"
            )
            guide, tool, _ = speed(bench, args.records, args.delay_ms, args.workers)
            table([guide, tool])
            ratio = guide.wall_s / tool.wall_s
            print(f"   ratio (a)/(b): {ratio:.1f}x faster (target: at least 8x)")
            print(
                f"   client CPU per record: {tool.cpu_ms_per_record:.2f} ms "
                f"vs {guide.cpu_ms_per_record:.2f} ms (target: no higher)"
            )
            results["speed"] = {
                "guide": asdict(guide),
                "tool": asdict(tool),
                "ratio": round(ratio, 2),
            }
            if ratio < 8:
                failures.append(f"speed ratio {ratio:.1f}x < 8x")
            if tool.cpu_ms_per_record > guide.cpu_ms_per_record:
                failures.append("client CPU per record is higher than the guide loop's")
            sizes = [int(s) for s in args.memory_mb.split(",") if s.strip()]
            if sizes:
                print(f"memory: sources of {', '.join(f'~{s} MB' for s in sizes)}, no delay")
                rows = [memory(bench, size) for size in sizes]
                table(rows)
                results["memory"] = [asdict(r) for r in rows]
                peak = rows[-1].peak_rss_mb
                growth = peak / rows[0].peak_rss_mb - 1
                print(
                    f"   peak RSS on the largest: {peak:.0f} MB (target <= 200), "
                    f"growth from the smallest: {growth:+.0%} (target within 20%)"
                )
                if peak > 200:
                    failures.append(f"peak RSS {peak:.0f} MB > 200 MB")
                if abs(growth) > 0.20:
                    failures.append(f"peak RSS grows {growth:+.0%} with the source")
        finally:
            bench.close()
    if not args.skip_deep:
        print("deep verify: 1,000 records")
        results["deep"] = _sub_bench("deep_verify.py", 1000)
        print(f"   {results['deep']['deepVerifySeconds']} s for {results['deep']['images']} images")
    if not args.skip_review:
        print("review: 300 records (~88 MB source)")
        review = results["review"] = _sub_bench("review.py", 300)
        print(
            f"   served after {review['secondsUntilServed']} s; first page with 150 thumbnails "
            f"{review['firstPageWith150ThumbnailsSeconds']['cold']} s; last record's page "
            f"{review['lastRecordPageSeconds']['cold']} s; server peak RSS "
            f"{review['serverPeakRssMB']} MB"
        )
    if not args.skip_sync:
        print("sync: 1,000 records migrated, edited on one side or both, synced, rolled back")
        sync = results["sync"] = _sub_bench("sync.py", 1000)
        for name, label in (
            ("migrate", "migrate --apply"),
            ("sync", "sync --apply"),
            ("syncWithNothingToDo", "sync --apply, nothing left"),
            ("rollbackOfTheSync", "rollback --apply of the sync"),
            ("rollbackOfTheMigration", "rollback --apply of migrate"),
        ):
            run = sync[name]
            print(
                f"   {label:28} {run['seconds']:6.2f} s, {run['exchanges']} exchanges, "
                f"{run['bytesSent'] / 1e6:.1f} MB sent, "
                f"{run['bytesReceived'] / 1e6:.0f} MB received, "
                f"CPU {run['cpuSeconds']:.2f} s, peak RSS {run['peakRssMB']:.0f} MB"
            )
        if sync["sync"]["peakRssMB"] > 200:
            failures.append(f"sync peak RSS {sync['sync']['peakRssMB']:.0f} MB > 200 MB")
    if not args.skip_shards:
        print("shards: 1,000 records, 20 ms per exchange, one process and 1, 2, 4 shards")
        shards = results["shards"] = _sub_bench("shards.py", 1000)
        for name, run in shards["runs"].items():
            print(
                f"   {name:12} {run['seconds']:6.2f} s, {run['recordsPerSecond']:5.1f} records/s, "
                f"CPU {run['cpuSeconds']:.2f} s ({run['cpuMsPerRecord']:.2f} ms a record), "
                f"{run['exchanges']} exchanges"
            )
    if not args.skip_wire:
        results["wire"] = wire = _sub_bench("wire.py", 100)
        print_wire(wire)
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2))
    print("targets: " + ("all met" if not failures else "MISSED: " + "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
