"""Kafka positions recorded in Iceberg snapshot summaries: the store's own source of truth.

Every commit by the ingest writer stores, under ``mhhs.offsets``, the next offset of every
topic-partition landed so far, per consumer group, merged across workers. Other commits
(compaction, refinement) carry the value forward unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

OFFSETS_KEY = "mhhs.offsets"
TP = tuple[str, int]
GroupOffsets = dict[str, dict[TP, int]]


def decode_offsets(raw: str | None) -> GroupOffsets:
    """Parse the summary value: ``{group: {"topic:partition": next_offset}}``."""
    if not raw:
        return {}
    doc = orjson.loads(raw)
    out: GroupOffsets = {}
    for group, parts in doc.items():
        out[group] = {}
        for tp, offset in parts.items():
            topic, _, partition = tp.rpartition(":")
            out[group][(topic, int(partition))] = int(offset)
    return out


def encode_offsets(offsets: GroupOffsets) -> str:
    """Serialise offsets deterministically (sorted) for a snapshot summary."""
    doc = {group: {f"{t}:{p}": n for (t, p), n in sorted(parts.items())} for group, parts in sorted(offsets.items())}
    return orjson.dumps(doc).decode()


def merge_offsets(held: GroupOffsets, group: str, landed: Mapping[TP, int]) -> GroupOffsets:
    """``held`` with ``landed`` merged into ``group``, never moving a partition backwards."""
    out = {g: dict(parts) for g, parts in held.items()}
    mine = out.setdefault(group, {})
    for tp, offset in landed.items():
        if offset > mine.get(tp, -1):
            mine[tp] = offset
    return out


def snapshot_offsets(table: Table, snapshot: Snapshot | None = None) -> GroupOffsets:
    """The offsets recorded as of ``snapshot`` (default: current), walking back to the last one."""
    snap = snapshot if snapshot is not None else table.current_snapshot()
    seen = 0
    while snap is not None and seen < 10_000:
        raw = snap.summary[OFFSETS_KEY] if snap.summary is not None else None
        if raw:
            return decode_offsets(raw)
        if snap.parent_snapshot_id is None:
            break
        snap = table.metadata.snapshot_by_id(snap.parent_snapshot_id)
        seen += 1
    return {}


def committed_offsets(table: Table, group: str) -> dict[TP, int]:
    """Next offset per topic-partition that ``group`` has landed in ``table``."""
    return snapshot_offsets(table).get(group, {})
