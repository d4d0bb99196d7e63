"""The typed ``consumption`` table: one row per MPAN x measurement quantity x UTC half hour, from IF-021.

Incremental and exactly once: each run reads only the IF-021 events beyond the table's watermark
(``lakehouse.refine.watermark``) and appends with the same fencing as ingest, so a run can be
repeated or interrupted safely. ``rebuild`` recreates it from the events table and gives the same rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual
from pyiceberg.table import Table

from lakehouse.offsets import committed_offsets
from lakehouse.refine.watermark import REFINE_GROUP, low_water, next_offsets_of
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import CONSUMPTION, EVENTS, TABLES, ensure_table, identifier
from lakehouse.writer import TableCommit, append_with_offsets, drop_landed

CONSUMPTION_TOPIC = "mhhs.consumption.if-021"
LONDON = ZoneInfo("Europe/London")
_COORDS = ("source_topic", "source_partition", "source_offset")

_EXPLODE = """
WITH docs AS (
    SELECT mpan, transaction_id, sender_timestamp, topic, "partition", "offset", landed_at,
           CAST(decode("value") AS JSON) AS doc
    FROM batch
), periods AS (
    SELECT mpan, transaction_id, sender_timestamp, topic, "partition", "offset", landed_at,
           json_extract_string(doc, '$.CustomBlock.measurementQuantityID') AS measurement_quantity,
           CAST(json_extract_string(doc, '$.CustomBlock.utcSettlementDate') AS DATE) AS utc_settlement_date,
           json_extract_string(doc, '$.CustomBlock.dataServiceDIPID') AS data_service_dip_id,
           json_extract_string(doc, '$.CustomBlock.connectionType') AS connection_type,
           unnest(json_extract(doc, '$.CustomBlock.periods[*]')) AS p
    FROM docs
)
SELECT mpan, measurement_quantity, utc_settlement_date,
       CAST(json_extract_string(p, '$.settlementPeriodEffectiveToDateTime') AS TIMESTAMPTZ) AS period_end_utc,
       CAST(json_extract_string(p, '$.consumption') AS DECIMAL(12, 3)) AS consumption_kwh,
       json_extract_string(p, '$.settlementPeriodQualityIndicator') AS quality_indicator,
       CAST(json_extract_string(p, '$.estimationReasonCode') AS INTEGER) AS estimation_reason,
       data_service_dip_id, connection_type, transaction_id, sender_timestamp,
       topic AS source_topic, "partition" AS source_partition, "offset" AS source_offset, landed_at
FROM periods
"""


def _local_columns(period_end: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Europe/London settlement date and period number (46/48/50 on clock-change days)."""
    start = pc.subtract(period_end, pa.scalar(timedelta(minutes=30), pa.duration("us")))
    local = pc.cast(start, pa.timestamp("us", tz="Europe/London"))
    local_naive = pc.local_timestamp(local)
    local_date = pc.cast(pc.floor_temporal(local_naive, unit="day"), pa.date32())
    midnights: dict[date, datetime] = {}
    for d in pc.unique(local_date).to_pylist():
        if d is not None:
            midnights[d] = datetime(d.year, d.month, d.day, tzinfo=LONDON).astimezone(UTC)
    keys = pa.array(list(midnights), pa.date32())
    values = pa.array(list(midnights.values()), pa.timestamp("us", tz="UTC"))
    midnight = pc.take(values, pc.index_in(local_date, keys))
    elapsed_us = pc.subtract(pc.cast(start, pa.int64()), pc.cast(midnight, pa.int64()))
    period = pc.add(pc.divide(elapsed_us, 30 * 60 * 1_000_000), 1)
    return local_date, pc.cast(period, pa.int32())


def explode_consumption(events: pa.Table) -> pa.Table:
    """IF-021 event rows -> consumption rows (vectorised in DuckDB and Arrow)."""
    schema = TABLES[CONSUMPTION].arrow_schema
    if events.num_rows == 0:
        return schema.empty_table()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.register("batch", events)
    rows = con.execute(_EXPLODE).to_arrow_table()
    period_end = pc.cast(rows.column("period_end_utc"), pa.timestamp("us", tz="UTC"))
    local_date, local_period = _local_columns(period_end)
    columns = {
        "mpan": rows.column("mpan"),
        "measurement_quantity": rows.column("measurement_quantity"),
        "utc_settlement_date": rows.column("utc_settlement_date"),
        "period_end_utc": period_end,
        "local_settlement_date": local_date,
        "local_period": local_period,
        "consumption_kwh": rows.column("consumption_kwh"),
        "quality_indicator": rows.column("quality_indicator"),
        "estimation_reason": rows.column("estimation_reason"),
        "data_service_dip_id": rows.column("data_service_dip_id"),
        "connection_type": rows.column("connection_type"),
        "transaction_id": rows.column("transaction_id"),
        "sender_timestamp": rows.column("sender_timestamp"),
        "source_topic": rows.column("source_topic"),
        "source_partition": rows.column("source_partition"),
        "source_offset": rows.column("source_offset"),
        "landed_at": pc.cast(rows.column("landed_at"), pa.timestamp("us", tz="UTC")),
    }
    out = pa.table({k: pc.cast(v, schema.field(k).type) for k, v in columns.items()})
    return out.cast(schema).sort_by([("mpan", "ascending"), ("period_end_utc", "ascending")])


def refine_consumption(catalog: Catalog, settings: LakehouseSettings, max_attempts: int = 20) -> TableCommit:
    """Append consumption rows for every IF-021 event landed since the last run."""
    events = ensure_table(catalog, settings, EVENTS)
    target = ensure_table(catalog, settings, CONSUMPTION)
    events.refresh()
    target.refresh()
    source_snapshot = events.current_snapshot()
    watermark = committed_offsets(target, REFINE_GROUP)
    low = low_water(watermark)
    new = (
        events.scan(
            row_filter=And(
                EqualTo(term="topic", value=CONSUMPTION_TOPIC),  # type: ignore[arg-type]
                GreaterThanOrEqual(term="offset", value=low),  # type: ignore[arg-type]
            ),
            selected_fields=(
                "topic",
                "partition",
                "offset",
                "value",
                "mpan",
                "transaction_id",
                "sender_timestamp",
                "landed_at",
            ),
            snapshot_id=source_snapshot.snapshot_id if source_snapshot else None,
        ).to_arrow()
        if source_snapshot
        else pa.table({})
    )
    if new.num_rows:
        new = new.filter(pc.greater_equal(new.column("offset"), low))
        new = drop_landed(new, watermark)
    next_offsets = next_offsets_of(new)
    rows = explode_consumption(new)
    props = {"mhhs.refined-from-snapshot": str(source_snapshot.snapshot_id) if source_snapshot else ""}
    return append_with_offsets(target, rows, REFINE_GROUP, next_offsets, props, max_attempts, coords=_COORDS)


def rebuild_consumption(catalog: Catalog, settings: LakehouseSettings) -> TableCommit:
    """Drop and recreate the consumption table from the events table (same rows as incremental)."""
    ident = identifier(settings, CONSUMPTION)
    if catalog.table_exists(ident):
        catalog.drop_table(ident)
    return refine_consumption(catalog, settings)


def read_consumption(table: Table, snapshot_id: int | None = None) -> pa.Table:
    """The consumption table at a snapshot, as Arrow."""
    return table.scan(snapshot_id=snapshot_id).to_arrow()
