"""Serialise Arrow batches as NDJSON, CSV, Parquet or Arrow IPC, chunk by chunk (for responses and files)."""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

Format = Literal["ndjson", "csv", "parquet", "arrow"]
MEDIA_TYPES: dict[str, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}


def _text(v: bytes) -> str | dict[str, str]:
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(v).decode()}


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return _text(v)
    if isinstance(v, Decimal):
        return str(v)  # kWh keep their 3 decimals exactly
    if isinstance(v, datetime):
        return v.isoformat(timespec="microseconds")  # as the vectorised path writes them
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.items()}


def _json_ready(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The column with every value in its JSON form (raises ArrowInvalid for bytes that are not UTF-8)."""
    t = col.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_decimal(t):
        return pc.cast(col, pa.large_string())
    if pa.types.is_timestamp(t):
        # Arrow keeps UTC values: read them as naive, print ISO 8601 (2026-03-28T00:30:00.000000+00:00)
        naive = pc.cast(pc.cast(col, pa.timestamp("us")), pa.string())
        text = pc.replace_substring(naive, " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, "+00:00", "") if t.tz else text
    if pa.types.is_date(t):
        return pc.cast(col, pa.string())
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t):
        raise pa.ArrowInvalid("nested")  # headers: the per-row path keeps their shape
    return col


def ndjson_lines(batch: pa.RecordBatch, kind: str | None = None) -> bytes:
    """One JSON object per row; bytes as UTF-8 text (base64 only when not UTF-8).

    Vectorised (Arrow casts, Polars' NDJSON writer) when every value has a plain JSON form;
    per row otherwise (nested columns, bytes that are not UTF-8).
    """
    if batch.num_rows == 0:
        return b""
    try:
        cols = {name: _json_ready(batch.column(i)) for i, name in enumerate(batch.schema.names)}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _ndjson_rows(batch, kind)
    if kind:
        cols = {"type": pa.array([kind] * batch.num_rows, pa.large_string()), **cols}
    out = io.BytesIO()  # written as bytes: write_ndjson() would decode them to str, and we encode again
    pl.from_arrow(pa.table(cols)).write_ndjson(out)  # type: ignore[union-attr]
    return out.getvalue()


def _ndjson_rows(batch: pa.RecordBatch, kind: str | None) -> bytes:
    extra = {"type": kind} if kind else {}
    return b"".join(
        orjson.dumps({**extra, **_jsonable(row)}, option=orjson.OPT_NAIVE_UTC) + b"\n" for row in batch.to_pylist()
    )


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    cols = []
    for i, field in enumerate(batch.schema):
        col = batch.column(i)
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            try:
                col = pc.cast(col, pa.large_string())  # valid UTF-8: the text as it is
            except pa.ArrowInvalid:
                col = pa.array([None if v is None else _csv_text(v) for v in col.to_pylist()], pa.large_string())
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type) or pa.types.is_struct(field.type):
            col = pa.array(
                [
                    None if v is None else orjson.dumps(_plain(v), option=orjson.OPT_NAIVE_UTC).decode()
                    for v in col.to_pylist()
                ],
                pa.large_string(),
            )
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _csv_text(v: bytes) -> str:
    t = _text(v)
    return t if isinstance(t, str) else "base64:" + t["base64"]


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _csv_field(col: pa.Array) -> tuple[pa.Array, bool]:
    """A column as CSV text (null stays null, written empty) and whether it is a quoted string column.

    The same text as Arrow's CSV writer (quoting "needed"): strings quoted with quotes doubled, other
    types as Arrow casts them to text. UTC timestamps are cast as naive times plus "Z" (what the
    writer prints, at a tenth of the time of a cast that looks the zone up per value).
    """
    t = col.type
    if _is_text(t):
        return pc.replace_substring(pc.cast(col, pa.large_string()), '"', '""'), True
    if pa.types.is_timestamp(t) and t.tz == "UTC":
        naive = pc.cast(pc.cast(col, pa.timestamp(t.unit)), pa.large_string())
        return pc.binary_join_element_wise(naive, _large("Z"), _large("")), False
    return pc.cast(col, pa.large_string()), False


def csv_lines(batch: pa.RecordBatch) -> bytes:
    """The rows of ``batch`` as CSV lines, byte for byte what ``pyarrow.csv.write_csv`` writes (no header).

    Vectorised: each column cast to text once, then one element-wise join per row whose literal
    pieces (commas, the quotes of string columns without nulls, the line end) are scalars.
    """
    ready = _csv_ready(batch)
    if ready.num_rows == 0:
        return b""
    pieces: list[pa.Array | pa.Scalar] = []
    glue = ""
    for i in range(ready.num_columns):
        text, quoted = _csv_field(ready.column(i))
        if quoted and text.null_count == 0:
            pieces += [_large(glue + '"'), text]
            glue = '"'
        elif quoted:  # a null is written as nothing, a value in quotes
            pieces += [_large(glue), pc.binary_join_element_wise(_large('"'), text, _large('"'), _large(""))]
            glue = ""
        else:
            pieces += [_large(glue), text]
            glue = ""
        glue += ","
    pieces.append(_large(glue[:-1] + "\n"))
    return _joined(pieces)


def _value_span(text: pa.Array) -> tuple[int, int]:
    """Where a large_string array's values start and end in its data buffer."""
    offsets = text.buffers()[1]
    start = struct.unpack_from("<q", offsets, text.offset * 8)[0]
    end = struct.unpack_from("<q", offsets, (text.offset + len(text)) * 8)[0]
    return start, end


def _joined(pieces: list[pa.Array | pa.Scalar]) -> bytes:
    """Every row's ``pieces`` (text arrays and literal scalars, a null as nothing) joined; all rows as bytes.

    The joined rows lie end to end in the result's data buffer: that span is the output, copied once.
    """
    rows = pc.binary_join_element_wise(*pieces, _large(""), null_handling="replace", null_replacement="")
    start, end = _value_span(rows)
    return rows.buffers()[2][start:end].to_pybytes()


def csv_header(schema: pa.Schema) -> bytes:
    """The CSV header line: every column name in quotes, as ``pyarrow.csv.write_csv`` writes it."""
    return (",".join('"' + n.replace('"', '""') + '"' for n in schema.names) + "\n").encode()


class _Sink(io.RawIOBase):
    """A write-only file for pyarrow writers that hands out what was written since last asked."""

    def __init__(self) -> None:
        self._chunks: list[bytes | pa.Buffer] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        # pyarrow hands over small pieces as bytes and an IPC body's buffers as pa.Buffer: those are
        # kept as they are (a reference to the batch's memory, which they keep alive) and copied
        # once, by take()
        data = b if isinstance(b, bytes | pa.Buffer) else bytes(b)
        self._chunks.append(data)
        size = data.size if isinstance(data, pa.Buffer) else len(data)
        self._pos += size
        return size

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


# Parquet column statistics (min/max) are written for the columns a reader filters on; for the rest
# (long strings, payloads) computing them cost a third of the write and served nobody.
STATISTICS_COLUMNS = frozenset(
    {"mpan", "topic", "partition", "offset", "settlement_date", "utc_settlement_date", "local_settlement_date",
     "period_end_utc", "event_time"}
)  # fmt: skip
ROW_GROUP_ROWS = 200_000


class ChunkWriter:
    """One output in ``fmt``, fed batch by batch; each call returns the bytes ready to send or store.

    Parquet row groups gather batches up to ``ROW_GROUP_ROWS`` rows (fewer, larger groups encode
    faster and compress better; memory stays at one group). ``close(footer)`` ends it: for Parquet
    the footer metadata, for Arrow IPC a last, empty record batch carrying the metadata (the stream's
    trailer); CSV always has its header line.
    """

    def __init__(self, schema: pa.Schema, fmt: Format) -> None:
        self.schema = schema
        self.fmt = fmt
        self.rows = 0
        self._header = True
        self._sink = _Sink()
        self._writer: Any = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        if fmt == "parquet":
            stats = [n for n in schema.names if n in STATISTICS_COLUMNS]
            self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd", write_statistics=stats or False)
        elif fmt == "arrow":
            self._writer = pa.ipc.new_stream(self._sink, schema)

    def write(self, batch: pa.RecordBatch) -> bytes:
        self.rows += batch.num_rows
        if self.fmt == "ndjson":
            return ndjson_lines(batch)
        if self.fmt == "csv":
            head = csv_header(self.schema) if self._header else b""
            self._header = False
            return head + csv_lines(batch)
        if self.fmt == "parquet":
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._flush()
        else:
            self._writer.write_batch(batch)
        return self._sink.take()

    def _flush(self) -> None:
        if self._pending:
            group = pa.Table.from_batches(self._pending, self.schema)
            self._writer.write_table(group, row_group_size=self._pending_rows)
            self._pending, self._pending_rows = [], 0

    def close(self, footer: dict[str, str] | None = None) -> bytes:
        if self.fmt == "ndjson":
            return b""
        if self.fmt == "csv":
            return self.write(pa.RecordBatch.from_pylist([], schema=self.schema)) if self._header else b""
        if self.fmt == "parquet":
            self._flush()
            if footer is not None:
                self._writer.add_key_value_metadata(footer)
        elif footer is not None:
            self._writer.write_batch(pa.RecordBatch.from_pylist([], schema=self.schema), custom_metadata=footer)
        self._writer.close()
        return self._sink.take()


def stream(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    fmt: Format,
    footer: Callable[[], dict[str, str]] | None = None,
) -> Iterator[bytes]:
    """Chunks of the serialised batches in ``fmt``.

    ``footer()`` (called once every batch is written) goes into a Parquet file's footer metadata,
    or into the custom metadata of a last, empty Arrow record batch (the stream's trailer).
    """
    writer = ChunkWriter(schema, fmt)
    for b in batches:
        chunk = writer.write(b)
        if chunk:
            yield chunk
    tail = writer.close(footer() if footer is not None else None)
    if tail:
        yield tail
