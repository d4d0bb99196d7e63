"""Rows added since a tagged snapshot: Iceberg's incremental append scan against the position path.

Usage: python bench/incremental.py [--commits 200] [--rows 1000] [--rounds 3]
Lands ``commits`` batches of ``rows`` IF-021 events through the ingest writer, tags the snapshot
halfway (a delivery's start), then reads the second half's rows three ways, each the median of
``rounds``:
- chain: ``iter_appended`` while every snapshot is retained (pyiceberg's incremental append scan
  over the appends' own manifests), the baseline;
- positions: ``appended_since_positions`` on the same table (files with a later data sequence
  number, less rows at positions the tag had recorded), what an incremental delivery uses once the
  snapshots between have been expired;
- positions after compaction and a one-snapshot ceiling: the chain gone, and the new rows sharing
  files with old ones that the position filter must drop.
Each must find exactly the rows the chain found. Reports rows/s and the ratio chain / path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.commit_latency import TOPIC, sample_batch
from bench.harness import write_results
from lakehouse.maintenance import compact_table, expire_old_snapshots
from lakehouse.read import appended_since_positions, iter_appended
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import EVENTS
from lakehouse.writer import LandingWriter

COLUMNS = ("topic", "partition", "offset", "mpan", "value")


def land(lake: LakehouseSettings, commits: int, batch: pa.Table) -> tuple[int, int]:
    """``commits`` commits of ``batch`` at increasing offsets; return the halfway and last snapshots."""
    writer = LandingWriter(lake)
    empty, n, half = batch.slice(0, 0), batch.num_rows, 0
    offset = batch.schema.get_field_index("offset")
    for i in range(commits):
        rows = batch.set_column(offset, batch.schema.field("offset"), pc.add(batch.column("offset"), i * n))
        result = writer.commit(rows, empty, "bench", {(TOPIC, 0): (i + 1) * n}, {}, max_attempts=5)
        if i + 1 == commits // 2:
            half = result.events.snapshot_id or 0
    writer.events.refresh()
    return half, writer.events.metadata.current_snapshot_id or 0


def timed(read: Callable[[], Iterator[pa.RecordBatch]], rounds: int) -> tuple[float, pa.Array]:
    """The median seconds of ``rounds`` full reads, and the offsets the last one found (sorted)."""
    seconds, offsets = [], pa.array([], pa.int64())
    for _ in range(rounds):
        t = time.perf_counter()
        batches = list(read())
        seconds.append(time.perf_counter() - t)
        if batches:
            found = pa.concat_arrays([b.column("offset") for b in batches])
            offsets = found.take(pc.sort_indices(found))
    return statistics.median(seconds), offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.commits < 2 or args.rows < 1 or args.rounds < 1:
        parser.error("--commits must be at least 2 (half are read), --rows and --rounds at least 1")
    batch = sample_batch(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        lake = LakehouseSettings(warehouse=tmp, max_snapshots=0)
        since, until = land(lake, args.commits, batch)
        store = Store(lake)
        table = store.table(EVENTS)
        store.move_tag(EVENTS, "delivery-bench", since)
        everything = AlwaysTrue()

        def chain() -> Iterator[pa.RecordBatch]:
            return iter_appended(table, everything, None, COLUMNS, since, until)

        def positions() -> Iterator[pa.RecordBatch]:
            return appended_since_positions(table, everything, None, COLUMNS, since, until)

        chain_s, expected = timed(chain, args.rounds)
        positions_s, found = timed(positions, args.rounds)
        compact_table(table)
        expire_old_snapshots(table, lake.model_copy(update={"max_snapshots": 1, "keep_last_snapshots": 1}))
        table.refresh()
        until = table.metadata.current_snapshot_id or 0
        expired_s, after = timed(lambda: iter_appended(table, everything, None, COLUMNS, since, until), args.rounds)
        files_after = len(list(table.scan().plan_files()))
    rows = len(expected)
    for name, got in (("positions", found), ("after expiry", after)):
        if not got.equals(expected):
            raise SystemExit(f"{name}: {len(got)} rows, not the chain's {rows}: the paths disagree")
    figures = {
        "commits": args.commits,
        "rows_per_commit": batch.num_rows,
        "rows_read": rows,
        "chain_s": round(chain_s, 4),
        "positions_s": round(positions_s, 4),
        "positions_after_compaction_and_expiry_s": round(expired_s, 4),
        "files_after_compaction": files_after,
        "ratio_chain_over_positions": round(chain_s / positions_s, 3),
        "ratio_chain_over_positions_after_expiry": round(chain_s / expired_s, 3),
    }
    table_rows = [
        ("incremental append scan (chain)", f"{rows / chain_s:,.0f}", f"{chain_s:.3f}", "1.00"),
        ("positions, same table", f"{rows / positions_s:,.0f}", f"{positions_s:.3f}", f"{chain_s / positions_s:.2f}"),
        (
            "positions, compacted + expired",
            f"{rows / expired_s:,.0f}",
            f"{expired_s:.3f}",
            f"{chain_s / expired_s:.2f}",
        ),
    ]
    write_results("incremental", figures, table_rows, ("path", "rows/s", "median s", "chain / path"))


if __name__ == "__main__":
    main()
