"""The simulator's JSON Lines file format: one Kafka record per line, bytes kept exactly.

A line is ``{"topic", "key", "headers": {name: text}, "value"}``; a value that is not valid
UTF-8 is stored as ``"value_b64"`` instead, and a tombstone has ``"value": null``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import orjson

from contract.records import OutRecord
from market.errors import InputFileError
from market.messages import SimRecord

_READ_BUFFER = 1 << 20


def record_line(rec: SimRecord) -> bytes:
    """One record as a JSON line (with the trailing newline)."""
    doc: dict[str, object] = {
        "topic": rec.topic,
        "key": rec.key.decode() if rec.key is not None else None,
        "headers": {k: v.decode() for k, v in rec.headers},
    }
    if rec.value is None:
        doc["value"] = None
    else:
        try:
            doc["value"] = rec.value.decode("utf-8")
        except UnicodeDecodeError:
            doc["value_b64"] = base64.b64encode(rec.value).decode()
    return orjson.dumps(doc) + b"\n"


def write_records(records: Iterable[SimRecord], out: IO[bytes]) -> int:
    """Write ``records`` as JSON Lines to ``out``; return how many were written."""
    n = 0
    buf: list[bytes] = []
    for rec in records:
        buf.append(record_line(rec))
        n += 1
        if len(buf) >= 2000:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    return n


def read_records(path: Path) -> Iterator[OutRecord]:
    """Read a simulator JSON Lines file back as records to publish.

    Raises:
        InputFileError: if the file is missing or a line is not a record.
    """
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    # a large buffer: lines are kilobytes long, and the default 8 KiB one costs a read per line
    with path.open("rb", buffering=_READ_BUFFER) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.isspace():  # blank (never empty); isspace() stops at the first non-blank byte, strip() copies
                continue
            try:
                doc = orjson.loads(line)
                topic = doc["topic"]
                key = doc.get("key")
                headers = tuple([(k, v.encode()) for k, v in (doc.get("headers") or {}).items()])
                if "value_b64" in doc:
                    value: bytes | None = base64.b64decode(doc["value_b64"], validate=True)
                elif doc.get("value") is None:
                    value = None
                else:
                    value = doc["value"].encode("utf-8")
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
                raise InputFileError(f"{path}:{lineno}: not a simulator record ({exc})") from exc
            if not isinstance(topic, str) or not topic:
                raise InputFileError(f"{path}:{lineno}: 'topic' must be a non-empty string")
            yield OutRecord(topic, key.encode() if key is not None else None, value, headers)
