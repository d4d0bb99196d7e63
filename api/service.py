"""The API's services over the lakehouse: discovery, replay, extracts, audit. No HTTP here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa

from access.entitlements import Entitlement
from access.masking import mask_batch
from access.policy import Policy, load_policy
from access.principal import ALL_ROWS, SERVICE_ROLES, Principal
from api.errors import ApiError
from api.formats import Format
from api.settings import ApiSettings
from contract.topics import load_topic_catalogue
from lakehouse.catalog import open_catalog
from lakehouse.errors import LakehouseError
from lakehouse.history import list_snapshots, resolve_snapshot
from lakehouse.offsets import snapshot_offsets
from lakehouse.query import EventQuery, iter_event_batches, iter_typed_batches, read_events
from lakehouse.refine.registration import APPOINTMENT_INTERFACES, SOURCE_COLUMNS, registration_intervals
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import ACCESS_LOG, CONSUMPTION, EVENTS, REGISTRATION, TABLES, ensure_table
from lakehouse.writer import append_rows

log = logging.getLogger(__name__)

REPLAY_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "kafka_timestamp_type",
    "key",
    "headers",
    "value",
    "mpan",
    "settlement_date",
    "interface_id",
    "transaction_id",
)


@dataclass(frozen=True)
class ExtractFilters:
    """What every extract can be filtered and pinned by (the typed tables and the events)."""

    date_from: date | None = None
    date_to: date | None = None
    mpans: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    snapshot_id: int | None = None
    as_of: datetime | None = None
    tag: str | None = None
    format: Format = "ndjson"

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class ReplayPage:
    """One page of a replay: its rows, masked batch by batch as they are sent, and how to go on."""

    snapshot_id: int | None
    visible: pa.Table  # entitled, not yet masked
    resume_offsets: dict[int, int]
    next_cursor: str | None
    mask: Callable[[pa.Table], pa.Table]

    def batches(self, first: int, rest: int) -> Iterator[pa.Table]:
        """Masked batches: a small first one (the first byte goes out early), then ``rest`` rows each."""
        start = 0
        size = first
        while start < self.visible.num_rows:
            yield self.mask(self.visible.slice(start, size))
            start += size
            size = rest

    @property
    def rows(self) -> pa.Table:
        """The whole page, masked (for callers that want it at once)."""
        return self.mask(self.visible)


@dataclass
class AccessRecord:
    """What the audit log keeps of one replay or extract."""

    principal: Principal
    endpoint: str
    filters: Mapping[str, object]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    snapshot_id: int | None = None
    rows: int = 0
    nbytes: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    outcome: str = "ok"


class EventStoreService:
    """Everything the routes need, built once per process."""

    def __init__(self, api: ApiSettings, lake: LakehouseSettings) -> None:
        self.api = api
        self.lake = lake
        self.catalog = open_catalog(lake)
        self.policy: Policy = load_policy(api.policy_file)
        self.catalogue = load_topic_catalogue()
        self._mask_secret = api.mask_secret.get_secret_value().encode()
        self._tables: dict[str, Any] = {}
        self._interval_cache: dict[int | None, pa.Table] = {}
        self._interval_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the tables and the current registration intervals, so the first request is fast."""
        for name in (EVENTS, CONSUMPTION, REGISTRATION, ACCESS_LOG):
            self.table(name)
        self._intervals(resolve_snapshot(self.table(EVENTS)))

    def table(self, name: str):  # type: ignore[no-untyped-def]
        """The table, loaded once (and its migrations checked), refreshed to its latest metadata."""
        t = self._tables.get(name)
        if t is None:
            t = self._tables[name] = ensure_table(self.catalog, self.lake, name)
        else:
            t.refresh()
        return t

    # -- discovery ------------------------------------------------------------------------
    def topics(self) -> list[dict[str, object]]:
        events = self.table(EVENTS)
        held = snapshot_offsets(events)
        latest: dict[tuple[str, int], int] = {}
        for parts in held.values():
            for tp, n in parts.items():
                latest[tp] = max(latest.get(tp, 0), n)
        stats: dict[str, dict[str, Any]] = {}
        if events.current_snapshot() is not None:
            files = events.inspect.files()
            for part, count in zip(
                files.column("partition").to_pylist(), files.column("record_count").to_pylist(), strict=True
            ):
                s = stats.setdefault(part["topic"], {"rows": 0, "dates": []})
                s["rows"] = int(s["rows"]) + int(count)
                s["dates"].append(part["settlement_date"])
        out = []
        for spec in self.catalogue.topics:
            s = stats.get(spec.name, {"rows": 0, "dates": []})
            dates: list[date] = s["dates"]
            out.append(
                {
                    "topic": spec.name,
                    "interface": spec.interface,
                    "domain": spec.domain,
                    "partitions": spec.partitions,
                    "rows": s["rows"],
                    "earliest_settlement_date": min(dates).isoformat() if dates else None,
                    "latest_settlement_date": max(dates).isoformat() if dates else None,
                    "next_offsets": {str(p): n for (t, p), n in sorted(latest.items()) if t == spec.name},
                }
            )
        return out

    def snapshots(self, table: str) -> list[dict[str, object]]:
        if table not in TABLES:
            raise ApiError(404, "unknown_table", f"no table {table!r}")
        return [s.to_json(with_offsets=False) for s in list_snapshots(self.table(table))]

    # -- replay ---------------------------------------------------------------------------
    def _sign(self, payload: bytes) -> str:
        mac = hmac.new(self.api.cursor_secret.get_secret_value().encode(), payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")

    def _unsign(self, cursor: str) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, mac = raw[:-16], raw[-16:]
            good = hmac.new(self.api.cursor_secret.get_secret_value().encode(), payload, hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(mac, good):
                raise ValueError("signature")
            doc: dict[str, Any] = orjson.loads(payload)
            return doc
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise ApiError(400, "invalid_cursor", "the cursor is malformed or was tampered with") from exc

    def replay(
        self,
        principal: Principal,
        topic: str,
        from_offsets: dict[int, int] | None,
        from_time: datetime | None,
        to_offsets: dict[int, int] | None,
        limit: int,
        cursor: str | None,
    ) -> ReplayPage:
        """One page of everything in ``topic`` from the given positions, pinned to one snapshot."""
        spec = self.catalogue.by_name(topic)
        if spec is None:
            raise ApiError(404, "unknown_topic", f"no topic {topic!r}")
        events = self.table(EVENTS)
        if cursor:
            state = self._unsign(cursor)
            if state.get("topic") != topic or state.get("sub") != principal.subject:
                raise ApiError(400, "invalid_cursor", "the cursor belongs to another replay")
            snapshot_id = int(state["snap"]) if state.get("snap") is not None else None
            positions = {int(k): int(v) for k, v in state["pos"].items()}
            ends = {int(k): int(v) for k, v in (state.get("end") or {}).items()}
        else:
            snapshot_id = resolve_snapshot(events)
            ends = dict(to_offsets or {})
            positions = {p: 0 for p in range(spec.partitions)}
            if from_offsets:
                positions.update(from_offsets)
            if from_time is not None:
                positions = self._offsets_for_time(events, topic, snapshot_id, from_time, spec.partitions)
        held = {p: n for (t, p), n in _merged_offsets(events, snapshot_id).items() if t == topic}
        # read at most ``limit`` offsets per partition: a page never reads the rest of the topic
        windows = {p: (lo, min(lo + limit, ends.get(p, lo + limit), held.get(p, lo))) for p, lo in positions.items()}
        query = EventQuery(
            topics=(topic,),
            min_offset=min(positions.values()) if positions else 0,
            max_offset=max((hi for _, hi in windows.values()), default=0),
            partition_offsets=tuple((p, lo, hi) for p, (lo, hi) in sorted(windows.items())),
        )
        rows = pa.table({})
        if snapshot_id is not None and positions:
            rows = read_events(events, query, REPLAY_COLUMNS, snapshot_id)
            rows = rows.sort_by([("partition", "ascending"), ("offset", "ascending")])
        truncated = rows.num_rows > limit
        page = rows.slice(0, limit)
        new_pos = dict(positions)
        last_partition = None
        if page.num_rows:
            last = page.group_by("partition").aggregate([("offset", "max")])
            for p, m in zip(last["partition"].to_pylist(), last["offset_max"].to_pylist(), strict=True):
                new_pos[p] = m + 1
            last_partition = page["partition"][page.num_rows - 1].as_py()
        for p, (_lo, hi) in windows.items():
            if not truncated or (last_partition is not None and p < last_partition):
                new_pos[p] = max(new_pos[p], hi)  # every event of this window is in the page
        targets = {p: min(held.get(p, new_pos[p]), ends.get(p, held.get(p, new_pos[p]))) for p in new_pos}
        more = truncated or any(new_pos[p] < targets[p] for p in new_pos)
        if not more:  # everything in the snapshot read: resume where the store stands
            for p in new_pos:
                new_pos[p] = max(new_pos[p], targets[p])
        visible = self._entitled(principal, page, snapshot_id)
        next_cursor = None
        if more:
            next_cursor = self._sign(
                orjson.dumps(
                    {
                        "topic": topic,
                        "sub": principal.subject,
                        "snap": snapshot_id,
                        "pos": {str(k): v for k, v in new_pos.items()},
                        "end": {str(k): v for k, v in ends.items()},
                    }
                )
            )
        return ReplayPage(
            snapshot_id,
            visible,
            new_pos,
            next_cursor,
            lambda t: mask_batch(t, principal.role, self.policy, self._mask_secret),
        )

    def _offsets_for_time(
        self,
        events: Any,
        topic: str,
        snapshot_id: int | None,
        at: datetime,
        partitions: int,
    ) -> dict[int, int]:
        """Like Kafka's offsetsForTimes: the first offset per partition with timestamp >= ``at``."""
        held = {p: n for (t, p), n in _merged_offsets(events, snapshot_id).items() if t == topic}
        out = {p: held.get(p, 0) for p in range(partitions)}
        if snapshot_id is None:
            return out
        rows = read_events(events, EventQuery(topics=(topic,), since=at), ("partition", "offset"), snapshot_id)
        if rows.num_rows:
            first = rows.group_by("partition").aggregate([("offset", "min")])
            for p, m in zip(first["partition"].to_pylist(), first["offset_min"].to_pylist(), strict=True):
                out[p] = m
        return out

    def _entitled(self, principal: Principal, rows: pa.Table, snapshot_id: int | None) -> pa.Table:
        if principal.role in ALL_ROWS or rows.num_rows == 0:
            return rows
        return self._entitlement(principal, snapshot_id)(rows)

    def _entitlement(self, principal: Principal, events_snapshot: int | None) -> Entitlement:
        """What ``principal`` may see, with the appointment history as of ``events_snapshot`` if it needs it."""
        needs_history = principal.role == "SUP" or principal.role in SERVICE_ROLES
        return Entitlement(principal, self._intervals(events_snapshot) if needs_history else None)

    def _intervals(self, snapshot_id: int | None) -> pa.Table:
        """Appointment intervals as of the events snapshot (a few recent snapshots are cached)."""
        with self._interval_lock:
            cached = self._interval_cache.get(snapshot_id)
        if cached is not None:
            return cached
        computed = self._compute_intervals(snapshot_id)
        with self._interval_lock:
            while len(self._interval_cache) >= 4:
                self._interval_cache.pop(next(iter(self._interval_cache)))
            self._interval_cache[snapshot_id] = computed
        return computed

    def _compute_intervals(self, snapshot_id: int | None) -> pa.Table:
        events = self.table(EVENTS)
        reg = read_events(
            events,
            EventQuery(interfaces=APPOINTMENT_INTERFACES),  # energisation and consent change no entitlement
            SOURCE_COLUMNS,
            snapshot_id,
        )
        return registration_intervals(reg)

    # -- extracts -------------------------------------------------------------------------
    def _pin(self, table: Any, f: ExtractFilters, name: str) -> int | None:
        """The snapshot an extract reads (404 when outside the retained history); checks columns."""
        try:
            snap = resolve_snapshot(table, f.snapshot_id, f.as_of, f.tag)
        except LakehouseError as exc:
            raise ApiError(404, "snapshot_not_found", str(exc)) from exc
        unknown = [c for c in f.columns if c not in TABLES[name].arrow_schema.names]
        if unknown:
            raise ApiError(400, "unknown_column", f"no such columns: {', '.join(unknown)}")
        return snap

    def extract_events(
        self, principal: Principal, f: ExtractFilters, topics: tuple[str, ...] = (), interface: str | None = None
    ) -> tuple[int | None, Iterator[pa.RecordBatch], pa.Schema]:
        """Filtered events as masked Arrow batches from one pinned snapshot."""
        events = self.table(EVENTS)
        for t in topics:
            if self.catalogue.by_name(t) is None:
                raise ApiError(404, "unknown_topic", f"no topic {t!r}")
        snap = self._pin(events, f, EVENTS)
        schema = TABLES[EVENTS].arrow_schema
        if snap is None:
            return snap, *self._protect(principal, iter(()), schema, None, f.columns)
        query = EventQuery(
            topics=topics,
            date_from=f.date_from,
            date_to=f.date_to,
            mpans=f.mpans,
            interfaces=(interface,) if interface else (),
        )
        batches = iter_event_batches(events, query, None, snap, self.api.batch_rows)
        return snap, *self._protect(principal, batches, schema, snap, f.columns)

    def extract_typed(
        self, principal: Principal, name: str, f: ExtractFilters
    ) -> tuple[int | None, Iterator[pa.RecordBatch], pa.Schema]:
        """The typed ``consumption`` or ``registration`` table, filtered, entitled and masked."""
        table = self.table(name)
        snap = self._pin(table, f, name)
        schema = TABLES[name].arrow_schema
        if snap is None:
            return snap, *self._protect(principal, iter(()), schema, None, f.columns)
        batches = iter_typed_batches(table, name, f.date_from, f.date_to, f.mpans, snap, self.api.batch_rows)
        # entitlements come from the registration history in the events table's current snapshot
        return snap, *self._protect(principal, batches, schema, resolve_snapshot(self.table(EVENTS)), f.columns)

    def extract_consumption_aggregate(
        self, principal: Principal, f: ExtractFilters, by: AggregateLevel
    ) -> tuple[int | None, Iterator[pa.RecordBatch], pa.Schema]:
        """Consumption summed over the MPANs the caller is entitled to, per day or half hour.

        Groups are (UTC settlement date[, period end], measurement quantity, distributor); a group
        of fewer than ``aggregate_min_mpans`` MPANs is left out so no household can be singled
        out. No MPAN, and so nothing personal, is in the output: every role may ask.
        """
        table = self.table(CONSUMPTION)
        snap = self._pin(table, f, CONSUMPTION)
        schema = aggregate_schema(by)
        if snap is None:
            return snap, iter(()), schema
        entitled = self._entitlement(principal, resolve_snapshot(self.table(EVENTS)))
        columns = ["mpan", "measurement_quantity", "utc_settlement_date", "period_end_utc", "consumption_kwh"]
        source = iter_typed_batches(table, CONSUMPTION, f.date_from, f.date_to, f.mpans, snap, self.api.batch_rows)
        stream = (entitled(t).select(columns) for t in _coalesce(source, self.api.batch_rows))
        rows = summarise_consumption(stream, by, self.api.aggregate_min_mpans)
        return snap, iter(rows.cast(schema).to_batches(max_chunksize=self.api.batch_rows)), schema

    def _protect(
        self,
        principal: Principal,
        batches: Iterator[pa.RecordBatch],
        schema: pa.Schema,
        events_snapshot: int | None,
        columns: tuple[str, ...],
    ) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
        """Entitle and mask a stream of batches, batch by batch; return the stream and its schema."""
        out_schema = mask_batch(schema.empty_table(), principal.role, self.policy, self._mask_secret).schema
        if columns:
            out_schema = pa.schema([out_schema.field(c) for c in columns if c in out_schema.names])
        entitled = self._entitlement(principal, events_snapshot)

        def run() -> Iterator[pa.RecordBatch]:
            for rows in _coalesce(batches, self.api.batch_rows):
                rows = entitled(rows)
                masked = mask_batch(rows, principal.role, self.policy, self._mask_secret)
                masked = masked.select(out_schema.names).cast(out_schema)
                yield from masked.to_batches(max_chunksize=self.api.batch_rows)

        return run(), out_schema

    # -- audit ----------------------------------------------------------------------------
    def audit(self, record: AccessRecord) -> None:
        """Append one access to the access-log table (never raises into the response)."""
        now = datetime.now(UTC)
        row = pa.table(
            {
                "day": pa.array([record.started_at.date()], pa.date32()),
                "started_at": pa.array([record.started_at], pa.timestamp("us", tz="UTC")),
                "ended_at": pa.array([now], pa.timestamp("us", tz="UTC")),
                "subject": pa.array([record.principal.subject], pa.large_string()),
                "role": pa.array([record.principal.role], pa.large_string()),
                "endpoint": pa.array([record.endpoint], pa.large_string()),
                "filters": pa.array([orjson.dumps(record.filters, default=str).decode()], pa.large_string()),
                "snapshot_id": pa.array([record.snapshot_id], pa.int64()),
                "rows": pa.array([record.rows], pa.int64()),
                "bytes": pa.array([record.nbytes], pa.int64()),
                "checksum": pa.array([record.digest.hexdigest()], pa.large_string()),
                "outcome": pa.array([record.outcome], pa.large_string()),
            },
            schema=TABLES[ACCESS_LOG].arrow_schema,
        )
        try:
            append_rows(self.table(ACCESS_LOG), row)
        except Exception as exc:  # the response is already sent: log loudly, never break it
            log.error(
                "audit_write_failed",
                extra={
                    "endpoint": record.endpoint,
                    "subject": record.principal.subject,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )

    def audit_log(self, limit: int) -> list[dict[str, object]]:
        t = self.table(ACCESS_LOG)
        if t.current_snapshot() is None:
            return []
        rows = t.scan().to_arrow().sort_by([("started_at", "descending")]).slice(0, limit)
        return [
            {k: (v.isoformat() if isinstance(v, (datetime, date)) else v) for k, v in r.items()}
            for r in rows.to_pylist()
        ]


AggregateLevel = Literal["day", "period"]


def aggregate_schema(by: AggregateLevel) -> pa.Schema:
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
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
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


def _coalesce(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Small batches (one per small file) gathered into tables of about ``rows`` rows."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _merged_offsets(events, snapshot_id: int | None) -> dict[tuple[str, int], int]:  # type: ignore[no-untyped-def]
    """Next offset per topic-partition held by the snapshot, over every ingest group."""
    snap = events.metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    out: dict[tuple[str, int], int] = {}
    if snap is None:
        return out
    for parts in snapshot_offsets(events, snap).values():
        for tp, n in parts.items():
            out[tp] = max(out.get(tp, 0), n)
    return out
