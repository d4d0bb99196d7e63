"""The typed ``consumption`` table: one row per MPAN x measurement quantity x UTC half hour, from IF-021.

Each IF-021 document is parsed once, into a declared structure (DuckDB ``from_json``), and its
periods unnested; every value that cannot be typed is kept as evidence rather than failing the
run: a consumption the decimal cannot hold exactly (more than 3 decimals, or beyond 9.3) is
refined with its text in ``consumption_raw`` and a ``refine_flag``; a period whose end is not a
real instant goes to ``refine_rejects`` with the reason and its source coordinates.

Incremental, exactly once and bounded: a run reads the IF-021 events beyond the table's watermark
(``lakehouse.refine.watermark``) in windows of offsets per partition, and commits each window
(rejects first, then the rows with the moved watermark, both fenced like ingest), so a run can be
repeated or interrupted safely and its memory does not grow with the backlog. ``rebuild`` recreates
the table from the events table and gives the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from lakehouse.duck import memory_connection
from lakehouse.offsets import committed_offsets, snapshot_offsets
from lakehouse.query import EventQuery, read_events
from lakehouse.refine.watermark import REFINE_GROUP
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import CONSUMPTION, EVENTS, REFINE_REJECTS, TABLES, ensure_table, identifier
from lakehouse.writer import TableCommit, append_with_offsets

CONSUMPTION_TOPIC = "mhhs.consumption.if-021"
LONDON = ZoneInfo("Europe/London")
_COORDS = ("source_topic", "source_partition", "source_offset")
SOURCE_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "value",
    "mpan",
    "settlement_date",
    "transaction_id",
    "sender_timestamp",
    "landed_at",
)
# The IF-021 structure, declared once: every field as text, typed afterwards with TRY_CAST.
_STRUCTURE = (
    '{"CustomBlock": {"measurementQuantityID": "VARCHAR", "dataServiceDIPID": "VARCHAR", '
    '"connectionType": "VARCHAR", "periods": [{"settlementPeriodEffectiveToDateTime": "VARCHAR", '
    '"consumption": "VARCHAR", "settlementPeriodQualityIndicator": "VARCHAR", "estimationReasonCode": "VARCHAR"}]}}'
)
_EXPLODE = f"""
WITH docs AS (
    SELECT mpan, settlement_date, transaction_id, sender_timestamp, topic, "partition", "offset", landed_at,
           from_json(decode("value"), '{_STRUCTURE}').CustomBlock AS c
    FROM batch
), periods AS (
    SELECT mpan, settlement_date, transaction_id, sender_timestamp, topic, "partition", "offset", landed_at,
           c.measurementQuantityID AS measurement_quantity, c.dataServiceDIPID AS data_service_dip_id,
           c.connectionType AS connection_type,
           unnest(CASE WHEN len(c.periods) > 0 THEN c.periods ELSE [NULL] END) AS p
    FROM docs
), typed AS (
    SELECT *, TRY_CAST(p.consumption AS DECIMAL(12, 3)) AS kwh, TRY_CAST(p.consumption AS DOUBLE) AS kwh_double
    FROM periods
)
SELECT mpan, measurement_quantity, settlement_date AS utc_settlement_date,
       p.settlementPeriodEffectiveToDateTime AS period_end_text,
       TRY_CAST(p.settlementPeriodEffectiveToDateTime AS TIMESTAMPTZ) AS period_end_utc,
       p.consumption AS consumption_text,
       kwh AS consumption_kwh,
       CASE WHEN p.consumption IS NULL THEN NULL
            WHEN kwh IS NULL THEN 'out_of_range'
            WHEN kwh_double <> CAST(kwh AS DOUBLE) THEN 'excess_precision'
       END AS refine_flag,
       p.settlementPeriodQualityIndicator AS quality_indicator,
       TRY_CAST(p.estimationReasonCode AS INTEGER) AS estimation_reason,
       data_service_dip_id, connection_type, transaction_id, sender_timestamp,
       topic AS source_topic, "partition" AS source_partition, "offset" AS source_offset, landed_at,
       p IS NULL AS no_periods
