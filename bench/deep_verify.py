"""Time `verify --deep` on N migrated registrations (three images each) on the local stack.

    .venv/bin/python bench/deep_verify.py [--records 1000] [--workers 8]

Starts its own DynamoDB Local + moto, seeds and migrates N sample registrations,
then times the deep check alone. Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.migrate.apply import apply_plan
from khpl_migrate.migrate.plan import build_plan
from khpl_migrate.setup import local, sample
from khpl_migrate.setup.table import create_table
from khpl_migrate.verify.deep import deep_verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack, _ = local.start(Path(tmp))
        try:
            env = {**stack.env(), "REACT_APP_S3_BUCKET_NAME": "khpl-bench"}
            settings = settings_mod.load(env=env, state_dir=Path(tmp), workers=args.workers)
            store = Store(settings)
            store.create_bucket("khpl-bench")
            body = sample.source_bytes(sample.registrations(args.records, seed=4))
            store.put_object("khpl-bench", settings.source_key, body, "application/json")
            create_table(store, settings)
            migrated = apply_plan(store, settings, build_plan(store, settings))
            began, cpu = time.perf_counter(), time.process_time()
            summary, deep = deep_verify(store, settings)
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu
            assert deep.ok and summary.complete, deep.lines()[:5]
            print(
                json.dumps(
                    {
                        "benchmark": "verify --deep",
                        "records": args.records,
                        "images": deep.images,
                        "imageMB": round(deep.image_bytes / 1048576, 1),
                        "sourceMB": round(len(body) / 1048576, 1),
                        "workers": args.workers,
                        "dynamodb": stack.dynamodb.kind,
                        "migrateSeconds": round(migrated.seconds, 2),
                        "deepVerifySeconds": round(wall, 2),
                        "deepVerifyCpuSeconds": round(cpu, 2),
                        "recordsPerSecond": round(args.records / wall, 1),
                        "peakRssMB": round(
                            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                        ),
                    }
                )
            )
        finally:
            local.stop(Path(tmp))


if __name__ == "__main__":
    main()
