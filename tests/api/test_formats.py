"""The vectorised writers say exactly what the reference writers say (NDJSON per row, CSV and Arrow IPC by pyarrow)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from lakehouse.formats import ChunkWriter, _csv_ready, _ndjson_rows, ndjson_lines


def test_vectorised_ndjson_equals_the_per_row_path() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "mpan": ["1200000000011", None, "1300000000020"],
            "value": [b'{"a": "\\u00e9t\\u00e9"}', b"plain", None],
            "kwh": pa.array([Decimal("1.250"), None, Decimal("-0.001")], pa.decimal128(12, 3)),
            "at": pa.array(
                [datetime(2026, 3, 29, 1, 30, tzinfo=UTC), None, datetime(2026, 10, 25, 0, 0, 0, 123456, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            "naive": pa.array([datetime(2026, 1, 1), datetime(2026, 1, 2, 3, 4, 5), None], pa.timestamp("us")),
            "day": pa.array([date(2026, 3, 29), None, date(2026, 10, 25)], pa.date32()),
            "n": pa.array([1, None, 3], pa.int64()),
        }
    )
    fast = ndjson_lines(batch, "event")
    assert fast == _ndjson_rows(batch, "event")
    first = orjson.loads(fast.splitlines()[0])
    assert next(iter(first)) == "type" and first["kwh"] == "1.250" and first["at"] == "2026-03-29T01:30:00.000000+00:00"


def test_bytes_that_are_not_utf8_fall_back_to_base64() -> None:
    batch = pa.RecordBatch.from_pydict({"value": [b"\xff\xfe", b"ok"]})
    lines = [orjson.loads(line) for line in ndjson_lines(batch).splitlines()]
    assert lines[0]["value"] == {"base64": "//4="} and lines[1]["value"] == "ok"


def _arrow_csv(batch: pa.RecordBatch, header: bool) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(_csv_ready(batch), buf, pacsv.WriteOptions(include_header=header))
    return buf.getvalue()


def test_csv_chunks_are_what_pyarrows_csv_writer_writes() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "text": pa.array(["plain", 'with "quotes"', None, "comma, and\nnewline", ""], pa.large_string()),
            "short": pa.array(["a", "b", "c", "d", "été"], pa.string()),
            "empty": pa.nulls(5, pa.large_string()),
            "kwh": pa.array(
                [Decimal("1.250"), None, Decimal("-0.001"), Decimal("0"), Decimal("12.5")], pa.decimal128(12, 3)
            ),
            "at": pa.array(
                [datetime(2026, 3, 29, 1, 30, tzinfo=UTC), None, datetime(2026, 10, 25, 0, 0, 0, 123456, tzinfo=UTC),
                 datetime(1970, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            "at_ms": pa.array([0, 1, None, 1500, -1], pa.timestamp("ms", tz="UTC")),
            "at_s": pa.array([0, 1, None, 1500, -1], pa.timestamp("s", tz="UTC")),
            "at_ns": pa.array([0, 1, None, 1500, -1], pa.timestamp("ns", tz="UTC")),
            "london": pa.array([0, 1, None, 1500, -1], pa.timestamp("us", tz="Europe/London")),
            "naive": pa.array(
                [datetime(2026, 1, 1), datetime(2026, 1, 2, 3, 4, 5), None, None, None], pa.timestamp("us")
            ),
            "day": pa.array([date(2026, 3, 29), None, date(2026, 10, 25), None, date(2000, 1, 1)], pa.date32()),
            "n": pa.array([1, None, 3, -(2**63), 2**63 - 1], pa.int64()),
            "f": pa.array([1.5, None, 1e20, -0.0, 3.14159], pa.float64()),
            "b": pa.array([True, False, None, True, False]),
            "raw": pa.array([b"bytes", b"\xff\xfe", None, b'q"q', b""], pa.binary()),
            "utf8_raw": pa.array([b"ok", None, b"", b"\xc3\xa9", b"x"], pa.binary()),
            "list": pa.array([[1, 2], None, [], [3], [None]], pa.list_(pa.int64())),
            'odd "name"': pa.array([1, 2, 3, 4, 5], pa.int32()),
        }
    )  # fmt: skip
    writer = ChunkWriter(batch.schema, "csv")
    got = writer.write(batch) + writer.write(batch.slice(1, 3)) + writer.close()
    assert got == _arrow_csv(batch, True) + _arrow_csv(batch.slice(1, 3), False)
    for i in range(batch.num_columns):  # each type on its own, too
        one = batch.select([i])
        writer = ChunkWriter(one.schema, "csv")
        assert writer.write(one) + writer.close() == _arrow_csv(one, True), one.schema.names[0]
    empty = ChunkWriter(batch.schema, "csv")
    assert empty.close() == _arrow_csv(pa.RecordBatch.from_pylist([], schema=batch.schema), True)


def test_arrow_chunks_are_one_ipc_stream_with_its_trailer() -> None:
    batch = pa.record_batch({"mpan": [f"{i:013d}" for i in range(5000)], "kwh": pa.array(range(5000), pa.int64())})
    writer = ChunkWriter(batch.schema, "arrow")
    got = writer.write(batch) + writer.write(batch.slice(10, 50)) + writer.close({"mhhs.rows": "5050"})
    buf = io.BytesIO()
    with pa.ipc.new_stream(buf, batch.schema) as ref:
        ref.write_batch(batch)
        ref.write_batch(batch.slice(10, 50))
        ref.write_batch(pa.RecordBatch.from_pylist([], schema=batch.schema), custom_metadata={"mhhs.rows": "5050"})
    assert got == buf.getvalue()
