"""Read paths agree: pyiceberg, the project's planned Arrow scan and DuckDB's iceberg_scan."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
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


def test_streamed_read_in_small_groups_gives_every_row_once(landed: LandingWriter, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import lakehouse.read as read

    table = landed.events
    everything, files = scan_files(table, AlwaysTrue())
    assert files > 2
    monkeypatch.setattr(read, "GROUP_ROWS", 1)  # one file per group
    streamed = pa.Table.from_batches(list(read.iter_files(table, AlwaysTrue(), batch_rows=7)))
    assert content_checksum(streamed) == content_checksum(everything)
    only = pa.Table.from_batches(list(read.iter_files(table, AlwaysTrue(), columns=["topic", "offset"], batch_rows=7)))
    assert only.column_names == ["topic", "offset"] and only.num_rows == everything.num_rows


def test_appended_rows_are_exactly_those_after_the_snapshot(landed: LandingWriter) -> None:
    from lakehouse.read import iter_appended

    table = landed.events
    first, *_, last = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number)
    before = table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows
    after = table.scan(snapshot_id=last.snapshot_id).to_arrow().num_rows
    added = sum(b.num_rows for b in iter_appended(table, AlwaysTrue(), None, None, first.snapshot_id, last.snapshot_id))
    assert added == after - before > 0


def test_prefetched_keeps_order_raises_the_producers_error_and_stops_early() -> None:
    from lakehouse.read import prefetched

    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))
    produced: list[int] = []

    def numbers():  # type: ignore[no-untyped-def]
        for i in range(10_000):
            produced.append(i)
            yield i

    stream = prefetched(numbers(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert len(produced) < 10  # the producer stopped a few items ahead, not at the end

    def failing():  # type: ignore[no-untyped-def]
        yield 1
        raise ValueError("bad file")

    got: list[int] = []
    with pytest.raises(ValueError, match="bad file"):
        for x in prefetched(failing()):
            got.append(x)
    assert got == [1]


def test_parquet_chunks_gather_row_groups_and_keep_every_row(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    import pyarrow.parquet as pq

    import lakehouse.formats as formats

    monkeypatch.setattr(formats, "ROW_GROUP_ROWS", 250)
    batch = pa.record_batch({"mpan": [f"{i:013d}" for i in range(100)], "payload": ["x" * 50] * 100})
    writer = formats.ChunkWriter(batch.schema, "parquet")
    data = b"".join([writer.write(batch) for _ in range(7)] + [writer.close({"rows": "700"})])
    f = pq.ParquetFile(io.BytesIO(data))
    assert f.metadata.num_rows == 700 and f.metadata.num_row_groups == 3  # 300, 300, 100
    assert f.metadata.metadata[b"rows"] == b"700"
    group = f.metadata.row_group(0)
    assert group.column(0).statistics is not None and group.column(1).statistics is None  # stats on the keys only
