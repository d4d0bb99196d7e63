"""Coalescing a stream of batches: tables of about the size asked, a small first one when asked, every row once."""

from __future__ import annotations

import pyarrow as pa
import pytest

from access.protect import coalesce


def _batches(*sizes: int) -> list[pa.RecordBatch]:
    start = 0
    out = []
    for n in sizes:
        out.append(pa.record_batch({"i": pa.array(range(start, start + n), pa.int64())}))
        start += n
    return out


@pytest.mark.parametrize(
    ("sizes", "rows", "first", "expected"),
    [
        ((100,) * 25, 1000, None, [1000, 1000, 500]),
        ((5000,) * 3, 2000, None, [5000, 5000, 5000]),
        ((65536,) * 3, 65536, 2000, [2000, 129072, 65536]),
        ((500, 500, 500, 70000), 65536, 2000, [2000, 69500]),
        ((1000, 1000), 65536, 2000, [2000]),
        ((10,), 65536, 2000, [10]),
        ((), 10, 2, []),
    ],
)
def test_coalesce_cuts_the_first_table_at_first_rows_and_keeps_every_row_in_order(
    sizes: tuple[int, ...], rows: int, first: int | None, expected: list[int]
) -> None:
    tables = list(coalesce(iter(_batches(*sizes)), rows, first))
    assert [t.num_rows for t in tables] == expected
    values = [v for t in tables for v in t["i"].to_pylist()]
    assert values == list(range(sum(sizes)))