FROM typed
ORDER BY mpan, period_end_utc
"""


@dataclass(frozen=True, slots=True)
class Refined:
    """One window of IF-021 events, refined: the consumption rows and the rows set aside."""

    rows: pa.Table
    rejects: pa.Table


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


def _rejects(rows: pa.Table, refused: pa.Array, refined_at: datetime) -> pa.Table:
    """The refused period rows as ``refine_rejects`` rows, each with the field and why."""
    bad = rows.filter(refused)
    no_periods = pc.fill_null(bad["no_periods"], False)
    reason = pc.if_else(
        no_periods,
        "no_periods",
        pc.if_else(pc.is_null(bad["mpan"]), "missing_mpan",
                   pc.if_else(pc.is_null(bad["measurement_quantity"]), "missing_quantity", "invalid_period_end")),
    )  # fmt: skip
    field = pc.if_else(
        no_periods,
        "CustomBlock.periods",
        pc.if_else(pc.is_null(bad["mpan"]), "CommonBlock.M0.MPANCore",
                   pc.if_else(pc.is_null(bad["measurement_quantity"]), "CustomBlock.measurementQuantityID",
                              "CustomBlock.periods.settlementPeriodEffectiveToDateTime")),
    )  # fmt: skip
    schema = TABLES[REFINE_REJECTS].arrow_schema
    n = bad.num_rows
    out = {
        "target": pa.array([CONSUMPTION] * n, pa.large_string()),
        "source_topic": bad["source_topic"],
        "source_partition": bad["source_partition"],
        "source_offset": bad["source_offset"],
        "transaction_id": bad["transaction_id"],
        "mpan": bad["mpan"],
        "utc_settlement_date": bad["utc_settlement_date"],
        "field": field,
        "value_as_sent": bad["period_end_text"],
        "reason": reason,
        "refined_at": pa.array([refined_at] * n, pa.timestamp("us", tz="UTC")),
    }
    return pa.table({k: pc.cast(v, schema.field(k).type) for k, v in out.items()}, schema=schema)


def explode_consumption(events: pa.Table, refined_at: datetime | None = None) -> Refined:
    """IF-021 event rows -> consumption rows and refused rows (parsed once, vectorised in DuckDB and Arrow)."""
    schema = TABLES[CONSUMPTION].arrow_schema
    if events.num_rows == 0:
        return Refined(schema.empty_table(), TABLES[REFINE_REJECTS].arrow_schema.empty_table())
    con = memory_connection()
    con.register("batch", events)
    rows = con.execute(_EXPLODE).to_arrow_table()
    refused = pc.or_kleene(
        pc.or_kleene(pc.is_null(rows["period_end_utc"]), pc.is_null(rows["mpan"])),
        pc.is_null(rows["measurement_quantity"]),
    )
    rejects = _rejects(rows, refused, refined_at or datetime.now(UTC))
    rows = rows.filter(pc.invert(refused))
    period_end = pc.cast(rows.column("period_end_utc"), pa.timestamp("us", tz="UTC"))
    local_date, local_period = _local_columns(period_end)
    flag = rows.column("refine_flag")
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
        "consumption_raw": pc.if_else(pc.is_valid(flag), rows["consumption_text"], pa.scalar(None, pa.string())),
        "refine_flag": flag,
    }
    out = pa.table({k: pc.cast(v, schema.field(k).type) for k, v in columns.items()})
    return Refined(out.cast(schema), rejects)  # in (mpan, period end) order: DuckDB sorted it


def _windows(
    watermark: dict[tuple[str, int], int], held: dict[tuple[str, int], int], size: int
) -> dict[int, tuple[int, int]]:
    """The next window of offsets per partition of the IF-021 topic: [refined up to, + size), up to what is held."""
    out: dict[int, tuple[int, int]] = {}
    for (topic, partition), end in held.items():
        if topic != CONSUMPTION_TOPIC:
            continue
        start = watermark.get((topic, partition), 0)
        if start < end:
            out[partition] = (start, min(end, start + size))
    return out


def _held(events: Table, snapshot_id: int) -> dict[tuple[str, int], int]:
    """Next offset per topic-partition the events snapshot holds (over every ingest group)."""
    snap = events.metadata.snapshot_by_id(snapshot_id)
    out: dict[tuple[str, int], int] = {}
    for parts in snapshot_offsets(events, snap).values():
        for tp, n in parts.items():
            out[tp] = max(out.get(tp, 0), n)
    return out


def refine_consumption(
    catalog: Catalog, settings: LakehouseSettings, max_attempts: int = 20, window_messages: int | None = None
) -> TableCommit:
    """Append consumption rows for every IF-021 event landed since the last run, window by window.

    Raises:
        CommitConflictError: if a commit keeps losing races with other writers.
    """
    events = ensure_table(catalog, settings, EVENTS)
    target = ensure_table(catalog, settings, CONSUMPTION)
    rejects = ensure_table(catalog, settings, REFINE_REJECTS)
    events.refresh()
    target.refresh()
    source = events.current_snapshot()
    size = window_messages or settings.refine_window_messages
    total = TableCommit(".".join(target.name()), None, 0, 0, 0, 0.0)
    if source is None:
        return total
    held = _held(events, source.snapshot_id)
    props = {"mhhs.refined-from-snapshot": str(source.snapshot_id)}
    while windows := _windows(committed_offsets(target, REFINE_GROUP), held, size):
        query = EventQuery(
            topics=(CONSUMPTION_TOPIC,),
            min_offset=min(lo for lo, _ in windows.values()),
            max_offset=max(hi for _, hi in windows.values()),
            partition_offsets=tuple((p, lo, hi) for p, (lo, hi) in sorted(windows.items())),
        )
        batch = read_events(events, query, SOURCE_COLUMNS, source.snapshot_id)
        refined = explode_consumption(batch)
        window_ends = {(CONSUMPTION_TOPIC, p): hi for p, (_, hi) in windows.items()}
        if refined.rejects.num_rows:
            rejects.refresh()
            append_with_offsets(
                rejects, refined.rejects, "refine:consumption", window_ends, props, max_attempts, coords=_COORDS
            )
        commit = append_with_offsets(
            target, refined.rows, REFINE_GROUP, window_ends, props, max_attempts, coords=_COORDS
        )
        total = TableCommit(
            total.table,
            commit.snapshot_id or total.snapshot_id,
            total.rows + commit.rows,
            total.dropped + commit.dropped,
            total.attempts + commit.attempts,
            total.seconds + commit.seconds,
        )
    return total


def rebuild_consumption(catalog: Catalog, settings: LakehouseSettings) -> TableCommit:
    """Drop and recreate the consumption table (and its rejects) from the events table: the same rows."""
    for name in (CONSUMPTION, REFINE_REJECTS):
        ident = identifier(settings, name)
        if catalog.table_exists(ident):
            catalog.drop_table(ident)
    return refine_consumption(catalog, settings)


def read_consumption(table: Table, snapshot_id: int | None = None) -> pa.Table:
    """The consumption table at a snapshot, as Arrow."""
    return table.scan(snapshot_id=snapshot_id).to_arrow()
