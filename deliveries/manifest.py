"""A delivery's manifest: what was delivered, from which snapshots, under which policy, file by file.

Written last, after every file it names, by an atomic rename; signed (``manifest.json.jws``). The
manifest's bytes are what is signed, so it is written once and never reformatted.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.jws"


@dataclass(frozen=True)
class FileEntry:
    """One delivered file."""

    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """Everything a recipient needs to check a delivery and an operator needs to prove it."""

    delivery_id: str
    grant_id: str
    grant_version: int
    recipient: str
    dataset: str
    filters: dict[str, Any]
    columns: list[str]
    format: str
    policy_version: str
    masking: dict[str, str]
    source_table: str
    snapshot_from: int | None
    snapshot_to: int | None
    full: bool
    created_at: str
    files: list[FileEntry] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def size(self) -> int:
        """Bytes of every file together."""
        return sum(f.bytes for f in self.files)

    def to_bytes(self) -> bytes:
        doc = asdict(self)
        doc["totals"] = {"files": len(self.files), "rows": self.rows, "bytes": self.size}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        doc = orjson.loads(raw)
        doc.pop("totals", None)
        files = [FileEntry(**f) for f in doc.pop("files")]
        return cls(**doc, files=files)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
