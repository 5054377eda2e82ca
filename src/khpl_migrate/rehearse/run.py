"""`khpl-migrate rehearse`: the guide's steps on a copy of the operator's own source, on a
fresh local stack of its own, before anything touches AWS.

The operator's real question is "what will happen to *my* registrations?". The
source is read once (a local file, or one GetObject with the configuration every
command uses: nothing is written to AWS), loaded as `registrations.json` into a
bucket of a fresh local stack (`local.py`, its own state folder and loopback
ports), and the guide's steps run on it through the library, as `migrate`
runs them: verify, create-table, the plan, the real run, verify --deep. What
comes out is what the operator can act on: the records that will fail and why,
the images, the largest items, the time here and an estimate of the real run's
time and DynamoDB write cost (`estimate.py`, pure).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.core import errors
from khpl_migrate.kernel.progress import NullProgress, Progress
from khpl_migrate.kernel.runner import make_runner
from khpl_migrate.migrate.apply import RunResult, apply_plan, result_of_plan
from khpl_migrate.migrate.plan import Action, Plan, PlanEntry, build_plan
from khpl_migrate.rehearse.estimate import DEFAULT_LINK, Estimate, Link, estimate
from khpl_migrate.settings import DEFAULT_SOURCE_KEY, Settings
from khpl_migrate.setup import local
from khpl_migrate.setup.table import TableResult, create_table
from khpl_migrate.verify.deep import deep_verify
from khpl_migrate.verify.model import DeepReport
from khpl_migrate.verify.status import VerifyReport, verify

REHEARSAL_BUCKET = "khpl-rehearsal"  # a name no real bucket of the operator's is confused with
LOCAL_BUCKET = "khpl-local"  # `local up --source` when no bucket is configured

# -- the source --------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceCopy:
    """The operator's source, read once: where from, and its bytes."""

    origin: str  # the path, or s3://bucket/key
    body: bytes
    from_aws: bool


def read_source(where: str, settings: Settings) -> SourceCopy:
    """A local file, or `s3://bucket/key` with one GetObject (read-only: nothing else is
    sent to AWS), with the configuration every command uses."""
    if where.startswith("s3://"):
        bucket, _, key = where[len("s3://") :].partition("/")
        if not bucket or not key:
            raise errors.ConfigError(
                f"{where} names no object",
                f"pass s3://BUCKET/KEY, e.g. s3://my-bucket/{DEFAULT_SOURCE_KEY}",
            )
        found = Store(settings).get_object(bucket, key)
        if found is None:
            raise errors.SourceMissing(
                f"{where} does not exist",
                "check the bucket and the key: the object the app writes, registrations.json",
            )
        return SourceCopy(where, found[0], from_aws=True)
    path = Path(where)
    try:
        return SourceCopy(str(path), path.read_bytes(), from_aws=False)
    except OSError as exc:
        raise errors.ConfigError(
            f"Cannot read {path}: {exc.strerror}",
            "pass the path of a copy of registrations.json, or s3://BUCKET/KEY",
        ) from None


def load_source(settings: Settings, body: bytes) -> None:
    """The bucket created (if missing) and `body` put as the source: a local stack seeded."""
    store = Store(settings, traced=False)
    bucket = settings.require_bucket()
    store.create_bucket(bucket)
    store.put_object(bucket, settings.source_key, body, "application/json")


# -- the rehearsal -----------------------------------------------------------------------


class Step(StrEnum):
    """The guide's steps a rehearsal (and the demo) runs, by code; `report/` has the guide's
    titles."""

    VERIFY = "verify"
    CREATE_TABLE = "create_table"
    PLAN = "plan"
    APPLY = "apply"
    DEEP = "deep"

    @property
    def command(self) -> str:
        """The command this step is, as the operator will run it against AWS."""
        return {
            "verify": "verify",
            "create_table": "create-table",
            "plan": "migrate",
            "apply": "migrate --apply",
            "deep": "verify --deep",
        }[self.value]


@dataclass(frozen=True)
class Stage:
    """The rehearsal's own stack, holding a copy of the source."""

    stack: local.Stack
    settings: Settings  # points at the stack, its bucket and the operator's table name
    notes: list[str]  # what the operator should know about the stack (no Java, say)
    source: SourceCopy

    def env(self) -> dict[str, str]:
        """The environment that points a shell at the rehearsal (what `--keep` prints)."""
        return {
            **self.stack.env(),
            "REACT_APP_S3_BUCKET_NAME": REHEARSAL_BUCKET,
            "REACT_APP_DYNAMODB_TABLE_NAME": self.settings.table,
            "KHPL_STATE_DIR": str(self.settings.state_dir),
        }


@contextmanager
def staged(
    where: str, settings: Settings, state_dir: Path, *, keep: bool = False
) -> Iterator[Stage]:
    """Read the source, start a fresh stack under `state_dir/rehearsal`, load the source
    into it; the stack is stopped afterwards unless `keep`."""
    local.require_moto()  # before the source is read: without the stack, no point
    copy = read_source(where, settings)
    folder = state_dir / "rehearsal"
    local.stop(folder)  # what a rehearsal killed earlier left running
    stack, notes = local.start(folder)
    try:
        env = {
            **stack.env(),
            "REACT_APP_S3_BUCKET_NAME": REHEARSAL_BUCKET,
            "REACT_APP_DYNAMODB_TABLE_NAME": settings.table,
        }
        # Only the stack's environment: the operator's keys and .env stay out of it.
        rehearsal = settings_mod.load(
            env=env,
            state_dir=folder,
            workers=settings.workers,
            records_path=settings.records_path,
        )
        load_source(rehearsal, copy.body)
        yield Stage(stack, rehearsal, notes, copy)
    finally:
        if not keep:
            local.stop(folder)


