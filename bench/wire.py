"""`make bench`: the wire benchmark (issue 21), on an operator's broadband line.

S3 sits behind `bench/proxy.py` as a shaped link: 50 Mbps down, 20 Mbps up, shared
by every connection (a FIFO pacer each way), and 20 ms per request/response
exchange. DynamoDB is behind the 20 ms proxy only: what goes to it is small (items
without their images), and the issue's bound is S3's. 100 registrations
(bench/data.py: ~30 MB of source, ~23 MB of decoded images) are migrated by

  (a) the guide's loop (bench/guide_loop.py),
  (b) `khpl-migrate migrate --apply`,
  (c) then, on (b)'s table, `sync --apply` after 10 of the 100 records were edited in
      the source (a field), 5 of those 10 with a replaced photo,
  (d) `migrate --apply --shards N --launch local` for N = 1, 2, 4, 8,

each its own process, (a), (b) and each (d) on a fresh bucket and table. The link
bound of a run is the longer of its two transfers at the link's rate: the source
down, the decoded images up (for (c): the new source down, the replaced photos up).
For each: wall time, bytes down and up through S3's link, the GET bytes of each
object kind (the source, the backup, images, the run's manifests), and wall / bound.
One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ijson  # noqa: E402
from clients import client, fresh, proxied_stack, timed_process  # noqa: E402
from data import photo, write_rows, write_source  # noqa: E402
from proxy import DelayProxy  # noqa: E402

from khpl_migrate.core.dataurls import looks_like_data_url, parse_data_url  # noqa: E402
from khpl_migrate.core.layout import BACKUP_PREFIX, IMAGE_PREFIX, RUNS_PREFIX  # noqa: E402
from khpl_migrate.setup import local  # noqa: E402

SOURCE = "registrations.json"


def _image_bytes(value: Any) -> int:
    """The decoded bytes of every data URL in a record (what an upload sends)."""
    if isinstance(value, str):
        return len(parse_data_url(value).data) if looks_like_data_url(value) else 0
    if isinstance(value, dict):
        return sum(_image_bytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_image_bytes(v) for v in value)
    return 0


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as source:
        yield from ijson.items(source, "item", use_float=False)


def _edited(path: Path, fields: int, photos: int, replaced: list[int]) -> Iterator[dict[str, Any]]:
    """The source with a field edited in its first `fields` records, and the photo of the
    first `photos` of those replaced (the new photos' decoded sizes go to `replaced`)."""
    for index, row in enumerate(_rows(path)):
        if index < fields:
            row["paymentStatus"] = "refunded"
        if index < photos:
            row["image"] = photo()
            replaced.append(_image_bytes(row["image"]))
        yield row


class Wire:
    def __init__(
        self, work: Path, stack: local.Stack, proxies: list[DelayProxy], down: float, up: float
    ) -> None:
        self.work, self.stack = work, stack
        self.ddb_proxy, self.s3_proxy = proxies
        self.down_bps, self.up_bps = down, up
        self.s3 = client("s3", stack.s3.url)  # set-up and checks: straight to the stack
        self.ddb = client("dynamodb", stack.dynamodb.url)

    def bound(self, down_bytes: int, up_bytes: int) -> dict[str, float]:
        down, up = down_bytes * 8 / self.down_bps, up_bytes * 8 / self.up_bps
        return {"downSeconds": round(down, 2), "upSeconds": round(up, 2), "seconds": max(down, up)}

    def prepare(self, name: str, source: Path) -> tuple[str, str]:
        """A fresh bucket holding `source` as registrations.json, and a fresh table."""
        return fresh(self.s3, self.ddb, f"bench-wire-{name}", f"Bench-Wire-{name}", source)

    def env(self, bucket: str, table: str) -> dict[str, str]:
        return {
            **os.environ,
            **self.stack.env(),
            "AWS_ENDPOINT_URL_DYNAMODB": self.ddb_proxy.url,
            "AWS_ENDPOINT_URL_S3": self.s3_proxy.url,
            "REACT_APP_S3_BUCKET_NAME": bucket,
            "REACT_APP_DYNAMODB_TABLE_NAME": table,
            "KHPL_STATE_DIR": str(self.work / f"state-{bucket}"),
        }

    def count(self, table: str) -> int:
        pages = self.ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
        return sum(page["Count"] for page in pages)

    def uploaded_image_bytes(self, bucket: str) -> int:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=IMAGE_PREFIX
        )
        return sum(obj["Size"] for page in pages for obj in page.get("Contents", []))

    def timed(
        self, argv: list[str], env: dict[str, str], bucket: str, ok: tuple[int, ...] = (0,)
    ) -> Any:
        s3p, ddbp = self.s3_proxy, self.ddb_proxy
        before = (s3p.bytes_received, s3p.bytes_sent, ddbp.bytes_received, ddbp.bytes_sent)
        exchanges, gets = s3p.exchanges + ddbp.exchanges, Counter(s3p.get_received)
        wall, code, usage, err = timed_process(argv, env)
        if code not in ok:
            raise SystemExit(f"{argv[1:5]} failed (exit {code}): {err[-2000:]}")
        after = (s3p.bytes_received, s3p.bytes_sent, ddbp.bytes_received, ddbp.bytes_sent)
        down, up, ddb_down, ddb_up = (a - b for a, b in zip(after, before, strict=True))
        reads: Counter[str] = Counter()
        for path, nbytes in (Counter(s3p.get_received) - gets).items():
            reads[_kind(path, bucket)] += nbytes
        return {
            "seconds": round(wall, 2),
            # Shard processes are reaped by their command: their CPU is in its usage.
            "cpuSeconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peakRssMB": round(usage.ru_maxrss / 1024, 1),
            "exchanges": s3p.exchanges + ddbp.exchanges - exchanges,
            "s3BytesDown": down,
            "s3BytesUp": up,
            "dynamodbBytesDown": ddb_down,
            "dynamodbBytesUp": ddb_up,
            # S3 -> client bytes of GETs, by what was read (headers included).
            "getBytes": {kind: reads.get(kind, 0) for kind in _KINDS},
            "exit": code,
        }


