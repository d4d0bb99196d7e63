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

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from lakehouse.datafiles import publish_data_file, required_nulls, staged_copy
from lakehouse.duck import connect, iceberg_scan_sql
from lakehouse.offsets import committed_offsets, snapshot_offsets
from lakehouse.query import EventQuery, read_events
from lakehouse.read import partition_values, plan_files
from lakehouse.refine.watermark import REFINE_GROUP
from lakehouse.settings import LakehouseSettings
from lakehouse.storage import filesystem_for_paths
from lakehouse.tables import CONSUMPTION, EVENTS, REFINE_REJECTS, TABLES, ensure_table, identifier
from lakehouse.writer import TableCommit, add_files_with_offsets, append_with_offsets

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
SLOT_US = 30 * 60 * 1_000_000  # one settlement period
Dates = tuple[date | None, date | None]  # the first and last UTC settlement dates of a window
REFUSED = "refused"
_CLOCK_MAX_DAYS = 400  # a window's settlement dates spanning more (one sent in error) are dated row by row
# One pass: parse, unnest, type, date and flag every period; the rows of the table, plus a bucket
# (the UTC settlement date, or 'refused') to partition the output by. A refused row keeps its reason
# in refine_flag and the period end as sent in consumption_raw, until it becomes a refine_rejects row.
_EXPLODE = f"""
WITH docs AS (
    SELECT mpan, settlement_date, transaction_id, sender_timestamp, topic, "partition", "offset", landed_at,
           from_json(decode("value"), '{_STRUCTURE}').CustomBlock AS c
    FROM ({{source}})
), periods AS (
    SELECT mpan, settlement_date, transaction_id, sender_timestamp, topic, "partition", "offset", landed_at,
           c.measurementQuantityID AS measurement_quantity, c.dataServiceDIPID AS data_service_dip_id,
           c.connectionType AS connection_type,
           unnest(CASE WHEN len(c.periods) > 0 THEN c.periods ELSE [NULL] END) AS p
    FROM docs
), typed AS (
    SELECT *, TRY_CAST(p.consumption AS DECIMAL(12, 3)) AS kwh, TRY_CAST(p.consumption AS DOUBLE) AS kwh_double,
           TRY_CAST(p.settlementPeriodEffectiveToDateTime AS TIMESTAMPTZ) AS period_end_utc
    FROM periods
), checked AS (
    SELECT *, epoch_us(period_end_utc) - {SLOT_US} AS start_us,
           CASE WHEN p IS NULL THEN 'no_periods' WHEN mpan IS NULL THEN 'missing_mpan'
                WHEN measurement_quantity IS NULL THEN 'missing_quantity'
                WHEN period_end_utc IS NULL OR NOT isfinite(period_end_utc) THEN 'invalid_period_end' END AS refused
    FROM typed
)
SELECT mpan, measurement_quantity, settlement_date AS utc_settlement_date,
       CASE WHEN refused IS NULL THEN period_end_utc END AS period_end_utc, {{local}},
       kwh AS consumption_kwh, p.settlementPeriodQualityIndicator AS quality_indicator,
       TRY_CAST(p.estimationReasonCode AS INTEGER) AS estimation_reason,
       data_service_dip_id, connection_type, transaction_id, sender_timestamp,
       topic AS source_topic, CAST("partition" AS INTEGER) AS source_partition,
       CAST("offset" AS BIGINT) AS source_offset, landed_at,
       CASE WHEN refused IS NOT NULL THEN p.settlementPeriodEffectiveToDateTime
            WHEN kwh IS NULL OR kwh_double <> CAST(kwh AS DOUBLE) THEN p.consumption END AS consumption_raw,
       CASE WHEN refused IS NOT NULL THEN refused
            WHEN p.consumption IS NULL THEN NULL
            WHEN kwh IS NULL THEN 'out_of_range'
            WHEN kwh_double <> CAST(kwh AS DOUBLE) THEN 'excess_precision' END AS refine_flag,
       CASE WHEN refused IS NOT NULL THEN '{REFUSED}' ELSE CAST(settlement_date AS VARCHAR) END AS bucket
FROM checked
"""
# The rows of a window whose events all hold one settlement date, written as one file (no
# partitioning work); a refused row has no period end, so a null there (in the file's footer
# statistics) sends the window down the partitioned pass, which sets refused rows aside.
_ONE_DATE = "SELECT * EXCLUDE (bucket) FROM ({explode})"
# Europe/London date and period of a row: looked up by index in the clock of the window's half
# hours, or, for a period outside it (a far-off date sent in error), computed row by row.
_IN_CLOCK = "start_us >= {origin} AND start_us < {end}"
_BY_CLOCK = "getvariable('mhhs_local_{name}')[(start_us - {origin}) // {slot} + 1]"
_ROW_DATE = f"CAST(timezone('{LONDON.key}', period_end_utc - INTERVAL 30 MINUTE) AS DATE)"
_ROW_PERIOD = (
    f"CAST((start_us - epoch_us(timezone('{LONDON.key}', CAST({_ROW_DATE} AS TIMESTAMP)))) // {SLOT_US} + 1 AS INTEGER)"
)
_FIELDS = {
    "no_periods": "CustomBlock.periods",
    "missing_mpan": "CommonBlock.M0.MPANCore",
    "missing_quantity": "CustomBlock.measurementQuantityID",
    "invalid_period_end": "CustomBlock.periods.settlementPeriodEffectiveToDateTime",
}


