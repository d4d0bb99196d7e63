"""The product's tables behind one object: opened once per process, every read naming its snapshot.

Readers above the lakehouse (access, api, quality, deliveries, notebooks) ask a ``Store`` their
table and snapshot questions by table name; pyiceberg objects stay inside the lakehouse.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    In,
    LessThanOrEqual,
)
from pyiceberg.table import Table

from lakehouse.catalog import open_catalog
from lakehouse.current import EPOCH, Versions, iter_latest_consumption
from lakehouse.errors import CatalogUnavailableError, LakehouseError, SnapshotNotFoundError
from lakehouse.history import SnapshotInfo, list_snapshots, move_tag, remove_tags, resolve_snapshot
from lakehouse.offsets import TP, snapshot_offsets
from lakehouse.query import EventQuery, iter_event_batches, iter_typed_batches, read_events, typed_filters
from lakehouse.read import (
    arrow_schema,
    iter_appended,
    iter_files,
    partition_values,
    plan_files,
    require_snapshot,
    scan_files,
)
from lakehouse.retry import retry_commit
from lakehouse.settings import LakehouseSettings
from lakehouse.storage import filesystem_for_paths
from lakehouse.tables import CONSUMPTION, EVENTS, LEASES, QUARANTINE, TABLES, ensure_table
from lakehouse.writer import append_rows

log = logging.getLogger(__name__)
DATE_COLUMN = {
    "events": "settlement_date",
    "consumption": "utc_settlement_date",
    "quality_findings": "utc_settlement_date",
    "quality_runs": "utc_settlement_date",
    "completeness": "utc_settlement_date",
}
"""The settlement-date partition column of each date-partitioned table."""


@dataclass(frozen=True, slots=True)
class TopicInventory:
    """What the events table holds of one topic: rows and the settlement dates present."""

    rows: int
    earliest: date | None
    latest: date | None


class Store:
    """The catalog and the product's tables, loaded once (migrations applied) and refreshed on use."""

    def __init__(self, settings: LakehouseSettings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self._catalog = catalog or open_catalog(settings)
        self._tables: dict[str, Table] = {}
        self._lock = threading.Lock()
        self._first_offsets: dict[str, tuple[int | None, int | None, dict[int, int]]] = {}

    def table(self, name: str) -> Table:
        """The table ``name`` at its latest metadata (created on first use)."""
        with self._lock:
            t = self._tables.get(name)
            if t is None:
                t = self._tables[name] = ensure_table(self._catalog, self.settings, name)
                return t
        t.refresh()
        return t

    def ping(self) -> None:
        """Ask the catalog something cheap.

        Raises:
            CatalogUnavailableError: if it does not answer.
        """
        try:
            self._catalog.list_tables(self.settings.namespace)
        except Exception as exc:  # pyiceberg raises many kinds; translate them at the boundary
            raise CatalogUnavailableError(f"the catalog does not answer: {exc}") from exc

    # -- snapshots ------------------------------------------------------------------------
    def resolve(
        self, name: str, snapshot_id: int | None = None, as_of: datetime | None = None, tag: str | None = None
    ) -> int | None:
        """The snapshot of ``name`` to read (see ``lakehouse.history.resolve_snapshot``).

        Raises:
            SnapshotNotFoundError: if it is outside the retained history.
            LakehouseError: if more than one of the three is given.
        """
        return resolve_snapshot(self.table(name), snapshot_id, as_of, tag)

    def snapshots(self, name: str) -> list[SnapshotInfo]:
        """Every retained snapshot of ``name``, oldest first."""
        return list_snapshots(self.table(name))

    def held_offsets(self, snapshot_id: int | None) -> dict[TP, int]:
        """Next offset per topic-partition the events snapshot holds, over every ingest group.

        Raises:
            SnapshotNotFoundError: if ``snapshot_id`` is no longer retained (it held nothing, said before:
                a replay whose pin expired meanwhile ended early, as if the store were empty).
        """
        events = self.table(EVENTS)
        out: dict[TP, int] = {}
        if snapshot_id is None:
            return out
        snap = events.metadata.snapshot_by_id(snapshot_id)
        if snap is None:
            raise SnapshotNotFoundError(EVENTS, str(snapshot_id))
        for parts in snapshot_offsets(events, snap).values():
            for tp, n in parts.items():
                out[tp] = max(out.get(tp, 0), n)
        return out

    def topic_inventory(self) -> dict[str, TopicInventory]:
        """Rows and settlement dates per topic in the current events snapshot (from file statistics)."""
        events = self.table(EVENTS)
        if events.current_snapshot() is None:
            return {}
        files = events.inspect.files()
        rows: dict[str, int] = {}
        dates: dict[str, list[date]] = {}
        for part, count in zip(
            files.column("partition").to_pylist(), files.column("record_count").to_pylist(), strict=True
        ):
            rows[part["topic"]] = rows.get(part["topic"], 0) + int(count)
            dates.setdefault(part["topic"], []).append(part["settlement_date"])
        return {t: TopicInventory(n, min(dates[t]), max(dates[t])) for t, n in rows.items()}

    def first_offsets(self, topic: str, events_snapshot: int | None, quarantine_snapshot: int | None) -> dict[int, int]:
        """The first offset the store holds per partition of ``topic`` (events and quarantine together).

        Offsets below it were never landed (Kafka had dropped them before ingest read the topic).
        Computed once per topic and kept while both tables only grow by appends (or compaction).
        """
        with self._lock:
            cached = self._first_offsets.get(topic)
        if (
            cached is not None
            and self._appends_only(EVENTS, cached[0], events_snapshot)
            and self._appends_only(QUARANTINE, cached[1], quarantine_snapshot)
        ):
            return cached[2]
        out: dict[int, int] = {}
        for name, snap in ((EVENTS, events_snapshot), (QUARANTINE, quarantine_snapshot)):
            if snap is None:
                continue
            rows = read_events(self.table(name), EventQuery(topics=(topic,)), ("partition", "offset"), snap)
            if rows.num_rows:
                first = rows.group_by("partition").aggregate([("offset", "min")])
                for p, m in zip(first["partition"].to_pylist(), first["offset_min"].to_pylist(), strict=True):
                    out[p] = min(out.get(p, m), m)
        with self._lock:
            self._first_offsets[topic] = (events_snapshot, quarantine_snapshot, out)
        return out

    def _appends_only(self, name: str, since: int | None, until: int | None) -> bool:
        """True when every snapshot after ``since`` up to ``until`` only added rows (append, or a replace)."""
        if since == until:
            return True
        if since is None or until is None:
            return False
        table = self.table(name)
        snap = table.metadata.snapshot_by_id(until)
        while snap is not None and snap.snapshot_id != since:
            op = snap.summary.operation.value if snap.summary is not None else "unknown"
            if op not in ("append", "replace"):
                return False
            snap = table.metadata.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
        return snap is not None

    # -- reads ----------------------------------------------------------------------------
    def read_events(self, query: EventQuery, columns: tuple[str, ...] | None, snapshot_id: int | None) -> pa.Table:
        """Events matching ``query`` in one snapshot, at once."""
        return read_events(self.table(EVENTS), query, columns, snapshot_id)

    def read_quarantine(self, query: EventQuery, columns: tuple[str, ...] | None, snapshot_id: int | None) -> pa.Table:
        """Quarantined records matching ``query``'s topics and offsets in one snapshot of the quarantine table."""
        return read_events(self.table(QUARANTINE), query, columns, snapshot_id)

    def iter_events(
        self, query: EventQuery, snapshot_id: int | None, batch_rows: int, columns: tuple[str, ...] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Events matching ``query`` in one snapshot, streamed file by file."""
        return iter_event_batches(self.table(EVENTS), query, columns, snapshot_id, batch_rows)

    def iter_typed(
        self,
        name: str,
        date_from: date | None,
        date_to: date | None,
        mpans: tuple[str, ...],
        snapshot_id: int | None,
        batch_rows: int,
        versions: Versions = "all",
    ) -> Iterator[pa.RecordBatch]:
        """Rows of a typed table in one snapshot, streamed file by file.

        ``versions="latest"`` gives only the current version of each consumption half hour
        (``lakehouse.current``), one settlement date at a time.
        """
        if name == CONSUMPTION and versions == "latest":
            return iter_latest_consumption(self.table(name), date_from, date_to, mpans, snapshot_id, batch_rows)
        return iter_typed_batches(self.table(name), name, date_from, date_to, mpans, snapshot_id, batch_rows)

    def date_dataset(
        self,
        name: str,
        date_from: date,
        date_to: date,
        snapshot_id: int | None,
        topics: tuple[str, ...] = (),
        columns: tuple[str, ...] | None = None,
    ) -> tuple[ds.Dataset | pa.Table, str]:
        """The rows of ``name`` with a settlement date in [date_from, date_to] (and ``topics``), lazily.

        Returns an Arrow dataset over exactly the data files Iceberg plans for those partitions (a DuckDB
        or Arrow reader then streams it), and a fingerprint of those files: it changes when the data does.
        Tables whose files carry deletes are read at once instead (the dataset could not apply them).
        """
        column = DATE_COLUMN[name]
        terms: BooleanExpression = And(
            GreaterThanOrEqual(term=column, value=date_from.isoformat()),  # type: ignore[arg-type]
            LessThanOrEqual(term=column, value=date_to.isoformat()),  # type: ignore[arg-type]
        )
        if topics:
            terms = And(terms, In(term="topic", values=topics))  # type: ignore[arg-type]
        table = self.table(name)
        schema = arrow_schema(table, snapshot_id)
        if snapshot_id is None:
            empty = schema.empty_table()
            return (empty.select(list(columns)) if columns else empty), "empty"
        tasks = plan_files(table, terms, snapshot_id)
        fingerprint = hashlib.sha256("\n".join(t.file.file_path for t in tasks).encode()).hexdigest()[:16]
        if any(t.delete_files for t in tasks):
            rows, _ = scan_files(table, terms, None, columns, snapshot_id)
            return rows, fingerprint
        if not tasks:
            empty = schema.empty_table()
            return (empty.select(list(columns)) if columns else empty), fingerprint
        fs, paths = filesystem_for_paths([t.file.file_path for t in tasks], table.io.properties)
        return ds.dataset(paths, format="parquet", filesystem=fs, schema=schema), fingerprint

    def settlement_dates(self, name: str, snapshot_id: int | None = None) -> list[date]:
        """The settlement dates ``name`` holds rows for (from its partitions)."""
        table = self.table(name)
        if table.current_snapshot() is None:
            return []
        column = DATE_COLUMN[name]
        position = [f.name for f in table.spec().fields].index(column)
        days = {partition_values(t)[position] for t in plan_files(table, AlwaysTrue(), snapshot_id)}
        return sorted(d if isinstance(d, date) else EPOCH + timedelta(days=int(str(d))) for d in days)

    def read(self, name: str, snapshot_id: int | None = None) -> pa.Table:
        """A whole (small) table at a snapshot; empty when the table has none."""
        t = self.table(name)
        if t.current_snapshot() is None:
            return t.schema().as_arrow().empty_table()
        require_snapshot(t, snapshot_id)
        return t.scan(snapshot_id=snapshot_id).to_arrow()

    def read_in(self, name: str, column: str, values: list[Any], columns: tuple[str, ...] | None = None) -> pa.Table:
        """The rows of ``name`` (current snapshot) whose ``column`` is one of ``values``; only ``columns``."""
        t = self.table(name)
        names = columns or tuple(t.schema().column_names)
        if t.current_snapshot() is None or not values:
            return t.schema().as_arrow().empty_table().select(list(names))
        return t.scan(row_filter=In(term=column, values=values), selected_fields=names).to_arrow()  # type: ignore[arg-type]

    def iter_rows(
        self,
        name: str,
        query: EventQuery,
        since_snapshot: int | None,
        to_snapshot: int,
        batch_rows: int,
        columns: tuple[str, ...] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Rows of ``name`` at ``to_snapshot`` matching ``query`` (its topics, dates and MPANs); with
        ``since_snapshot``, only those added after it (``lakehouse.read.iter_appended``: Iceberg's
        incremental append scan, or by Kafka position once the snapshots between are expired).

        Raises:
            SnapshotNotFoundError: if ``since_snapshot`` is neither an ancestor of ``to_snapshot`` nor
                retained with the positions it had reached.
        """
        table = self.table(name)
        if name == EVENTS:
            prune, rows_filter = query.iceberg(), query.arrow()
        else:
            prune, rows_filter = typed_filters(name, query.date_from, query.date_to, query.mpans)
        if since_snapshot is None:
            return iter_files(table, prune, rows_filter, columns, to_snapshot, batch_rows)
        return iter_appended(table, prune, rows_filter, columns, since_snapshot, to_snapshot, batch_rows)

    # -- writes ---------------------------------------------------------------------------
    def append_if_absent(self, name: str, rows: pa.Table, key_column: str, key: str) -> bool:
        """Append ``rows`` unless a row with ``key_column == key`` is there already; True when appended.

        Optimistic: the append asserts the snapshot it checked, so two writers racing on the same key
        leave one row (the loser re-reads, finds it, and appends nothing).
        """
        table = self.table(name)

        def attempt(n: int) -> bool:
            if n > 1:
                table.refresh()
            if table.current_snapshot() is not None:
                match = EqualTo(term=key_column, value=key)  # type: ignore[arg-type]
                if table.scan(row_filter=match, selected_fields=(key_column,)).to_arrow().num_rows:
                    return False
            table.append(rows)
            return True

        return retry_commit(".".join(table.name()), attempt, 20)

    def claim_lease(self, name: str, holder: str, seconds: float, now: datetime) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False while another holder's lease runs.

        Raises:
            CommitConflictError: if the leases table keeps losing races.
        """
        table = self.table(LEASES)

        def attempt(n: int) -> bool:
            if n > 1:
                table.refresh()
            if table.current_snapshot() is not None:
                rows = table.scan(row_filter=EqualTo(term="name", value=name)).to_arrow()  # type: ignore[arg-type]
                if rows.num_rows:
                    latest = rows.sort_by([("acquired_at", "descending")]).slice(0, 1).to_pylist()[0]
                    if latest["holder"] != holder and latest["expires_at"] > now:
                        return False
            row = {"name": name, "holder": holder, "acquired_at": now, "expires_at": now + timedelta(seconds=seconds)}
            table.append(pa.Table.from_pylist([row], schema=TABLES[LEASES].arrow_schema))
            return True

        return retry_commit(".".join(table.name()), attempt, 20)

    def release_lease(self, name: str, holder: str, now: datetime) -> None:
        """Give the lease up (it expires now) if ``holder`` holds it."""
        self.claim_lease(name, holder, 0.0, now)

    def move_tag(self, name: str, tag: str, snapshot_id: int, max_age: timedelta | None = None) -> None:
        """Point tag ``tag`` of ``name`` at ``snapshot_id`` (``lakehouse.history.move_tag``).

        Raises:
            SnapshotNotFoundError: if the snapshot is not (or no longer) retained.
            CommitConflictError: if the commit keeps losing races.
        """
        move_tag(self.table(name), tag, snapshot_id, max_age)

    @contextlib.contextmanager
    def holding(self, snapshots: Mapping[str, int | None], tag: str, max_age: timedelta) -> Iterator[None]:
        """Tag ``snapshots`` (table name -> snapshot ID) while the block runs, so expiry cannot take a
        snapshot a long reader pinned; the tags lapse ``max_age`` from now if the process dies first.

        Raises:
            SnapshotNotFoundError: if a snapshot has already been expired.
        """
        held: list[str] = []
        now_ms = datetime.now(UTC).timestamp() * 1000
        try:
            for name, snapshot_id in snapshots.items():
                if snapshot_id is None:
                    continue
                snap = self.table(name).metadata.snapshot_by_id(snapshot_id)
                age = timedelta(milliseconds=max(0.0, now_ms - snap.timestamp_ms)) if snap is not None else timedelta(0)
                self.move_tag(name, tag, snapshot_id, max_age=age + max_age)  # Iceberg counts from the snapshot
                held.append(name)
            yield
        finally:
            for name in held:
                try:
                    self.remove_tag(name, tag)
                except LakehouseError as exc:  # it lapses on its own
                    log.warning("tag_not_removed", extra={"table": name, "tag": tag, "error": str(exc)})

    def remove_tag(self, name: str, tag: str) -> None:
        """Remove tag ``tag`` of ``name`` if it is there.

        Raises:
            CommitConflictError: if the commit keeps losing races.
        """
        remove_tags(self.table(name), [tag])

    def append(self, name: str, rows: pa.Table) -> int | None:
        """Append rows to ``name`` (retrying lost races); return the new snapshot ID.

        Raises:
            CommitConflictError: if the commit keeps losing races.
        """
        return append_rows(self.table(name), rows)
