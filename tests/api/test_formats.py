"""The vectorised NDJSON writer says exactly what the per-row writer says."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pyarrow as pa

from lakehouse.formats import _ndjson_rows, ndjson_lines


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
