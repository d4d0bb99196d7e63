"""Read paths agree: pyiceberg, the project's planned Arrow scan and DuckDB's iceberg_scan."""

from __future__ import annotations

import pyarrow.dataset as ds
from pyiceberg.expressions import AlwaysTrue, And, EqualTo

from lakehouse.duck import connect, create_views, iceberg_scan_sql
from lakehouse.maintenance import content_checksum, whole_table_checksum
from lakehouse.read import scan_files
from lakehouse.writer import LandingWriter


def test_duckdb_reads_the_same_rows_as_pyiceberg(landed: LandingWriter) -> None:
    table = landed.events
    con = connect()
    rows = con.sql(f'SELECT topic, "partition", "offset", "value" FROM {iceberg_scan_sql(table)}').to_arrow_table()
    assert content_checksum(rows) == whole_table_checksum(table)
    create_views(con, {"events": table, "quarantine": landed.quarantine})
    assert con.sql("SELECT count(*) FROM events").fetchone()[0] == rows.num_rows  # type: ignore[index]


def test_duckdb_time_travel_matches_the_snapshot(landed: LandingWriter) -> None:
    table = landed.events
    first = min(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    con = connect()
    n = con.sql(f"SELECT count(*) FROM {iceberg_scan_sql(table, first.snapshot_id)}").fetchone()[0]  # type: ignore[index]
    assert n == table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows
    assert n < table.scan().to_arrow().num_rows


def test_planned_scan_prunes_to_one_partition_and_matches(landed: LandingWriter) -> None:
    table = landed.events
    everything, all_files = scan_files(table, AlwaysTrue())
    topic = "mhhs.consumption.if-021"
    day = sorted(
        {
            d
            for t, d in zip(everything["topic"].to_pylist(), everything["settlement_date"].to_pylist(), strict=True)
            if t == topic
        }
    )[0]
    prune = And(EqualTo("topic", topic), EqualTo("settlement_date", day.isoformat()))  # type: ignore[arg-type]
    rows, files = scan_files(table, prune, (ds.field("topic") == topic) & (ds.field("settlement_date") == day))
    reference = table.scan(row_filter=prune).to_arrow()
    assert rows.num_rows == reference.num_rows > 0
    assert content_checksum(rows) == content_checksum(reference)
    assert 0 < files < all_files
    partitions = {
        str(p)
        for p in table.inspect.files().column("partition").to_pylist()
        if p["topic"] == topic and p["settlement_date"] == day
    }
    assert files == table.inspect.files().num_rows - sum(
        1
        for p in table.inspect.files().column("partition").to_pylist()
        if not (p["topic"] == topic and p["settlement_date"] == day)
    )
    assert len(partitions) == 1
