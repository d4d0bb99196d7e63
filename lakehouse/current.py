"""The current value of each half hour: the newest version per MPAN x measurement quantity x period.

The typed consumption table keeps every version it was sent (rule 3: a revision is a newer
transaction for the same MPAN, quantity and date). Readers that want today's answer take, per
MPAN x quantity x UTC half hour, the row of the newest transaction by sender timestamp (ties by
offset; one MPAN's records share a Kafka partition). Every version of a half hour lies in one UTC
settlement-date partition, so it is computed one date at a time: memory follows one day's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Literal

import pyarrow as pa
from pyiceberg.expressions import And, EqualTo
from pyiceberg.table import Table

from lakehouse.query import typed_filters
from lakehouse.read import partition_values, plan_files, scan_files

Versions = Literal["latest", "all"]
EPOCH = date(1970, 1, 1)

NEWEST_ONLY = """
QUALIFY row_number() OVER (
    PARTITION BY mpan, measurement_quantity, period_end_utc
    ORDER BY TRY_CAST(sender_timestamp AS TIMESTAMPTZ) DESC NULLS LAST, source_offset DESC
) = 1
"""
LATEST_SQL = f"SELECT * FROM rows_in {NEWEST_ONLY} ORDER BY mpan, measurement_quantity, period_end_utc"


def latest_versions(rows: pa.Table) -> pa.Table:
    """The newest version of each (mpan, measurement_quantity, period_end_utc) in ``rows``."""
    if rows.num_rows == 0:
        return rows
    from lakehouse.duck import memory_connection  # DuckDB (~30 MB): not in every process that imports this

    con = memory_connection()
    con.register("rows_in", rows)
    return con.execute(LATEST_SQL).to_arrow_table().cast(rows.schema)


def _partition_date(value: object) -> date:
    """The UTC settlement date a data file's partition holds (Iceberg stores days since the epoch)."""
    if isinstance(value, date):
        return value
    return EPOCH + timedelta(days=int(value))  # type: ignore[call-overload]


def iter_latest_consumption(
    table: Table,
    date_from: date | None,
    date_to: date | None,
    mpans: tuple[str, ...],
    snapshot_id: int | None,
    batch_rows: int = 8_192,
) -> Iterator[pa.RecordBatch]:
    """The current consumption rows matching the filters, one UTC settlement date at a time."""
    prune, rows_filter = typed_filters("consumption", date_from, date_to, mpans)
    days = sorted({_partition_date(partition_values(task)[0]) for task in plan_files(table, prune, snapshot_id)})
    for day in days:
        one_day = And(prune, EqualTo(term="utc_settlement_date", value=day.isoformat()))  # type: ignore[arg-type]
        rows, _ = scan_files(table, one_day, rows_filter, None, snapshot_id)
        yield from latest_versions(rows).to_batches(max_chunksize=batch_rows)
