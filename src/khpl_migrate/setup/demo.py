"""`khpl-migrate demo`: the guide's whole job on a fresh local stack with sample registrations.

`running` starts the stack (DynamoDB Local and moto, `local.py`), seeds a
bucket with sample registrations (`sample.py`) and stops the stack afterwards
unless asked to keep it. The command line then runs the guide's steps against
it, exactly as the operator would against AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from khpl_migrate import settings as settings_mod
from khpl_migrate.aws import Store
from khpl_migrate.settings import Settings
from khpl_migrate.setup import local, sample

DEMO_BUCKET = "khpl-demo-registrations"


@dataclass(frozen=True)
class Demo:
    stack: local.Stack
    settings: Settings  # points every command at the stack and the demo bucket
    notes: list[str]  # what the operator should know about the stack (no Java, say)
    records: int
    source_bytes: int

    def env(self) -> dict[str, str]:
        """The environment that points a shell at the demo (what `--keep` prints)."""
        return {**self.stack.env(), "REACT_APP_S3_BUCKET_NAME": DEMO_BUCKET}


@contextmanager
def running(state_dir: Path, records: int, *, keep: bool = False) -> Iterator[Demo]:
    """A fresh stack under `state_dir/demo` with the sample source in its bucket."""
    demo_dir = state_dir / "demo"
    local.stop(demo_dir)  # what a demo killed earlier left running
    stack, notes = local.start(demo_dir)
    try:
        env = {**stack.env(), "REACT_APP_S3_BUCKET_NAME": DEMO_BUCKET}
        settings = settings_mod.load(env=env, state_dir=state_dir)
        store = Store(settings)
        store.create_bucket(DEMO_BUCKET)
        body = sample.source_bytes(sample.registrations(records))
        store.put_object(DEMO_BUCKET, settings.source_key, body, "application/json")
        yield Demo(stack, settings, notes, records, len(body))
    finally:
        if not keep:
            local.stop(demo_dir)
