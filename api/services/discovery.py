"""Discovery: which topics and tables the store holds, their snapshots and the message schemas."""

from __future__ import annotations

from typing import Any

from api.services.errors import NotFoundError
from contract.schemas import SchemaKey, list_schemas, load_schema
from contract.topics import load_topic_catalogue
from lakehouse.store import Store
from lakehouse.tables import TABLES


class DiscoveryService:
    """Topics, snapshots and schemas."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._catalogue = load_topic_catalogue()

    def topics(self) -> list[dict[str, object]]:
        """Every MHHS topic: partitions, rows held, settlement dates held, next offsets per partition."""
        held = self._store.held_offsets(self._store.resolve("events"))
        inventory = self._store.topic_inventory()
        out: list[dict[str, object]] = []
        for spec in self._catalogue.topics:
            inv = inventory.get(spec.name)
            out.append(
                {
                    "topic": spec.name,
                    "interface": spec.interface,
                    "domain": spec.domain,
                    "partitions": spec.partitions,
                    "rows": inv.rows if inv else 0,
                    "earliest_settlement_date": inv.earliest.isoformat() if inv and inv.earliest else None,
                    "latest_settlement_date": inv.latest.isoformat() if inv and inv.latest else None,
                    "next_offsets": {str(p): n for (t, p), n in sorted(held.items()) if t == spec.name},
                }
            )
        return out

    def snapshots(self, table: str) -> list[dict[str, object]]:
        """Retained snapshots of ``table``, oldest first.

        Raises:
            NotFoundError: if there is no such table.
        """
        if table not in TABLES:
            raise NotFoundError(f"no table {table!r}", "unknown_table")
        return [s.to_json(with_offsets=False) for s in self._store.snapshots(table)]

    def schema(self, interface: str, version: str) -> dict[str, Any]:
        """The JSON Schema of an interface version.

        Raises:
            NotFoundError: if there is none.
        """
        if SchemaKey(interface, version) not in list_schemas():
            raise NotFoundError(f"no schema for {interface} version {version}", "unknown_schema")
        return load_schema(interface, version)
