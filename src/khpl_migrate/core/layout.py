"""Where the tool keeps things: every S3 key and prefix it writes or reads, in one place.

The guide fixes two of them (`registration-images/{id}/{name}.{ext}` and
`migration-backup-{ISO timestamp}-registrations.json`); the rest are ours
(docs/design.md, "Where things are stored"). `policy.py` derives the IAM
resource patterns from these prefixes, so a key that moves here moves there too.
Pure: no I/O.
"""

from __future__ import annotations

import posixpath
import re
from datetime import date
from pathlib import Path

IMAGE_PREFIX = "registration-images/"
BACKUP_PREFIX = "migration-backup-"
RUNS_PREFIX = "migration-runs/"
ARCHIVE_PREFIX = "archive/"
MANIFEST_NAME = "manifest.jsonl"


def image_key(record_id: str, name: str, ext: str) -> str:
    """The guide's key of one image: registration-images/{id}/{name}.{ext}."""
    return f"{IMAGE_PREFIX}{record_id}/{name}.{ext}"


def image_version_key(record_id: str, name: str, ext: str, sha256: str) -> str:
    """Where sync puts an image the source changed: the guide's key is taken by the old
    bytes, which stay; the new bytes get a name of their own, from their content."""
    return f"{IMAGE_PREFIX}{record_id}/{name}-{sha256[:16]}.{ext}"


def is_image_key(key: str) -> bool:
    return key.startswith(IMAGE_PREFIX)


def record_of_image_key(key: str) -> str | None:
    """The record id in registration-images/{id}/...; None for any other key."""
    rest = key[len(IMAGE_PREFIX) :] if is_image_key(key) else ""
    return rest.split("/", 1)[0] if "/" in rest else None


def backup_key(source_key: str, started_iso: str) -> str:
    """The guide's backup name, beside the source: migration-backup-{ISO}-registrations.json."""
    return f"{BACKUP_PREFIX}{started_iso}-{posixpath.basename(source_key)}"


def backup_key_of_run(source_key: str, run_id: str) -> str | None:
    """The backup a run took, from its id alone (the id starts with the run's start, which
    names the backup): how a run whose manifest never reached S3 is still found."""
    stamp = run_id.split("-", 1)[0]
    if len(stamp) != 19 or stamp[8] != "T" or not stamp.endswith("Z"):
        return None
    iso = (
        f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:"
        f"{stamp[13:15]}.{stamp[15:18]}Z"
    )
    return backup_key(source_key, iso)


def run_prefix(run_id: str) -> str:
    """Everything a run keeps in the bucket: its manifest(s), shards' parts, rollbacks."""
    return f"{RUNS_PREFIX}{run_id}/"


def manifest_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}{MANIFEST_NAME}"


def shard_part_key(run_id: str, index: int, attempt: str | None = None) -> str:
    """A shard's manifest part: `shard-{I}.jsonl`, written once; a later attempt of the
    same index (re-run, or started twice) writes `shard-{I}.{attempt}.jsonl` beside it."""
    name = f"shard-{index}.{attempt}.jsonl" if attempt else f"shard-{index}.jsonl"
    return f"{RUNS_PREFIX}{run_id}/{name}"


def shard_start_key(run_id: str, index: int, attempt: str) -> str:
    """The marker an attempt of a shard leaves when it starts: running, until its part."""
    return f"{RUNS_PREFIX}{run_id}/shard-{index}.{attempt}.started"


_SHARD_FILE = re.compile(r"^shard-(\d+)(?:\.([0-9a-f]+))?\.(jsonl|started)$")


def parse_shard_key(key: str) -> tuple[str, int, str | None, bool] | None:
    """(run id, index, attempt, is a part) of a shard's part or start marker; else None."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != RUNS_PREFIX:
        return None
    found = _SHARD_FILE.match(parts[2])
    if found is None:
        return None
    return parts[1], int(found[1]), found[2], found[3] == "jsonl"


def rollback_key(run_id: str, stamp: str) -> str:
    """The record an applied rollback leaves beside the run's manifest."""
    return f"{RUNS_PREFIX}{run_id}/rollback-{stamp}.json"


def is_rollback_key(key: str) -> bool:
    parts = key.split("/")
    return (
        len(parts) == 3
        and f"{parts[0]}/" == RUNS_PREFIX
        and parts[2].startswith("rollback-")
        and parts[2].endswith(".json")
    )


def archive_key(source_key: str, day: date) -> str:
    """archive/registrations-2026-11-28.json for registrations.json on that day (UTC)."""
    stem, ext = posixpath.splitext(posixpath.basename(source_key))
    return f"{ARCHIVE_PREFIX}{stem}-{day.isoformat()}{ext or '.json'}"


def local_manifest(state_dir: Path, run_id: str) -> Path:
    """The local copy of a run's manifest, written as the run goes."""
    return state_dir / "runs" / run_id / MANIFEST_NAME


def local_shard_part(state_dir: Path, run_id: str, index: int, attempt: str) -> Path:
    """The local copy of one attempt's shard part (one folder per run, as for a run)."""
    return state_dir / "runs" / run_id / f"shard-{index}.{attempt}.jsonl"


def local_rollback(state_dir: Path, run_id: str, stamp: str) -> Path:
    """This machine's journal of one applied rollback of a run, written as it goes."""
    return state_dir / "runs" / run_id / f"rollback-{stamp}.jsonl"


def local_rollbacks(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "runs").glob("*/rollback-*.jsonl"))


def local_manifests(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "runs").glob(f"*/{MANIFEST_NAME}"))
