"""Filtered extracts of the events and typed tables, entitled and masked, from one pinned snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import pyarrow as pa

from access.guard import AccessGuard
from access.principal import Principal
from api.services.errors import InvalidRequestError, NotFoundError
from contract.topics import TopicCatalogue, load_topic_catalogue
from lakehouse.current import Versions
from lakehouse.errors import LakehouseError
from lakehouse.query import EventQuery
from lakehouse.read import prefetched
from lakehouse.store import Store
from lakehouse.tables import EVENTS, TABLES

Extract = tuple[int | None, Iterator[pa.RecordBatch], pa.Schema]
"""The snapshot read, the batches to send and their schema."""

TYPED_BATCH_ROWS = 8_192
"""Rows per batch of a typed extract after its first (``batch_rows``, for a quick first byte).

Typed rows are small (~200 bytes in Arrow: ~1.6 MB a batch); in batches of 2,000 the per-batch work
(reading, entitling, writing, sending) cost as much as the rows themselves. Larger batches were no
faster, delayed the first one (64k rows: +0.1 s) and raised the peak RSS (CSV and NDJSON text
takes several times a batch's size while it is made: 16k rows, +150 MB). Event rows carry
payloads: ``batch_rows``.
"""


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
    format: str = "ndjson"

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def pin_snapshot(store: Store, name: str, f: ExtractFilters) -> int | None:
    """The snapshot an extract of ``name`` reads; checks the columns asked for.

    Raises:
        NotFoundError: ``snapshot_not_found`` when outside the retained history.
        InvalidRequestError: for a column the table does not have.
    """
    try:
        snap = store.resolve(name, f.snapshot_id, f.as_of, f.tag)
    except LakehouseError as exc:
        raise NotFoundError(str(exc), "snapshot_not_found") from exc
    unknown = [c for c in f.columns if c not in TABLES[name].arrow_schema.names]
    if unknown:
        raise InvalidRequestError(f"no such columns: {', '.join(unknown)}", "unknown_column")
    return snap


@dataclass
class ExtractService:
    """Events and typed tables for one caller, entitled and masked."""

    _store: Store
    _guard: AccessGuard
    _batch_rows: int
    _catalogue: TopicCatalogue = field(default_factory=load_topic_catalogue)

    def _protect(
        self,
        principal: Principal,
        batches: Iterator[pa.RecordBatch],
        schema: pa.Schema,
        snap: int | None,
        f: ExtractFilters,
        batch_rows: int | None = None,
    ) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
        rows = max(batch_rows or self._batch_rows, self._batch_rows)
        first = self._batch_rows if rows > self._batch_rows else None
        return self._guard.protect(principal, batches, schema, snap, f.columns, rows, first)

    def events(
        self, principal: Principal, f: ExtractFilters, topics: tuple[str, ...] = (), interface: str | None = None
    ) -> Extract:
        """Filtered events as masked Arrow batches from one pinned snapshot.

        Raises:
            NotFoundError: for a topic that is not an MHHS topic.
        """
        for t in topics:
            if self._catalogue.by_name(t) is None:
                raise NotFoundError(f"no topic {t!r}", "unknown_topic")
        snap = pin_snapshot(self._store, EVENTS, f)
        schema = TABLES[EVENTS].arrow_schema
        if snap is None:
            return snap, *self._protect(principal, iter(()), schema, None, f)
        query = EventQuery(
            topics=topics,
            date_from=f.date_from,
            date_to=f.date_to,
            mpans=f.mpans,
            interfaces=(interface,) if interface else (),
        )
        batches = self._store.iter_events(query, snap, self._batch_rows)
        return snap, *self._protect(principal, batches, schema, snap, f)

    def typed(self, principal: Principal, name: str, f: ExtractFilters, versions: Versions = "all") -> Extract:
        """The typed ``consumption`` or ``registration`` table, filtered, entitled and masked.

        ``versions="latest"`` keeps only the current version of each consumption half hour.
        """
        snap = pin_snapshot(self._store, name, f)
        schema = TABLES[name].arrow_schema
        if snap is None:
            return snap, *self._protect(principal, iter(()), schema, None, f)
        rows = max(TYPED_BATCH_ROWS, self._batch_rows)
        batches = self._store.iter_typed(name, f.date_from, f.date_to, f.mpans, snap, rows, versions)
        # entitlements come from the registration history in the events table's current snapshot
        protected, out = self._protect(principal, batches, schema, self._guard.current_snapshot(), f, rows)
        return snap, prefetched(protected), out
