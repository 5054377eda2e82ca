"""A run's manifest read back: its header, record lines, intents and summary, typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from khpl_migrate.kernel.manifest.lines import (
    WRITTEN,
    IntentLine,
    Outcome,
    RecordLine,
    RunHeader,
    RunKind,
    SummaryLine,
    decode,
)
from khpl_migrate.kernel.manifest.rollbacks import Rollback, RollbackState


@dataclass(frozen=True)
class ShardState:
    """One shard of a sharded run, from its parts and start markers in the bucket."""

    index: int
    state: Literal["done", "running", "failed", "missing"]
    attempts: int  # how many times it was started
    why: str | None = None  # a failed shard's reason

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "state": self.state,
            "attempts": self.attempts,
            "why": self.why,
        }


@dataclass(frozen=True)
class Manifest:
    """A run's manifest, read back: its header, its record lines, its summary (if it ended)."""

    run_id: str
    key: str
    header: RunHeader
    records: tuple[RecordLine, ...]
    summary: SummaryLine | None
    intents: tuple[IntentLine, ...] = ()  # a sync's, each written before its change
    local: bool = False  # read from this machine's copy: the run never uploaded it
    shards: tuple[ShardState, ...] = ()  # a sharded run's, each shard's state
    rollbacks: tuple[Rollback, ...] = ()  # its applied rollbacks, oldest first (`list_runs`)

    @property
    def rollback(self) -> Rollback | None:
        """The last rollback of this run, which says how far it is undone."""
        return self.rollbacks[-1] if self.rollbacks else None

    @property
    def rollback_state(self) -> RollbackState:
        return self.rollback.state if self.rollback else "not_rolled_back"

    @property
    def kind(self) -> RunKind:
        return self.header.kind

    @property
    def table(self) -> str | None:
        return self.header.table

    @property
    def started(self) -> str:
        return self.header.started_at

    @property
    def finished(self) -> str | None:
        return self.summary.finished_at if self.summary else None

    @property
    def stopped(self) -> str | None:
        """Why the run stopped early, if it did."""
        return self.summary.stopped if self.summary else None

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.records if r.outcome == outcome)

    @property
    def written(self) -> int:
        """Records this run changed: migrated, or for a sync also updated and deleted."""
        return sum(1 for r in self.records if r.outcome in WRITTEN)

    @property
    def counts(self) -> dict[str, int]:
        """The run's numbers as `runs` and the review page give them (one source for both):
        records written to, left as they were (skipped, or a sync's unchanged), failed."""
        return {
            "written": self.written,
            "skipped": self.count(Outcome.SKIPPED) + self.count(Outcome.UNCHANGED),
            "failed": self.count(Outcome.FAILED),
        }

    def to_json(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for line in self.records:
            outcomes[line.outcome] = outcomes.get(line.outcome, 0) + 1
        return {
            "runId": self.run_id,
            "startedAt": self.started,
            "finishedAt": self.finished,
            "kind": self.kind,
            "migrated": self.count(Outcome.MIGRATED),
            "skipped": self.count(Outcome.SKIPPED),
            "failed": self.count(Outcome.FAILED),
            "outcomes": outcomes,
            "counts": self.counts,
            "backupKey": self.header.backup_key,
            "manifestKey": self.key,
            "stopped": self.stopped,
            "onlyOnThisMachine": self.local,
            "rollbackState": self.rollback_state,
            "rollback": self.rollback.to_json() if self.rollback else None,
            **({"shards": [shard.to_json() for shard in self.shards]} if self.shards else {}),
        }


def parse_manifest(run_id: str, key: str, body: bytes) -> Manifest:
    """A manifest's lines, typed. One that does not decode is skipped (cut short by a
    crash, say): the lines before it still count."""
    header = RunHeader(run_id=run_id)
    records: list[RecordLine] = []
    intents: list[IntentLine] = []
    summary: SummaryLine | None = None
    for raw in body.splitlines():
        line = decode(raw) if raw.strip() else None
        if isinstance(line, RunHeader):
            header = line
        elif isinstance(line, RecordLine):
            records.append(line)
        elif isinstance(line, IntentLine):
            intents.append(line)
        elif isinstance(line, SummaryLine):
            summary = line
    return Manifest(run_id, key, header, tuple(records), summary, tuple(intents))
