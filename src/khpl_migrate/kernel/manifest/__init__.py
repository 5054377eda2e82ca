"""The run manifest: one typed, versioned schema for every line, written and read here only.

A run writes JSON Lines, appended (and flushed) locally as it goes and uploaded
to `migration-runs/{run_id}/manifest.jsonl` when it ends, however it ends
(docs/design.md, "Where things are stored"): a `run` header, a `record` line
per record outcome, a sync's `intent` line before each change and `repair`
lines, and a `summary`. Rollback, verify, sync's baselines, `runs` and the
review page read it back through `parse_manifest`. It holds ids, keys, sizes,
hashes and run ids: no personal data.

Every line is a msgspec `Struct`: one definition, checked as it is decoded.
`SCHEMA` is the version a header carries; a manifest of the released 0.1.0
(no `schema`, a sync's planned counts and "left untouched" in words) reads
the same (`tests/fixtures/manifests-0.1.0`). A line that does not decode (cut
short by a crash, or of a type this version does not know) is skipped: the
lines before it still count. `lines.py` holds the lines and their codec,
`writer.py` the run's writer, `read.py` a manifest read back, `rollbacks.py` a
rollback's record and journal.
"""

from khpl_migrate.kernel.manifest.lines import (
    NDJSON,
    SCHEMA,
    WRITTEN,
    ImageLine,
    ImageMove,
    IntentLine,
    Line,
    Outcome,
    RecordLine,
    RepairLine,
    RunHeader,
    RunKind,
    SourceVersion,
    SummaryLine,
    decode,
    encode,
    run_header,
)
from khpl_migrate.kernel.manifest.read import Manifest, ShardState, parse_manifest
from khpl_migrate.kernel.manifest.rollbacks import (
    IN_PROGRESS,
    JournalLine,
    Rollback,
    RollbackEnded,
    RollbackRecord,
    RollbackState,
    StepIntent,
    StepLine,
    StepOutcome,
    decode_record,
    encode_record,
    journal_lines,
)
from khpl_migrate.kernel.manifest.writer import ManifestWriter

__all__ = [
    "IN_PROGRESS",
    "NDJSON",
    "SCHEMA",
    "WRITTEN",
    "ImageLine",
    "ImageMove",
    "IntentLine",
    "JournalLine",
    "Line",
    "Manifest",
    "ManifestWriter",
    "Outcome",
    "RecordLine",
    "RepairLine",
    "Rollback",
    "RollbackEnded",
    "RollbackRecord",
    "RollbackState",
    "RunHeader",
    "RunKind",
    "ShardState",
    "SourceVersion",
    "StepIntent",
    "StepLine",
    "StepOutcome",
    "SummaryLine",
    "decode",
    "decode_record",
    "encode",
    "encode_record",
    "journal_lines",
    "parse_manifest",
    "run_header",
]