_KINDS = ("source", "backup", "images", "runs", "other")


def _kind(path: str, bucket: str) -> str:
    """What a GET's path (path-style: /bucket/key) read."""
    key = path.removeprefix(f"/{bucket}/") if path.startswith(f"/{bucket}/") else ""
    if key == SOURCE:
        return "source"
    for prefix, kind in (
        (BACKUP_PREFIX, "backup"),
        (IMAGE_PREFIX, "images"),
        (RUNS_PREFIX, "runs"),
    ):
        if key.startswith(prefix):
            return kind
    return "other"


def _judged(run: dict[str, Any], bound: dict[str, float], source_bytes: int) -> dict[str, Any]:
    return {
        **run,
        "bound": {**bound, "seconds": round(bound["seconds"], 2)},
        "ratio": round(run["seconds"] / bound["seconds"], 2),
        # How many times over the source's size came down the link.
        "downOverSource": round(run["s3BytesDown"] / source_bytes, 2),
    }


def _bench(wire: Wire, count: int, shard_counts: list[int]) -> dict[str, Any]:
    tool = [sys.executable, "-m", "khpl_migrate"]
    original = wire.work / "original.json"
    size = write_source(original, count, seed=7)
    images = sum(_image_bytes(row) for row in _rows(original))
    bound = wire.bound(size, images)
    out: dict[str, Any] = {
        "benchmark": "wire",
        "records": count,
        "sourceBytes": size,
        "imageBytes": images,
        "link": {
            "downMbps": wire.down_bps / 1e6,
            "upMbps": wire.up_bps / 1e6,
            "delayMs": wire.s3_proxy.delay * 1000,
            "dynamodb": "delay only, off the shaped link",
        },
        "bound": {**bound, "seconds": round(bound["seconds"], 2)},
    }

    bucket, table = wire.prepare("guide", original)
    argv = [sys.executable, str(HERE / "guide_loop.py"), bucket, table]
    guide = wire.timed(argv, wire.env(bucket, table), bucket)
    assert wire.count(table) == count, f"guide loop: {table} does not hold {count} items"
    out["guide"] = _judged(guide, bound, size)

    bucket, table = wire.prepare("migrate", original)
    env = wire.env(bucket, table)
    migrate = wire.timed([*tool, "migrate", "--apply", "-q"], env, bucket)
    assert wire.count(table) == count, f"migrate: {table} does not hold {count} items"
    uploaded = wire.uploaded_image_bytes(bucket)
    assert uploaded == images, f"migrate uploaded {uploaded} image bytes, the source has {images}"
    out["migrate"] = _judged(migrate, bound, size)

    # (c) on (b)'s table: a tenth of the records edited in the source, half of those
    # with a new photo (the "a field in 10 of 100, a replaced photo in 5").
    edited = wire.work / "edited.json"
    replaced: list[int] = []
    fields, photos = max(1, count // 10), max(1, count // 20)
    new_size = write_rows(edited, _edited(original, fields, photos, replaced))
    wire.s3.upload_file(str(edited), bucket, SOURCE)
    sync_bound = wire.bound(new_size, sum(replaced))
    # Exit 1 would be records left to report (conflicts): none are made here, but the
    # figures stand either way.
    sync = wire.timed([*tool, "sync", "--apply", "-q"], env, bucket, ok=(0, 1))
    assert wire.count(table) == count, f"sync: {table} does not hold {count} items"
    out["sync"] = {
        **_judged(sync, sync_bound, new_size),
        "sourceBytes": new_size,
        "editedRecords": fields,
        "replacedPhotos": photos,
        "replacedImageBytes": sum(replaced),
    }

    out["shards"] = {}
    for n in shard_counts:
        bucket, table = wire.prepare(f"shards{n}", original)
        argv = [*tool, "migrate", "--apply", "-q", "--shards", str(n), "--launch", "local"]
        run = wire.timed(argv, wire.env(bucket, table), bucket)
        assert wire.count(table) == count, f"{n} shards: {table} does not hold {count} items"
        # Everything the prepare and the N shard processes read from S3, over the snapshot.
        run["readOverSnapshot"] = round(run["s3BytesDown"] / size, 2)
        out["shards"][str(n)] = _judged(run, bound, size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--down-mbps", type=float, default=50.0)
    parser.add_argument("--up-mbps", type=float, default=20.0)
    parser.add_argument("--shards", default="1,2,4,8", help="shard counts ('' to skip)")
    args = parser.parse_args()
    down, up = args.down_mbps * 1e6, args.up_mbps * 1e6
    shards = [int(n) for n in args.shards.split(",") if n.strip()]
    with proxied_stack("khpl-bench-wire-", args.delay_ms, s3_down_bps=down, s3_up_bps=up) as (
        work,
        stack,
        proxies,
    ):
        print(json.dumps(_bench(Wire(work, stack, proxies, down, up), args.records, shards)))


if __name__ == "__main__":
    main()
