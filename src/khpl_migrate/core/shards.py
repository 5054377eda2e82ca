"""Which shard a record belongs to, and which shard this process is. Pure: no I/O.

A sharded run (docs/design.md, "Sharded runs") splits the records of one
snapshot among N processes by a stable hash of their id: SHA-256 of the id's
UTF-8, mod N. Python's own `hash()` is salted per process, so two shards would
disagree; SHA-256 is the same everywhere, and equal ids (duplicates) land in
one shard, where the plan's duplicate check still sees them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from khpl_migrate.core.errors import ConfigError

# The index each engine gives a child: AWS Batch array jobs, Kubernetes Indexed Jobs.
BATCH_INDEX = "AWS_BATCH_JOB_ARRAY_INDEX"
K8S_INDEX = "JOB_COMPLETION_INDEX"
MAX_SHARDS = 10_000  # AWS Batch's largest array; more shards than that gains nothing here


def shard_of(record_id: str | None, shards: int) -> int:
    """The shard of a record: SHA-256 of its id's UTF-8, mod `shards`; no id: shard 0
    (the record fails its checks there, once)."""
    if record_id is None or shards <= 1:
        return 0
    # surrogatepass: an id with a lone surrogate (hostile JSON) still hashes, stably.
    digest = hashlib.sha256(record_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest, "big") % shards


def pick_index(choice: str, env: Mapping[str, str], shards: int) -> int:
    """This process's shard: `choice` is an index, or "auto" for the engine's variable.

    An explicit index wins over the variables; with "auto", the two variables
    set to different values, neither set, or a value outside 0..shards-1 is an
    error that names the cause.
    """
    if choice != "auto":
        return _in_range(_number(choice, "--shard"), shards, "--shard")
    found = {name: env[name] for name in (BATCH_INDEX, K8S_INDEX) if env.get(name, "") != ""}
    if not found:
        raise ConfigError(
            f"--shard auto found neither {BATCH_INDEX} nor {K8S_INDEX} in the environment",
            "run it as an AWS Batch array child or a Kubernetes Indexed Job pod, "
            "or give the index: --shard I",
        )
    values = {name: _number(value, name) for name, value in found.items()}
    if len(set(values.values())) > 1:
        shown = ", ".join(f"{name}={value}" for name, value in found.items())
        raise ConfigError(
            f"--shard auto found two different indexes: {shown}",
            "unset the one the engine did not set, or give the index: --shard I",
        )
    name, value = next(iter(values.items()))
    return _in_range(value, shards, name)


def _number(text: str, what: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdecimal()):  # "²" is a digit, not a number
        raise ConfigError(
            f"{what} is {text!r}, not a shard index", "a shard index is a whole number from 0"
        )
    return int(text)


def _in_range(index: int, shards: int, what: str) -> int:
    if not 0 <= index < shards:
        raise ConfigError(
            f"{what} is {index}, but the run has {shards} shard{'s' if shards != 1 else ''}",
            f"give an index from 0 to {shards - 1} (see `khpl-migrate runs`)",
        )
    return index
