"""Deliveries for their recipients: the list, each manifest, each file; and the public keys to verify them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from access.principal import Principal
from api.services.errors import NotFoundError
from lakehouse.storage import filesystem_for_location, storage_properties
from lakehouse.store import Store
from lakehouse.tables import DELIVERIES

OPERATORS = frozenset({"admin", "auditor"})
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.jws"


@dataclass
class DeliveryService:
    """What was delivered to whom, served to the recipient (and to operators)."""

    _store: Store
    _jwks_file: Path
    _chunk: int = 1 << 20

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        """The caller's deliveries, newest first (every delivery for admins and auditors)."""
        rows = self._store.read(DELIVERIES).to_pylist()
        mine = [r for r in rows if principal.role in OPERATORS or r["recipient"] == principal.subject]
        mine.sort(key=lambda r: r["created_at"], reverse=True)
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in mine]

    def _delivery(self, principal: Principal, delivery_id: str) -> dict[str, Any]:
        for r in self._store.read(DELIVERIES).to_pylist():
            if r["delivery_id"] == delivery_id and (principal.role in OPERATORS or r["recipient"] == principal.subject):
                return r
        raise NotFoundError(f"no delivery {delivery_id!r}", "unknown_delivery")  # others' are simply not there

    def _read(self, location: str, name: str) -> bytes:
        fs, root, _ = filesystem_for_location(location, storage_properties(self._store.settings))
        with fs.open_input_stream(f"{root}/{name}") as fh:
            data: bytes = fh.read()
            return data

    def manifest(self, principal: Principal, delivery_id: str) -> bytes:
        """The signed manifest's bytes, exactly as written.

        Raises:
            NotFoundError: for a delivery that is not the caller's (or not there).
        """
        return self._read(str(self._delivery(principal, delivery_id)["location"]), MANIFEST)

    def file(self, principal: Principal, delivery_id: str, name: str) -> tuple[Iterator[bytes], int]:
        """A delivered file (one the manifest names, or the signature), streamed; and its size.

        Raises:
            NotFoundError: for a delivery that is not the caller's, or a name its manifest does not list.
        """
        row = self._delivery(principal, delivery_id)
        listed = {f["name"] for f in orjson.loads(self._read(str(row["location"]), MANIFEST))["files"]}
        if name not in listed | {MANIFEST, SIGNATURE}:
            raise NotFoundError(f"delivery {delivery_id} has no file {name[:200]!r}", "unknown_file")
        fs, root, _ = filesystem_for_location(str(row["location"]), storage_properties(self._store.settings))
        path = f"{root}/{name}"
        size = fs.get_file_info(path).size or 0

        def chunks() -> Iterator[bytes]:
            with fs.open_input_stream(path) as fh:
                while block := fh.read(self._chunk):
                    yield block

        return chunks(), size

    def keys(self) -> dict[str, Any]:
        """The JWKS of every key deliveries were signed with (empty before the first delivery)."""
        if not self._jwks_file.is_file():
            return {"keys": []}
        doc: dict[str, Any] = orjson.loads(self._jwks_file.read_bytes())
        return doc