class Watch(Protocol):
    """Told as each step begins and ends, so the steps can be shown as they run."""

    def begin(self, step: Step) -> None: ...

    def end(self, step: Step, rehearsal: Rehearsal) -> None: ...


class _Unwatched:
    def begin(self, step: Step) -> None:
        pass

    def end(self, step: Step, rehearsal: Rehearsal) -> None:
        pass


@dataclass
class Rehearsal:
    """Each step's result as it comes, the time each took here, and the estimate."""

    source: SourceCopy
    link: Link
    region: str | None
    before: VerifyReport | None = None
    table: TableResult | None = None
    plan: Plan | None = None
    dry: RunResult | None = None
    run: RunResult | None = None
    after: VerifyReport | None = None
    deep: DeepReport | None = None
    seconds: dict[Step, float] = field(default_factory=dict)
    estimate: Estimate | None = None

    @property
    def ok(self) -> bool:
        """The run failed no record and verify --deep found everything in place."""
        if self.run is None or self.deep is None or self.after is None:
            return False
        return self.run.ok and self.deep.ok and self.deep.complete(self.after)

    def largest(self, count: int = 5) -> list[PlanEntry]:
        """The largest items the run will write (DynamoDB's size, 400 KB at most)."""
        entries = self.plan.entries if self.plan is not None else ()
        created = [e for e in entries if e.action is Action.CREATE and e.item_size is not None]
        return sorted(created, key=lambda e: (-(e.item_size or 0), e.index))[:count]

    def to_json(self) -> dict[str, Any]:
        """`run` is exactly what `migrate --apply --json` prints for this run."""
        return {
            "source": {
                "origin": self.source.origin,
                "bytes": len(self.source.body),
                "readFromAws": self.source.from_aws,
            },
            "ok": self.ok,
            "verify": self.before.to_json() if self.before else None,
            "createTable": self.table.to_json() if self.table else None,
            "plan": self.dry.to_json() if self.dry else None,
            "run": self.run.to_json() if self.run else None,
            "verifyDeep": (
                {**self.after.to_json(), "deep": self.deep.to_json()}
                if self.after and self.deep
                else None
            ),
            "largestItems": [
                {
                    "index": e.index,
                    "id": e.id,
                    "itemSize": e.item_size,
                    "images": e.images,
                    "imageBytes": e.image_bytes,
                }
                for e in self.largest()
            ],
            "seconds": {step.command: round(s, 3) for step, s in self.seconds.items()},
            "estimate": self.estimate.to_json() if self.estimate else None,
        }


def rehearse(
    stage: Stage,
    *,
    link: Link = DEFAULT_LINK,
    region: str | None = None,
    watch: Watch | None = None,
    progress: Callable[[], Progress] = NullProgress,
) -> Rehearsal:
    """The guide's steps on the stage, as `migrate` runs them, then the estimate.

    `region` is the operator's (for the price); `progress` makes each step's bar.
    """
    watch = watch or _Unwatched()
    settings = stage.settings
    store = Store(settings, traced=False)
    done = Rehearsal(stage.source, link, region)

    def step(which: Step, work: Callable[[], None]) -> None:
        watch.begin(which)
        began = time.monotonic()
        work()
        done.seconds[which] = time.monotonic() - began
        watch.end(which, done)

    def plan() -> None:
        done.plan = build_plan(store, settings, progress=progress())
        done.dry = result_of_plan(done.plan)

    def run() -> None:
        assert done.plan is not None
        runner = make_runner(settings.workers)
        done.run = apply_plan(store, settings, done.plan, runner=runner, progress=progress())

    def deep() -> None:
        done.after, done.deep = deep_verify(store, settings)

    step(Step.VERIFY, lambda: setattr(done, "before", verify(store, settings)))
    step(Step.CREATE_TABLE, lambda: setattr(done, "table", create_table(store, settings)))
    step(Step.PLAN, plan)
    step(Step.APPLY, run)
    step(Step.DEEP, deep)
    assert done.plan is not None and done.run is not None
    created = [e.item_size or 0 for e in done.plan.entries if e.action is Action.CREATE]
    done.estimate = estimate(
        source_bytes=len(stage.source.body),
        item_sizes=created,
        images=done.run.images,
        image_bytes=done.run.image_bytes,
        workers=settings.workers,
        link=link,
        region=region,
    )
    return done


def load_file(stack: local.Stack, bucket: str, path: Path) -> int:
    """`local up --source FILE`: the file put into `bucket` of a running stack as the
    source (`registrations.json`); its size."""
    settings = settings_mod.load(env={**stack.env(), "REACT_APP_S3_BUCKET_NAME": bucket})
    body = read_source(str(path), settings).body
    load_source(settings, body)
    return len(body)
