"""Filters over the events table, built once and used twice: Iceberg planning and Arrow reading."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.dataset as ds
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
)
from pyiceberg.table import Table

from lakehouse.read import iter_files, scan_files


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events: topics, settlement dates, MPANs, interfaces, offsets and timestamps."""

    topics: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    mpans: tuple[str, ...] = ()
    interfaces: tuple[str, ...] = ()
    min_offset: int | None = None
    max_offset: int | None = None  # exclusive
    partition_offsets: tuple[tuple[int, int, int | None], ...] = ()  # (partition, from, to or None)
    since: datetime | None = None

    def iceberg(self) -> BooleanExpression:
        expr: BooleanExpression = AlwaysTrue()
        terms: list[BooleanExpression] = []
        if self.topics:
            terms.append(In(term="topic", values=self.topics))  # type: ignore[arg-type]
        if self.date_from:
            terms.append(GreaterThanOrEqual(term="settlement_date", value=self.date_from.isoformat()))  # type: ignore[arg-type]
        if self.date_to:
            terms.append(LessThanOrEqual(term="settlement_date", value=self.date_to.isoformat()))  # type: ignore[arg-type]
        if self.mpans:
            terms.append(In(term="mpan", values=self.mpans))  # type: ignore[arg-type]
        if self.interfaces:
            terms.append(In(term="interface_id", values=self.interfaces))  # type: ignore[arg-type]
        if self.min_offset is not None:
            terms.append(GreaterThanOrEqual(term="offset", value=self.min_offset))  # type: ignore[arg-type]
        if self.max_offset is not None:
            terms.append(LessThan(term="offset", value=self.max_offset))  # type: ignore[arg-type]
        for t in terms:
            expr = And(expr, t)
        return expr

    def arrow(self) -> ds.Expression | None:
        parts: list[ds.Expression] = []
        if self.topics:
            parts.append(ds.field("topic").isin(list(self.topics)))
        if self.date_from:
            parts.append(ds.field("settlement_date") >= pa.scalar(self.date_from, pa.date32()))
        if self.date_to:
            parts.append(ds.field("settlement_date") <= pa.scalar(self.date_to, pa.date32()))
        if self.mpans:
            parts.append(ds.field("mpan").isin(list(self.mpans)))
        if self.interfaces:
            parts.append(ds.field("interface_id").isin(list(self.interfaces)))
        if self.since is not None:
            parts.append(ds.field("kafka_timestamp") >= pa.scalar(self.since, pa.timestamp("us", tz="UTC")))
        if self.partition_offsets:
            any_part: ds.Expression | None = None
            for p, lo, hi in self.partition_offsets:
                cond = (ds.field("partition") == p) & (ds.field("offset") >= lo)
                if hi is not None:
                    cond = cond & (ds.field("offset") < hi)
                any_part = cond if any_part is None else (any_part | cond)
            assert any_part is not None
            parts.append(any_part)
        if not parts:
            return None
        out = parts[0]
        for p in parts[1:]:
            out = out & p
        return out


def read_events(
    table: Table, query: EventQuery, columns: tuple[str, ...] | None = None, snapshot_id: int | None = None
) -> pa.Table:
    """Events matching ``query`` at ``snapshot_id``, through the planned Arrow read path."""
    rows, _ = scan_files(table, query.iceberg(), query.arrow(), columns, snapshot_id)
    return rows


def iter_event_batches(
    table: Table,
    query: EventQuery,
    columns: tuple[str, ...] | None = None,
    snapshot_id: int | None = None,
    batch_rows: int = 8_192,
) -> Iterator[pa.RecordBatch]:
    """Events matching ``query`` at ``snapshot_id``, streamed file by file (bounded memory)."""
    yield from iter_files(table, query.iceberg(), query.arrow(), columns, snapshot_id, batch_rows)


def typed_filters(
    name: str, date_from: date | None, date_to: date | None, mpans: tuple[str, ...]
) -> tuple[BooleanExpression, ds.Expression | None]:
    """Iceberg and Arrow filters for a typed table (by UTC settlement date or effective date)."""
    date_col = "utc_settlement_date" if name == "consumption" else "effective_from"
    expr: BooleanExpression = AlwaysTrue()
    arrow: ds.Expression | None = None
    terms: list[tuple[BooleanExpression, ds.Expression]] = []
    if date_from:
        terms.append(
            (
                GreaterThanOrEqual(term=date_col, value=date_from.isoformat()),  # type: ignore[arg-type]
                ds.field(date_col) >= pa.scalar(date_from, pa.date32()),
            )
        )
    if date_to:
        terms.append(
            (
                LessThanOrEqual(term=date_col, value=date_to.isoformat()),  # type: ignore[arg-type]
                ds.field(date_col) <= pa.scalar(date_to, pa.date32()),
            )
        )
    if mpans:
        terms.append((In(term="mpan", values=mpans), ds.field("mpan").isin(list(mpans))))  # type: ignore[arg-type]
    for ice, arr in terms:
        expr = And(expr, ice)
        arrow = arr if arrow is None else arrow & arr
    return expr, arrow


def iter_typed_batches(
    table: Table,
    name: str,
    date_from: date | None,
    date_to: date | None,
    mpans: tuple[str, ...],
    snapshot_id: int | None,
    batch_rows: int = 8_192,
) -> Iterator[pa.RecordBatch]:
    """Rows of a typed table, streamed file by file (bounded memory)."""
    expr, arrow = typed_filters(name, date_from, date_to, mpans)
    yield from iter_files(table, expr, arrow, None, snapshot_id, batch_rows)