def _clock(con: duckdb.DuckDBPyConnection, first: date | None, last: date | None) -> str:
    """The select terms that date the rows: ``local_settlement_date`` and ``local_period``.

    The Europe/London date and period number (46/48/50 on clock-change days) of every half hour of
    the UTC settlement dates ``first`` to ``last`` (a day either side), computed once (zoneinfo,
    vectorised) and held in two DuckDB list variables, so a row is dated by an index.
    """
    if first is None or last is None or (last - first).days > _CLOCK_MAX_DAYS:
        return f"{_ROW_DATE} AS local_settlement_date, {_ROW_PERIOD} AS local_period"
    origin = (first - date(1970, 1, 1)).days * 48 * SLOT_US - 48 * SLOT_US
    starts_us = pa.array(range(origin, origin + ((last - first).days + 3) * 48 * SLOT_US, SLOT_US), pa.int64())
    start = pc.cast(starts_us, pa.timestamp("us", tz="UTC"))
    local_date = pc.cast(
        pc.floor_temporal(pc.local_timestamp(pc.cast(start, pa.timestamp("us", tz=LONDON.key))), unit="day"),
        pa.date32(),
    )
    days = pc.unique(local_date)
    midnights = pa.array(
        [int(datetime(d.year, d.month, d.day, tzinfo=LONDON).timestamp()) * 1_000_000 for d in days.to_pylist()],
        pa.int64(),
    )
    midnight = pc.take(midnights, pc.index_in(local_date, days))
    period = pc.cast(pc.add(pc.divide(pc.subtract(starts_us, midnight), SLOT_US), 1), pa.int32())
    con.register("clock", pa.table({"dates": local_date, "periods": period}))
    con.execute("SET VARIABLE mhhs_local_dates = (SELECT list(dates) FROM clock)")
    con.execute("SET VARIABLE mhhs_local_periods = (SELECT list(periods) FROM clock)")
    con.unregister("clock")
    inside = _IN_CLOCK.format(origin=origin, end=origin + len(starts_us) * SLOT_US)

    def term(name: str, by_row: str) -> str:
        return f"CASE WHEN {inside} THEN {_BY_CLOCK.format(name=name, origin=origin, slot=SLOT_US)} ELSE {by_row} END"

    return f"{term('dates', _ROW_DATE)} AS local_settlement_date, {term('periods', _ROW_PERIOD)} AS local_period"


def _rejects(bad: pa.Table, refined_at: datetime) -> pa.Table:
    """The refused period rows as ``refine_rejects`` rows, each with the field and why."""
    schema = TABLES[REFINE_REJECTS].arrow_schema
    n = bad.num_rows
    reasons = bad["refine_flag"]
    out = {
        "target": pa.array([CONSUMPTION] * n, pa.large_string()),
        "source_topic": bad["source_topic"],
        "source_partition": bad["source_partition"],
        "source_offset": bad["source_offset"],
        "transaction_id": bad["transaction_id"],
        "mpan": bad["mpan"],
        "utc_settlement_date": bad["utc_settlement_date"],
        "field": pa.array([_FIELDS[r] for r in reasons.to_pylist()], pa.string()),
        "value_as_sent": bad["consumption_raw"],
        "reason": reasons,
        "refined_at": pa.array([refined_at] * n, pa.timestamp("us", tz="UTC")),
    }
    return pa.table({k: pc.cast(v, schema.field(k).type) for k, v in out.items()}, schema=schema)


@dataclass(frozen=True, slots=True)
class Refined:
    """One window of IF-021 events, refined: data files of consumption rows, and the rows set aside."""

    files: list[DataFile]
    rows: int
    rejects: pa.Table


def explode_consumption(
    con: duckdb.DuckDBPyConnection,
    source: str,
    dates: Dates,
    target: Table,
    refined_at: datetime | None = None,
) -> Refined:
    """IF-021 events (the rows of the query ``source``) -> consumption data files, not yet committed, and rejects.

    One streaming pass in DuckDB: each document parsed once, its periods unnested, typed, dated and
    written as Parquet, partitioned by UTC settlement date, straight from DuckDB's vectors (no
    Arrow copy of the rows, no re-split); the refused rows go to a file of their own, read back as
    ``refine_rejects`` rows. A window of one settlement date (``dates``, from the events' partitions:
    most windows of a live day) is written unpartitioned, which costs less, unless a row is
    refused. Rows are written in the order DuckDB produces them, not sorted: ``mhhs lake compact``
    rewrites a partition's files into one sorted by (MPAN, period end).
    """
    con.execute("SET TimeZone = 'UTC'")  # a period end sent without an offset is UTC, whatever the host
    sql = _EXPLODE.replace("{source}", source).replace("{local}", _clock(con, *dates))
    files: list[DataFile] = []
    rejects = TABLES[REFINE_REJECTS].arrow_schema.empty_table()
    first, last = dates
    if first is not None and first == last:
        with staged_copy(con, _ONE_DATE.format(explode=sql), target) as staged:
            paths = [p for p in staged[""] if pq.read_metadata(p).num_rows]  # DuckDB writes a file for no rows too
            if not any(required_nulls(target, p) for p in paths):
                files = [publish_data_file(target, p, {"utc_settlement_date": first}) for p in paths]
                return Refined(files, sum(f.record_count for f in files), rejects)
    with staged_copy(con, sql, target, "bucket") as staged:
        for bucket, paths in sorted(staged.items()):
            if bucket == REFUSED:
                bad = pa.concat_tables([pq.read_table(p) for p in paths])
                rejects = _rejects(bad, refined_at or datetime.now(UTC))
                continue
            day = date.fromisoformat(bucket)
            files.extend(publish_data_file(target, p, {"utc_settlement_date": day}) for p in paths)
    return Refined(files, sum(f.record_count for f in files), rejects)


