"""The versioned JSON Schemas, one per interface and schema version, shipped as data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import orjson


@dataclass(frozen=True, slots=True, order=True)
class SchemaKey:
    """An interface and a schema version, e.g. ``SchemaKey("IF-021", "001")``."""

    interface: str
    version: str


@cache
def list_schemas() -> tuple[SchemaKey, ...]:
    """Every (interface, version) with a schema in ``contract/schemas``."""
    root = resources.files("contract").joinpath("schemas")
    keys = [
        SchemaKey(folder.name, item.name.removesuffix(".json"))
        for folder in root.iterdir()
        if folder.is_dir() and folder.name.startswith("IF-")
        for item in folder.iterdir()
        if item.name.endswith(".json")
    ]
    return tuple(sorted(keys))


@cache
def _load(interface: str, version: str) -> bytes:
    if SchemaKey(interface, version) not in list_schemas():
        raise KeyError(f"no schema for {interface} version {version}")
    path = resources.files("contract").joinpath("schemas", interface, f"{version}.json")
    return path.read_bytes()


def load_schema(interface: str, version: str) -> dict[str, Any]:
    """The JSON Schema of ``interface`` at ``version`` (a fresh copy).

    Raises:
        KeyError: if there is no such schema.
    """
    schema: dict[str, Any] = orjson.loads(_load(interface, version))
    return schema
