"""The watermark every typed table keeps: how far into each source topic-partition it has read.

A typed table's snapshot summaries hold, under the offsets group ``refine``, the next offset of
each source topic-partition it has refined (the same encoding ingest uses); a run reads only the
events beyond it and commits the new rows together with the moved watermark.
"""

from __future__ import annotations

import pyarrow as pa

REFINE_GROUP = "refine"


def next_offsets_of(rows: pa.Table) -> dict[tuple[str, int], int]:
    """Per (topic, partition) of ``rows``: one past the highest offset (where a reader resumes)."""
    if rows.num_rows == 0:
        return {}
    grouped = rows.group_by(["topic", "partition"]).aggregate([("offset", "max")])
    return {
        (t, p): m + 1
        for t, p, m in zip(
            grouped["topic"].to_pylist(),
            grouped["partition"].to_pylist(),
            grouped["offset_max"].to_pylist(),
            strict=True,
        )
    }


def low_water(watermark: dict[tuple[str, int], int]) -> int:
    """The lowest next offset of any partition (0 for a new table): reads start no lower."""
    return min(watermark.values()) if watermark else 0