def _as_date(value: object) -> date:
    """A date partition value (pyiceberg gives days since the epoch)."""
    return value if isinstance(value, date) else date(1970, 1, 1) + timedelta(days=int(value))  # type: ignore[call-overload]


def _source(events: Table, snapshot_id: int, query: EventQuery, con: duckdb.DuckDBPyConnection) -> tuple[str, Dates]:
    """The window's IF-021 events as a DuckDB query, and the first and last settlement dates they hold.

    DuckDB reads a table on the local disk itself (``iceberg_scan`` at the snapshot, filtered to the
    window); a table in an object store is read through pyiceberg into Arrow first.
    """
    tasks = plan_files(events, query.iceberg(), snapshot_id)
    days = [_as_date(partition_values(t)[1]) for t in tasks]
    dates = (min(days), max(days)) if days else (None, None)
    fs, _ = filesystem_for_paths([t.file.file_path for t in tasks] or [events.location()], events.io.properties)
    columns = ", ".join(f'"{c}"' for c in SOURCE_COLUMNS)
    if isinstance(fs, pafs.LocalFileSystem):
        windows = " OR ".join(
            f'("partition" = {p} AND "offset" >= {lo} AND "offset" < {hi})' for p, lo, hi in query.partition_offsets
        )
        where = f"topic = '{CONSUMPTION_TOPIC}'" + (f" AND ({windows})" if windows else "")
        return f"SELECT {columns} FROM {iceberg_scan_sql(events, snapshot_id)} WHERE {where}", dates
    con.register("batch", read_events(events, query, SOURCE_COLUMNS, snapshot_id))
    return f"SELECT {columns} FROM batch", dates


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
    if source is None:
        return TableCommit(".".join(target.name()), None, 0, 0, 0, 0.0)
    held = _held(events, source.snapshot_id)
    con = connect()  # one for the run: connecting and loading the extensions costs ~0.2 s
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    try:
        return _refine_windows(con, events, target, rejects, source.snapshot_id, held, size, max_attempts)
    finally:
        con.close()


def _refine_windows(
    con: duckdb.DuckDBPyConnection,
    events: Table,
    target: Table,
    rejects: Table,
    source_id: int,
    held: dict[tuple[str, int], int],
    size: int,
    max_attempts: int,
) -> TableCommit:
    """Refine and commit window by window until the target holds every offset in ``held``."""
    props = {"mhhs.refined-from-snapshot": str(source_id)}
    total = TableCommit(".".join(target.name()), None, 0, 0, 0, 0.0)
    while windows := _windows(watermark := committed_offsets(target, REFINE_GROUP), held, size):
        query = EventQuery(
            topics=(CONSUMPTION_TOPIC,),
            min_offset=min(lo for lo, _ in windows.values()),
            max_offset=max(hi for _, hi in windows.values()),
            partition_offsets=tuple((p, lo, hi) for p, (lo, hi) in sorted(windows.items())),
        )
        events.refresh()  # DuckDB reads the current metadata file: older ones are deleted as ingest commits
        # the window's offsets are below what source_id held, so every later snapshot has the same rows:
        # read the current one (source_id may be expired by now, under busy ingest)
        current = events.current_snapshot()
        sql, dates = _source(events, current.snapshot_id if current is not None else source_id, query, con)
        try:
            refined = explode_consumption(con, sql, dates, target)
        finally:
            con.unregister("batch")  # the window's events, when read through pyiceberg: not kept for the next
        window_ends = {(CONSUMPTION_TOPIC, p): hi for p, (_, hi) in windows.items()}
        starts = {tp: watermark.get(tp, 0) for tp in window_ends}
        if refined.rejects.num_rows:
            rejects.refresh()
            append_with_offsets(
                rejects, refined.rejects, "refine:consumption", window_ends, props, max_attempts, coords=_COORDS
            )
        commit = add_files_with_offsets(
            target, refined.files, refined.rows, REFINE_GROUP, starts, window_ends, props, max_attempts
        )
        if commit is None:  # another run refined (part of) this window first: plan again from its watermark
            target.refresh()
            continue
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
