"""The aggregate-only view of half-hourly consumption: sums over enough MPANs that nobody is singled out."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Literal

import pyarrow as pa

from lakehouse.duck import memory_connection

AggregateLevel = Literal["day", "period"]


def aggregate_schema(by: AggregateLevel) -> pa.Schema:
    """The columns of a consumption aggregate per day (or per half hour)."""
    fields = [pa.field("utc_settlement_date", pa.date32())]
    if by == "period":
        fields.append(pa.field("period_end_utc", pa.timestamp("us", tz="UTC")))
    fields += [
        pa.field("measurement_quantity", pa.large_string()),
        pa.field("distributor", pa.large_string()),
        pa.field("mpans", pa.int64()),
        pa.field("periods", pa.int64()),
        pa.field("consumption_kwh", pa.decimal128(18, 3)),
    ]
    return pa.schema(fields)


def summarise_consumption(tables: Iterator[pa.Table], by: AggregateLevel, min_mpans: int) -> pa.Table:
    """Sum kWh per group over a stream of consumption rows (DuckDB: memory grows with groups only)."""
    first = next(tables, None)
    if first is None:
        return aggregate_schema(by).empty_table()
    reader = pa.RecordBatchReader.from_batches(
        first.schema, (b for t in itertools.chain([first], tables) for b in t.to_batches())
    )
    period = ", period_end_utc" if by == "period" else ""
    con = memory_connection()
    con.register("rows_in", reader)
    sql = f"""
        SELECT utc_settlement_date{period}, measurement_quantity, substr(mpan, 1, 2) AS distributor,
               count(DISTINCT mpan) AS mpans, count(*) AS periods,
               CAST(sum(consumption_kwh) AS DECIMAL(18, 3)) AS consumption_kwh
        FROM rows_in
        GROUP BY ALL
        HAVING count(DISTINCT mpan) >= $min_mpans
        ORDER BY ALL
    """
    return con.execute(sql, {"min_mpans": min_mpans}).to_arrow_table()
