"""DynamoDB's expressions and values: conditions on what an item held when it was read.

An update or delete is conditional on each path still holding the value read (or,
`ABSENT`, holding none); names and values always go through placeholders, never
spliced into the expression. Numbers stay exact `Decimal`s both ways (boto3's
serialiser), never floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# An update or delete is conditional on what the item held when it was read: each
# path must still hold this value, or (ABSENT) hold none.
Path = tuple[str, ...]  # ("paymentStatus",), or ("imageUploadResults", "userPhoto")
ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()


@dataclass(frozen=True)
class Update:
    """What one UpdateItem sets and removes, and what it expects to find first."""

    set: Mapping[Path, Any] = field(default_factory=dict)
    remove: tuple[Path, ...] = ()
    expect: Mapping[Path, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.set or self.remove)


class Expression:
    """Placeholders for attribute names and values: no name or value is spliced in."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def path(self, path: Path) -> str:
        out = []
        for part in path:
            token = next((k for k, v in self.names.items() if v == part), None)
            if token is None:
                token = f"#n{len(self.names)}"
                self.names[token] = part
            out.append(token)
        return ".".join(out)

    def value(self, value: Any) -> str:
        token = f":v{len(self.values)}"
        self.values[token] = _serializer.serialize(value)
        return token

    def condition(self, expect: Mapping[Path, Any]) -> str:
        return " AND ".join(
            f"attribute_not_exists({self.path(p)})"
            if v is ABSENT
            else f"{self.path(p)} = {self.value(v)}"
            for p, v in expect.items()
        )

    def request(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


class ItemRejected(Exception):
    """DynamoDB refused one item (ValidationException); that record fails, the run goes on."""


def strings_of(value: Mapping[str, Any], prefix: str, found: set[str]) -> None:
    """The keys under `prefix` named in one attribute value as DynamoDB sends it: a string
    that is such a key, or holds one (a URL to it, a path with a leading slash)."""
    if isinstance(value.get("S"), str):
        found.update(key_named(value["S"], prefix))
    elif "SS" in value:
        for text in value["SS"]:
            found.update(key_named(text, prefix))
    elif "M" in value:
        for inner in value["M"].values():
            strings_of(inner, prefix, found)
    elif "L" in value:
        for inner in value["L"]:
            strings_of(inner, prefix, found)


def key_named(text: str, prefix: str) -> set[str]:
    """The S3 key under `prefix` a string names: itself, or the part of a URL or path
    from the prefix on (without a query or fragment)."""
    at = text.find(prefix)
    if at < 0:
        return set()
    return {text[at:].split("?", 1)[0].split("#", 1)[0]}


def to_attribute_values(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def from_attribute_values(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}
